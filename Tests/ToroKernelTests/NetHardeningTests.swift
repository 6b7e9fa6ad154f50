@testable import ToroKernelPortable
import XCTest

/// What a hostile peer can send a ``NetStackCore``: frames whose every field
/// sits at a boundary. Nothing may trap (in the guest a trap stops the machine).
final class NetHardeningTests: XCTestCase {
    let serverMAC: [UInt8] = [0x02, 0x54, 0x00, 0x00, 0x00, 0x02]
    let attackerMAC: [UInt8] = [0x02, 0x66, 0x00, 0x00, 0x00, 0x66]
    let serverIP = IPv4Address(10, 77, 0, 2)

    var now: UInt64 = 1_000_000_000

    func makeServer(configuration: NetStackConfiguration = NetStackConfiguration()) -> NetStackCore {
        NetStackCore(mac: serverMAC, interface: IPv4Interface("10.77.0.2/24")!, configuration: configuration, secret: 0x1234_5678)
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
