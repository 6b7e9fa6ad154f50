@testable import ToroKernelPortable
import XCTest

/// What a hostile peer can send a ``NetStackCore``: floods of SYNs from
/// spoofed sources, floods that make it ask ARP for hosts that do not exist,
/// and frames whose every field sits at a boundary. Nothing may trap (in the
/// guest a trap stops the machine), nothing may grow without bound, and a real
/// client must still be served.
final class NetHardeningTests: XCTestCase {
    let serverMAC: [UInt8] = [0x02, 0x54, 0x00, 0x00, 0x00, 0x02]
    let clientMAC: [UInt8] = [0x02, 0x54, 0x00, 0x00, 0x00, 0x01]
    let attackerMAC: [UInt8] = [0x02, 0x66, 0x00, 0x00, 0x00, 0x66]
    let serverIP = IPv4Address(10, 77, 0, 2)
    let clientIP = IPv4Address(10, 77, 0, 1)
    let second: UInt64 = 1_000_000_000

    var now: UInt64 = 1_000_000_000

    func makeServer(configuration: NetStackConfiguration = NetStackConfiguration()) -> NetStackCore {
        NetStackCore(mac: serverMAC, interface: IPv4Interface("10.77.0.2/24")!, configuration: configuration, secret: 0x1234_5678)
    }

    func makeClient() -> NetStackCore {
        NetStackCore(mac: clientMAC, interface: IPv4Interface("10.77.0.1/24")!, secret: 0x8765_4321)
    }

    /// An Ethernet frame to the server carrying an IPv4 header with
    /// `ipOptions` (a multiple of 4 bytes) and `transport` as its payload;
    /// checksums right unless the caller breaks them. `totalLength` overrides
    /// the IPv4 total length; `padding` bytes follow the packet.
    func ipFrame(
        protocolNumber: UInt8, transport: [UInt8], from source: IPv4Address, ipOptions: [UInt8] = [],
        totalLength: Int? = nil, padding: Int = 0
    ) -> [UInt8] {
        var frame: [UInt8] = []
        EthernetHeader(destination: serverMAC, source: attackerMAC, etherType: EtherType.ipv4).append(to: &frame)
        let headerLength = 20 + ipOptions.count
        let length = totalLength ?? headerLength + transport.count
        var header: [UInt8] = [
            0x40 | UInt8(headerLength / 4), 0, UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length),
            0, 1, 0x40, 0, 64, protocolNumber, 0, 0,
        ]
        header += source.bytes + serverIP.bytes + ipOptions
        let checksum = InternetChecksum.compute(header, from: 0, count: header.count)
        header[10] = UInt8(checksum >> 8)
        header[11] = UInt8(checksum & 0xFF)
        frame += header + transport
        frame += [UInt8](repeating: 0, count: padding)
        return frame
    }

    /// A TCP segment's bytes from `source` to the server, checksum right.
    func tcpBytes(_ segment: TCPSegment, from source: IPv4Address) -> [UInt8] {
        var bytes: [UInt8] = []
        segment.append(to: &bytes, source: source, destination: serverIP)
        return bytes
    }

    /// Raw TCP bytes: any data offset, flags, urgent pointer and options.
    func rawTCP(
        from source: IPv4Address, sourcePort: UInt16, destinationPort: UInt16, sequence: UInt32, flags: UInt8,
        window: UInt16, urgent: UInt16 = 0, options: [UInt8] = [], payload: [UInt8] = []
    ) -> [UInt8] {
        var bytes: [UInt8] = []
        for value in [sourcePort, destinationPort] { bytes += [UInt8(value >> 8), UInt8(value & 0xFF)] }
        bytes += [UInt8(sequence >> 24), UInt8((sequence >> 16) & 0xFF), UInt8((sequence >> 8) & 0xFF), UInt8(sequence & 0xFF)]
        bytes += [0, 0, 0, 0]
        bytes += [UInt8((20 + options.count) / 4) << 4, flags, UInt8(window >> 8), UInt8(window & 0xFF), 0, 0]
        bytes += [UInt8(urgent >> 8), UInt8(urgent & 0xFF)]
        bytes += options + payload
        let pseudo = TCPSegment.pseudoHeaderSum(source: source, destination: serverIP, length: bytes.count)
        let checksum = ~InternetChecksum.fold(InternetChecksum.sum(bytes, from: 0, count: bytes.count, initial: pseudo))
        bytes[16] = UInt8(checksum >> 8)
        bytes[17] = UInt8(checksum & 0xFF)
        return bytes
    }

    func syn(port: UInt16, sequence: UInt32, to destinationPort: UInt16 = 80) -> TCPSegment {
        TCPSegment(
            sourcePort: port, destinationPort: destinationPort, sequence: sequence, acknowledgement: 0, flags: .syn,
            window: 65535, maximumSegmentSize: 1460)
    }

    /// Frames between the server and a real client until both are quiet.
    func pump(_ server: NetStackCore, _ client: NetStackCore, rounds: Int = 200) {
        for _ in 0..<rounds {
            let fromServer = server.poll(now: now)
            let fromClient = client.poll(now: now)
            if fromServer.isEmpty && fromClient.isEmpty { return }
            for frame in fromServer { client.handle(frame: frame, now: now) }
            for frame in fromClient { server.handle(frame: frame, now: now) }
            now += 100_000
        }
    }

    /// The segments of the TCP frames in `frames` (others skipped).
    func segments(_ frames: [[UInt8]]) -> [TCPSegment] {
        frames.compactMap { frame in
            guard readUInt16(frame, 12) == EtherType.ipv4, let ip = try? IPv4Header.parse(frame, at: 14),
                ip.protocolNumber == IPProtocol.tcp
            else { return nil }
            return try? TCPSegment.parse(
                frame, at: 14 + ip.headerLength, count: ip.totalLength - ip.headerLength, source: ip.source,
                destination: ip.destination)
        }
    }

    // MARK: - SYN flood

    /// 500 SYNs from spoofed on-link sources (each needing an ARP answer that
    /// never comes): the SYN queue stays at its bound, the oldest half-open
    /// connections make room, the accept backlog stays free, ARP's state stays
    /// bounded, and a real client connects as soon as the flood ends.
    func testASYNFloodNeverKeepsARealClientOut() throws {
        let server = makeServer()
        let client = makeClient()
        let configuration = NetStackConfiguration()
        XCTAssertTrue(server.listen(port: 80, backlog: 4))
        var random = XorShift(seed: 5961)
        var discarded: [[UInt8]] = []
        for index in 0..<500 {
            let source = IPv4Address(10, 77, 0, UInt8(3 + index % 250))
            let segment = syn(port: UInt16(1024 + index), sequence: UInt32(truncatingIfNeeded: random.next()))
            server.handle(frame: ipFrame(protocolNumber: IPProtocol.tcp, transport: tcpBytes(segment, from: source), from: source),
                          now: now)
            if index % 16 == 15 {
                // The network thread's turns. Evictions may leave the deadline
                // a poll returns early, never late.
                let deadline = server.poll(now: now, into: &discarded) ?? .max
                XCTAssertLessThanOrEqual(deadline, server.nextDeadline ?? .max)
                discarded.removeAll()
            }
            now += 200_000
            XCTAssertLessThanOrEqual(server.connectionCount, configuration.synQueueLimit)
            XCTAssertLessThanOrEqual(server.unresolved.count, configuration.unresolvedLimit)
        }
        _ = server.poll(now: now)
        XCTAssertEqual(server.connectionCount, configuration.synQueueLimit, "the SYN queue is full, no more")
        XCTAssertEqual(server.counters.tcpSYNQueueEvictions, 500 - configuration.synQueueLimit)
        XCTAssertEqual(server.counters.tcpBacklogDrops, 0, "half-open connections do not count against the backlog")
        XCTAssertEqual(server.unresolved.count, configuration.unresolvedLimit, "SYN-ACKs held for ARP: bounded")
        XCTAssertLessThanOrEqual(server.arpAsked.count, configuration.unresolvedLimit)
        XCTAssertLessThanOrEqual(server.endpoint.arpCache.count, server.endpoint.arpCache.capacity)
        XCTAssertNil(server.accept(port: 80), "no spoofed handshake completed")

        // The flood ends: a real client connects at once, in the queue's
        // oldest place, and its SYN-ACK waits for ARP behind no one.
        let connection = try XCTUnwrap(client.connect(to: TCPEndpoint(address: serverIP, port: 80), now: now))
        pump(server, client)
        XCTAssertEqual(connection.state, .established)
        let accepted = try XCTUnwrap(server.accept(port: 80))
        XCTAssertEqual(accepted.remote.address, clientIP)
        XCTAssertEqual(server.counters.tcpSYNQueueEvictions, 500 - configuration.synQueueLimit + 1)
        // And it is served: data both ways.
        XCTAssertEqual(connection.send(Array("GET / HTTP/1.1\r\n\r\n".utf8)[...]), 18)
        client.touch(connection)
        pump(server, client)
        XCTAssertEqual(accepted.receive(maximum: 100).count, 18)
        XCTAssertEqual(accepted.send([1, 2, 3][...]), 3)
        server.touch(accepted)
        pump(server, client)
        XCTAssertEqual(connection.receive(maximum: 100), [1, 2, 3])
    }

    /// A real client's handshake completes in the middle of a flood too, as
    /// long as fewer SYNs than the queue holds come between its SYN and its ACK.
    func testARealClientConnectsDuringAFlood() throws {
        var configuration = NetStackConfiguration()
        configuration.synQueueLimit = 16
        let server = makeServer(configuration: configuration)
        let client = makeClient()
        XCTAssertTrue(server.listen(port: 80, backlog: 4))
        func flood(_ count: Int, from base: Int) {
            for index in 0..<count {
                let source = IPv4Address(10, 77, 0, UInt8(100 + (base + index) % 100))
                let segment = syn(port: UInt16(2000 + base + index), sequence: 7)
                server.handle(frame: ipFrame(protocolNumber: IPProtocol.tcp, transport: tcpBytes(segment, from: source), from: source),
                              now: now)
            }
        }
        flood(40, from: 0)
        _ = server.poll(now: now)
        XCTAssertEqual(server.connectionCount, 16)
        let connection = try XCTUnwrap(client.connect(to: TCPEndpoint(address: serverIP, port: 80), now: now))
        // Two flood SYNs arrive with every frame of the client's ARP exchange and handshake.
        for round in 0..<5 {
            for frame in client.poll(now: now) { server.handle(frame: frame, now: now) }
            flood(2, from: 100 + 2 * round)
            for frame in server.poll(now: now) { client.handle(frame: frame, now: now) }
            now += 100_000
        }
        pump(server, client)
        XCTAssertEqual(connection.state, .established)
        XCTAssertNotNil(server.accept(port: 80))
        XCTAssertLessThanOrEqual(server.connectionCount, 16 + 1)
    }

    /// A half-open connection resends its SYN-ACK 5 times (at 1, 3, 7, 15 and
    /// 31 s) and is forgotten at 63 s, without a reset to its (spoofed) source.
    func testHalfOpenConnectionsExpireAfterTheirSYNACKRetransmissions() {
        let server = makeServer()
        XCTAssertTrue(server.listen(port: 80, backlog: 4))
        let start = now
        // Off-link spoofed sources with a gateway would be sent; on-link ones
        // wait for ARP. Use a gateway-less stack and on-link sources: the
        // SYN-ACKs are built (counted) and held for ARP, which never answers.
        for index in 0..<20 {
            let source = IPv4Address(10, 77, 0, UInt8(100 + index))
            let segment = syn(port: UInt16(3000 + index), sequence: UInt32(index) &* 0x1000_0001)
            server.handle(frame: ipFrame(protocolNumber: IPProtocol.tcp, transport: tcpBytes(segment, from: source), from: source),
                          now: now)
        }
        var sentAt: [UInt64] = []
        var emptiedAt: UInt64?
        while now - start <= 200 * second {
            let before = server.counters.tcpSegmentsSent
            _ = server.poll(now: now)
            let sent = server.counters.tcpSegmentsSent - before
            if sent > 0 {
                XCTAssertEqual(sent, 20, "every half-open connection resends together")
                sentAt.append(now - start)
            }
            if server.connectionCount == 0 && emptiedAt == nil { emptiedAt = now - start }
            guard let next = server.nextDeadline else { break }
            now = max(next, now + 1)
        }
        XCTAssertEqual(sentAt, [0, 1, 3, 7, 15, 31].map { $0 * second }, "the SYN-ACK and 5 retransmissions, backing off")
        XCTAssertEqual(emptiedAt, 63 * second)
        XCTAssertEqual(server.counters.tcpHalfOpenTimeouts, 20)
        XCTAssertEqual(server.counters.tcpSegmentsSent, 120, "no reset followed")
        XCTAssertEqual(server.counters.tcpResetsSent, 0)
        XCTAssertNil(server.nextDeadline, "nothing left to do")
    }

    /// The list behind the SYN queue and the packets held for ARP, against an array.
    func testFIFOAgainstAnArray() {
        var random = XorShift(seed: 793)
        var fifo = FIFO<Int>()
        var model: [Int] = []
        var next = 0
        for _ in 0..<5000 {
            switch random.below(8) {
            case 0, 1, 2:
                fifo.append(next)
                model.append(next)
                next += 1
            case 3, 4, 5:
                if !model.isEmpty { XCTAssertEqual(fifo.removeFirst(), model.removeFirst()) }
            case 6:
                let modulus = 2 + random.below(5)
                fifo.removeInPlace { $0 % modulus == 0 }
                model.removeAll { $0 % modulus == 0 }
            default:
                for _ in 0..<random.below(40) { fifo.append(next); model.append(next); next += 1 }
            }
            XCTAssertEqual(fifo.count, model.count)
            XCTAssertEqual(fifo.isEmpty, model.isEmpty)
            XCTAssertEqual(fifo.first, model.first)
            XCTAssertEqual(Array(fifo), model)
        }
    }

    // MARK: - ARP

    /// Packets waiting for ARP answers that never come are bounded, the
    /// newest are kept, and the next hops asked for go with them.
    func testPacketsHeldForARPAreBoundedAndTheNewestKept() throws {
        let server = makeServer()
        let limit = NetStackConfiguration().unresolvedLimit
        XCTAssertTrue(server.bindUDP(port: 5000))
        for host in 3..<203 {
            XCTAssertTrue(server.sendUDP([UInt8(host)], from: 5000, to: TCPEndpoint(address: IPv4Address(10, 77, 0, UInt8(host)), port: 7), now: now))
            XCTAssertLessThanOrEqual(server.unresolved.count, limit)
            XCTAssertLessThanOrEqual(server.arpAsked.count, limit, "between polls too")
        }
        let asked = server.poll(now: now)
        XCTAssertEqual(server.unresolved.count, limit)
        XCTAssertEqual(server.counters.unresolved, 200 - limit, "the oldest made room")
        XCTAssertEqual(server.arpAsked.count, limit, "only the held packets' next hops are still asked for")
        XCTAssertEqual(asked.count, 200, "one request per next hop, as its packet was held")
        XCTAssertEqual(server.counters.arpRequestsSent, 200)
        // The newest's host answers and gets its datagram.
        let newest = IPv4Address(10, 77, 0, 202)
        let answer = ARPPacket(
            operation: ARPPacket.reply, senderMAC: clientMAC, senderIP: newest, targetMAC: serverMAC, targetIP: serverIP
        ).frame(from: clientMAC, to: serverMAC)
        server.handle(frame: answer, now: now)
        let released = server.poll(now: now)
        XCTAssertEqual(released.count, 1)
        XCTAssertEqual(try IPv4Header.parse(released[0], at: 14).destination, newest)
        // The rest expire; nothing is left behind.
        now += NetStackConfiguration().arpGiveUp
        _ = server.poll(now: now)
        XCTAssertTrue(server.unresolved.isEmpty)
        XCTAssertTrue(server.arpAsked.isEmpty)
    }

    /// The ARP cache learns only on-link senders and holds at most its capacity,
    /// however many hosts ask for us.
    func testTheARPCacheStaysBounded() {
        let server = makeServer()
        for index in 0..<300 {
            let sender = index % 2 == 0 ? IPv4Address(10, 77, 0, UInt8(3 + index / 2)) : IPv4Address(192, 0, 2, UInt8(index % 256))
            let mac: [UInt8] = [0x02, 0, 0, 0, UInt8(index >> 8), UInt8(index & 0xFF)]
            let request = ARPPacket(
                operation: ARPPacket.request, senderMAC: mac, senderIP: sender, targetMAC: [0, 0, 0, 0, 0, 0], targetIP: serverIP
            ).frame(from: mac, to: EthernetHeader.broadcast)
            server.handle(frame: request, now: now)
            XCTAssertLessThanOrEqual(server.endpoint.arpCache.count, server.endpoint.arpCache.capacity)
        }
        XCTAssertEqual(server.linkCounters.arpRequestsAnswered, 300, "every asker is answered")
        var cache = server.endpoint.arpCache
        XCTAssertNil(cache.lookup(IPv4Address(192, 0, 2, 255), now: now), "off-link senders are not learnt")
        XCTAssertNotNil(cache.lookup(IPv4Address(10, 77, 0, 152), now: now), "the latest on-link one is")
    }

    // MARK: - Fields at their boundaries

    /// Frames whose fields a peer sets to extremes, checksums right, so that
    /// they reach the code that uses the values.
    func testBoundaryValuesFromThePeer() throws {
        let server = makeServer()
        XCTAssertTrue(server.listen(port: 80, backlog: 4))
        XCTAssertTrue(server.bindUDP(port: 7))
        // Make the peer's MAC known, so answers are sent rather than held for ARP.
        let peer = IPv4Address(10, 77, 0, 9)
        server.handle(
            frame: ARPPacket(
                operation: ARPPacket.request, senderMAC: attackerMAC, senderIP: peer, targetMAC: [0, 0, 0, 0, 0, 0],
                targetIP: serverIP
            ).frame(from: attackerMAC, to: EthernetHeader.broadcast), now: now)
        _ = server.poll(now: now)

        // IHL 15 (40 bytes of IP options), a SYN with data offset 15: 36 NOPs
        // then an MSS of 0, URG with the urgent pointer at its maximum, and a
        // zero window; its sequence number at the top of the space.
        let options = [UInt8](repeating: 1, count: 36) + [2, 4, 0, 0]
        let synBytes = rawTCP(
            from: peer, sourcePort: 65535, destinationPort: 80, sequence: 0xFFFF_FFFF, flags: 0x22, window: 0,
            urgent: 0xFFFF, options: options)
        server.handle(
            frame: ipFrame(protocolNumber: IPProtocol.tcp, transport: synBytes, from: peer,
                           ipOptions: [UInt8](repeating: 1, count: 40), padding: 7), now: now)
        let key = ConnectionKey(remote: peer, remotePort: 65535, localPort: 80)
        let connection = try XCTUnwrap(server.connections[key])
        XCTAssertEqual(connection.effectiveMSS, TCPConfiguration().minimumPeerMSS, "an MSS of 0 is raised to the floor")
        let synAck = segments(server.poll(now: now))
        XCTAssertEqual(synAck.map(\.flags), [[.syn, .ack]])
        XCTAssertEqual(synAck.first?.acknowledgement, 0, "0xFFFFFFFF + 1 wraps to 0")

        // A segment to a closed port from port 0, sequence just below the wrap,
        // with data: the reset acknowledges past the wrap.
        let stray = rawTCP(
            from: peer, sourcePort: 0, destinationPort: 65535, sequence: 0xFFFF_FFFA, flags: 0x08, window: 65535,
            payload: [UInt8](repeating: 0x41, count: 10))
        server.handle(frame: ipFrame(protocolNumber: IPProtocol.tcp, transport: stray, from: peer), now: now)
        let reset = segments(server.poll(now: now))
        XCTAssertEqual(reset.map(\.flags), [[.rst, .ack]])
        XCTAssertEqual(reset.first?.acknowledgement, 4)
        XCTAssertEqual(reset.first?.destinationPort, 0)
        XCTAssertEqual(reset.first?.sourcePort, 65535)

        // TCP with a total length shorter than the frame (Ethernet padding) and
        // the data offset at every value: below 5 and beyond the segment are
        // dropped as bad lengths, never read past.
        for words in 0..<16 {
            var bytes = rawTCP(from: peer, sourcePort: 1, destinationPort: 80, sequence: 1, flags: 0x10, window: 1)
            bytes[12] = UInt8(words << 4)
            bytes[16] = 0
            bytes[17] = 0
            let pseudo = TCPSegment.pseudoHeaderSum(source: peer, destination: serverIP, length: bytes.count)
            let checksum = ~InternetChecksum.fold(InternetChecksum.sum(bytes, from: 0, count: bytes.count, initial: pseudo))
            bytes[16] = UInt8(checksum >> 8)
            bytes[17] = UInt8(checksum & 0xFF)
            server.handle(frame: ipFrame(protocolNumber: IPProtocol.tcp, transport: bytes, from: peer, padding: 20), now: now)
        }
        XCTAssertEqual(server.linkCounters.droppedBadLength, 15, "data offsets 0-4, and 6-15 (beyond its 20 bytes)")
        XCTAssertEqual(segments(server.poll(now: now)).map(\.flags), [.rst], "the one well-formed ACK, to no connection")

        // IPv4 total lengths: below the header, equal to it, beyond the frame, the maximum.
        for length in [0, 19, 20, 21, 40, 41, 65535] {
            server.handle(frame: ipFrame(protocolNumber: IPProtocol.tcp, transport: [], from: peer, totalLength: length), now: now)
            server.handle(frame: ipFrame(protocolNumber: IPProtocol.udp, transport: [], from: peer, totalLength: length), now: now)
        }
        // UDP length fields: 0, 7, exact, beyond the packet, the maximum.
        for length in [0, 7, 8, 9, 65535] {
            let datagram: [UInt8] = [0x12, 0x34, 0x00, 0x07, UInt8(length >> 8), UInt8(length & 0xFF), 0, 0]
            server.handle(frame: ipFrame(protocolNumber: IPProtocol.udp, transport: datagram, from: peer), now: now)
        }
        XCTAssertEqual(server.receiveUDP(port: 7)?.payload, [], "the one well-formed datagram, empty")
        XCTAssertNil(server.receiveUDP(port: 7))
        // ICMP echo behind 40 bytes of IP options: answered with a plain header.
        var echo: [UInt8] = [8, 0, 0, 0, 0xAB, 0xCD, 0xFF, 0xFF] + [UInt8](repeating: 0x5A, count: 64)
        let icmpChecksum = InternetChecksum.compute(echo, from: 0, count: echo.count)
        echo[2] = UInt8(icmpChecksum >> 8)
        echo[3] = UInt8(icmpChecksum & 0xFF)
        server.handle(frame: ipFrame(protocolNumber: IPProtocol.icmp, transport: echo, from: peer,
                                     ipOptions: [UInt8](repeating: 1, count: 40)), now: now)
        let replies = server.poll(now: now)
        XCTAssertEqual(replies.count, 1)
        let reply = try IPv4Header.parse(replies[0], at: 14)
        XCTAssertEqual(reply.totalLength, 20 + echo.count)
        XCTAssertEqual(Array(replies[0][42..<(34 + echo.count)]), Array(echo[8...]))
    }
}
