@testable import ToroKernelPortable
import XCTest

/// Two stacks on one simulated Ethernet segment: every frame one sends is
/// given to the other (or dropped by `lose`), with the clock advanced by hand.
final class NetStackCoreTests: XCTestCase {
    let serverMAC: [UInt8] = [0x02, 0x54, 0x00, 0x00, 0x00, 0x02]
    let clientMAC: [UInt8] = [0x02, 0x54, 0x00, 0x00, 0x00, 0x01]
    let serverIP = IPv4Address(10, 77, 0, 2)
    let clientIP = IPv4Address(10, 77, 0, 1)

    var now: UInt64 = 1_000_000_000
    var wire: [(to: NetStackCore, frame: [UInt8])] = []
    var framesSeen: [[UInt8]] = []

    func makePair(
        configuration: NetStackConfiguration = NetStackConfiguration()
    ) -> (server: NetStackCore, client: NetStackCore) {
        let server = NetStackCore(
            mac: serverMAC, interface: IPv4Interface("10.77.0.2/24")!, configuration: configuration, secret: 0x1234_5678)
        let client = NetStackCore(
            mac: clientMAC, interface: IPv4Interface("10.77.0.1/24")!, configuration: configuration, secret: 0x8765_4321)
        return (server, client)
    }

    /// Moves frames between the two until neither has anything to say, for at most `rounds` turns.
    /// Every poll's deadline (the network thread's, found without a second
    /// walk, or none at all on an idle turn) must be `nextDeadline`'s. `a`
    /// writes its frames as the network thread does, into a transmit ring
    /// (of `ring` frames a turn; the rest go the usual way, after them).
    func pump(
        _ a: NetStackCore, _ b: NetStackCore, rounds: Int = 200, ring: Int = 3, lose: (([UInt8]) -> Bool)? = nil
    ) {
        for _ in 0..<rounds {
            var fromA: [[UInt8]] = []
            var fromB: [[UInt8]] = []
            var written: [[UInt8]] = []
            let transmit: NetFrameWriter = { size, write in
                guard written.count < ring else { return false }
                written.append(
                    [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
                        write(UnsafeMutableRawPointer(buffer.baseAddress!))
                        count = size
                    })
                return true
            }
            XCTAssertEqual(a.poll(now: now, into: &fromA, transmit: transmit), a.nextDeadline, "the deadline a poll returns")
            fromA = written + fromA
            XCTAssertEqual(b.poll(now: now, into: &fromB), b.nextDeadline, "the deadline a poll returns")
            if fromA.isEmpty && fromB.isEmpty { return }
            for frame in fromA where !(lose?(frame) ?? false) {
                framesSeen.append(frame)
                b.handle(frame: frame, now: now)
            }
            for frame in fromB where !(lose?(frame) ?? false) {
                framesSeen.append(frame)
                a.handle(frame: frame, now: now)
            }
            now += 100_000  // 0.1 ms per turn
        }
    }

    /// Advances the clock to the stacks' next deadline (at most `limit` ahead) and pumps.
    func advance(_ a: NetStackCore, _ b: NetStackCore, limit: UInt64 = 5_000_000_000) {
        let next = [a.nextDeadline, b.nextDeadline].compactMap { $0 }.min() ?? (now + limit)
        now = max(now, min(next, now + limit))
        pump(a, b)
    }

    func testConnectResolvesTheServerWithARPThenHandshakes() throws {
        let (server, client) = makePair()
        XCTAssertTrue(server.listen(port: 80, backlog: 4))
        XCTAssertFalse(server.listen(port: 80, backlog: 4), "a second listener on the same port")
        let connection = try XCTUnwrap(client.connect(to: TCPEndpoint(address: serverIP, port: 80), now: now))
        let first = client.poll(now: now)
        XCTAssertEqual(first.count, 1, "only an ARP request: the SYN waits for the server's MAC")
        XCTAssertEqual(readUInt16(first[0], 12), EtherType.arp)
        XCTAssertEqual(client.counters.arpRequestsSent, 1)
        server.handle(frame: first[0], now: now)
        pump(server, client)
        XCTAssertEqual(connection.state, .established)
        let accepted = try XCTUnwrap(server.accept(port: 80))
        XCTAssertEqual(accepted.state, .established)
        XCTAssertEqual(accepted.remote, TCPEndpoint(address: clientIP, port: connection.local.port))
        XCTAssertTrue(NetStackCore.ephemeralPorts.contains(connection.local.port))
        XCTAssertNil(server.accept(port: 80), "one connection, accepted once")
        XCTAssertTrue(server.takeEvents().listeners.contains(80))
    }

    func testDataBothWaysAndAnOrderlyClose() throws {
        let (server, client) = makePair()
        XCTAssertTrue(server.listen(port: 8080, backlog: 4))
        let connection = try XCTUnwrap(client.connect(to: TCPEndpoint(address: serverIP, port: 8080), now: now))
        pump(client, server)
        let accepted = try XCTUnwrap(server.accept(port: 8080))
        var request: [UInt8] = []
        for index in 0..<3000 { request.append(UInt8(truncatingIfNeeded: index * 7)) }
        XCTAssertEqual(connection.send(request[...]), request.count)
        client.touch(connection)
        pump(client, server)
        XCTAssertEqual(accepted.receive(maximum: 10_000), request)
        let reply: [UInt8] = Array(repeating: 0x5A, count: 100_000)
        var offset = 0
        var received: [UInt8] = []
        for _ in 0..<1000 where received.count < reply.count {
            offset += accepted.send(reply[offset...])
            server.touch(accepted)
            pump(client, server)
            received += connection.receive(maximum: 100_000)
            client.touch(connection)
            if received.count < reply.count { advance(client, server, limit: 30_000_000) }
        }
        XCTAssertEqual(received, reply, "100 KB through a 64 KB window")
        accepted.close(now: now)
        server.touch(accepted)
        pump(client, server)
        XCTAssertTrue(connection.receivedFIN)
        connection.close(now: now)
        client.touch(connection)
        pump(client, server)
        XCTAssertEqual(accepted.state, .timeWait, "the side that closed first waits")
        XCTAssertEqual(connection.state, .closed)
        XCTAssertEqual(client.connectionCount, 0, "the client side is forgotten once closed")
        XCTAssertEqual(server.connectionCount, 1)
        now += NetStackConfiguration().tcp.timeWait + 1
        pump(client, server)
        XCTAssertEqual(server.connectionCount, 0, "TIME_WAIT ended")
    }

    func testPollLooksOnlyAtConnectionsThatChangedOrAreDue() throws {
        let (server, client) = makePair()
        XCTAssertTrue(server.listen(port: 80, backlog: 4))
        let connection = try XCTUnwrap(client.connect(to: TCPEndpoint(address: serverIP, port: 80), now: now))
        pump(client, server)
        XCTAssertEqual(connection.state, .established)
        XCTAssertEqual(connection.send([1, 2, 3][...]), 3)
        XCTAssertTrue(client.poll(now: now).isEmpty, "untouched: the poll does not look at it")
        client.touch(connection)
        XCTAssertEqual(client.poll(now: now).count, 1, "touched: its data goes")
    }

    func testIdlePollsSkipTheTableUntilADeadlineComes() throws {
        let (server, client) = makePair()
        XCTAssertTrue(server.listen(port: 80, backlog: 4))
        let connection = try XCTUnwrap(client.connect(to: TCPEndpoint(address: serverIP, port: 80), now: now))
        pump(client, server)
        XCTAssertEqual(connection.send([1, 2, 3][...]), 3)
        client.touch(connection)
        var frames: [[UInt8]] = []
        let deadline = try XCTUnwrap(client.poll(now: now, into: &frames))
        XCTAssertEqual(frames.count, 1, "the data")
        XCTAssertEqual(deadline, connection.nextDeadline, "its retransmission timer")
        frames = []
        XCTAssertEqual(client.poll(now: deadline - 1, into: &frames), deadline, "idle: the same deadline")
        XCTAssertTrue(frames.isEmpty)
        XCTAssertNotEqual(client.poll(now: deadline, into: &frames), deadline, "the timer ran and moved on")
        XCTAssertEqual(frames.count, 1, "the retransmission, without a touch")
        XCTAssertEqual(connection.counters.retransmissions, 1)
    }

    func testAClosedPortAnswersWithReset() throws {
        let (server, client) = makePair()
        let connection = try XCTUnwrap(client.connect(to: TCPEndpoint(address: serverIP, port: 9), now: now))
        pump(client, server)
        XCTAssertEqual(connection.state, .closed)
        XCTAssertEqual(connection.closeReason, .refused)
        XCTAssertEqual(server.counters.tcpResetsSent, 1)
        XCTAssertTrue(client.takeEvents().connections.contains { $0 === connection })
    }

    func testAFullBacklogDropsSYNsAndThePeerRetries() throws {
        let (server, client) = makePair()
        XCTAssertTrue(server.listen(port: 80, backlog: 1))
        let first = try XCTUnwrap(client.connect(to: TCPEndpoint(address: serverIP, port: 80), now: now))
        pump(client, server)
        let second = try XCTUnwrap(client.connect(to: TCPEndpoint(address: serverIP, port: 80), now: now))
        pump(client, server)
        XCTAssertEqual(first.state, .established)
        XCTAssertEqual(second.state, .synSent, "its SYN was dropped")
        XCTAssertEqual(server.counters.tcpBacklogDrops, 1)
        XCTAssertNotNil(server.accept(port: 80))
        advance(client, server)  // the SYN's retransmission finds room
        XCTAssertEqual(second.state, .established)
        XCTAssertNotNil(server.accept(port: 80))
    }

    func testStoppingAListenerResetsWhatItHeld() throws {
        let (server, client) = makePair()
        XCTAssertTrue(server.listen(port: 80, backlog: 4))
        let connection = try XCTUnwrap(client.connect(to: TCPEndpoint(address: serverIP, port: 80), now: now))
        pump(client, server)
        server.stopListening(port: 80, now: now)
        pump(client, server)
        XCTAssertFalse(server.isListening(port: 80))
        XCTAssertEqual(connection.state, .closed)
        XCTAssertEqual(connection.closeReason, .reset)
    }

    func testTransferWithLossArrivesIntact() throws {
        let (server, client) = makePair()
        XCTAssertTrue(server.listen(port: 80, backlog: 4))
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let lose: ([UInt8]) -> Bool = { frame in
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return frame.count > 60 && state % 100 < 10  // 10% of data-carrying frames
        }
        let connection = try XCTUnwrap(client.connect(to: TCPEndpoint(address: serverIP, port: 80), now: now))
        pump(client, server)
        let accepted = try XCTUnwrap(server.accept(port: 80))
        var payload: [UInt8] = []
        for index in 0..<65536 { payload.append(UInt8(truncatingIfNeeded: index &* 31 &+ index >> 8)) }
        var offset = 0
        var received: [UInt8] = []
        for _ in 0..<2000 where received.count < payload.count {
            offset += accepted.send(payload[offset...])
            server.touch(accepted)
            pump(client, server, lose: lose)
            received += connection.receive(maximum: 65536)
            client.touch(connection)
            if received.count < payload.count { advance(client, server, limit: 2_000_000_000) }
        }
        XCTAssertEqual(received.count, payload.count)
        XCTAssertTrue(received == payload, "content intact")
        XCTAssertGreaterThan(accepted.counters.retransmissions + accepted.counters.fastRetransmissions, 0)
    }

    func testOffLinkTrafficGoesThroughTheGateway() throws {
        let gatewayIP = IPv4Address(10, 77, 0, 1)
        let core = NetStackCore(
            mac: serverMAC, interface: IPv4Interface("10.77.0.2/24")!, gateway: gatewayIP, secret: 1)
        XCTAssertTrue(core.bindUDP(port: 5000))
        let far = TCPEndpoint(address: IPv4Address(192, 0, 2, 9), port: 53)
        XCTAssertTrue(core.sendUDP([1, 2, 3], from: 5000, to: far, now: now))
        let asked = core.poll(now: now)
        XCTAssertEqual(asked.count, 1)
        let request = try ARPPacket.parse(asked[0], at: EthernetHeader.size)
        XCTAssertEqual(request.targetIP, gatewayIP, "ARP asks for the gateway, not the far address")
        // The gateway answers; the held datagram leaves addressed to it at the link layer only.
        let answer = ARPPacket(
            operation: ARPPacket.reply, senderMAC: clientMAC, senderIP: gatewayIP, targetMAC: serverMAC,
            targetIP: serverIP
        ).frame(from: clientMAC, to: serverMAC)
        core.handle(frame: answer, now: now)
        let sent = core.poll(now: now)
        XCTAssertEqual(sent.count, 1)
        XCTAssertEqual(Array(sent[0][0..<6]), clientMAC)
        let ip = try IPv4Header.parse(sent[0], at: EthernetHeader.size)
        XCTAssertEqual(ip.destination, far.address)
        let datagram = try UDPDatagram.parse(
            sent[0], at: EthernetHeader.size + 20, count: ip.totalLength - 20, source: ip.source, destination: ip.destination)
        XCTAssertEqual(datagram.payload, [1, 2, 3])
        XCTAssertEqual(datagram.destinationPort, 53)
    }

    func testNoGatewayMeansNoRoute() {
        let core = NetStackCore(mac: serverMAC, interface: IPv4Interface("10.77.0.2/24")!, secret: 1)
        XCTAssertTrue(core.sendUDP([1], from: 5000, to: TCPEndpoint(address: IPv4Address(192, 0, 2, 9), port: 53), now: now))
        XCTAssertTrue(core.poll(now: now).isEmpty)
        XCTAssertEqual(core.counters.noRoute, 1)
        XCTAssertNil(core.nextHop(to: IPv4Address(192, 0, 2, 9)))
        XCTAssertEqual(core.nextHop(to: clientIP), clientIP)
    }

    func testAnUnansweredARPIsRepeatedThenItsPacketsDropped() {
        let core = NetStackCore(mac: serverMAC, interface: IPv4Interface("10.77.0.2/24")!, secret: 1)
        XCTAssertTrue(core.sendUDP([1], from: 5000, to: TCPEndpoint(address: clientIP, port: 7), now: now))
        XCTAssertEqual(core.poll(now: now).count, 1)
        let retry = core.nextDeadline
        XCTAssertEqual(retry, now + NetStackConfiguration().arpRetry)
        now = retry!
        XCTAssertEqual(core.poll(now: now).count, 1, "asked again")
        now += NetStackConfiguration().arpGiveUp
        XCTAssertTrue(core.poll(now: now).isEmpty)
        XCTAssertEqual(core.counters.unresolved, 1)
        XCTAssertEqual(core.counters.arpRequestsSent, 2)
        XCTAssertNil(core.nextDeadline)
    }

    func testUDPBetweenTheTwoStacks() throws {
        let (server, client) = makePair()
        XCTAssertTrue(server.bindUDP(port: 7))
        XCTAssertFalse(server.bindUDP(port: 7))
        XCTAssertTrue(client.bindUDP(port: 40000))
        XCTAssertTrue(client.sendUDP(Array("ping".utf8), from: 40000, to: TCPEndpoint(address: serverIP, port: 7), now: now))
        XCTAssertTrue(client.sendUDP([9], from: 40000, to: TCPEndpoint(address: serverIP, port: 8), now: now))
        pump(client, server)
        let message = try XCTUnwrap(server.receiveUDP(port: 7))
        XCTAssertEqual(message, UDPMessage(source: clientIP, sourcePort: 40000, payload: Array("ping".utf8)))
        XCTAssertNil(server.receiveUDP(port: 7))
        XCTAssertEqual(server.counters.udpNoPort, 1)
        XCTAssertEqual(server.takeEvents().udpPorts, [7])
        XCTAssertFalse(
            client.sendUDP(Array(repeating: 0, count: 1473), from: 40000, to: TCPEndpoint(address: serverIP, port: 7), now: now),
            "more than one packet")
    }

    func testUDPDatagramChecksumAndLengths() throws {
        let datagram = UDPDatagram(sourcePort: 1234, destinationPort: 53, payload: [1, 2, 3, 4, 5])
        var packet: [UInt8] = [0xEE]  // an offset
        datagram.append(to: &packet, source: clientIP, destination: serverIP)
        XCTAssertEqual(packet.count, 1 + 13)
        XCTAssertEqual(
            try UDPDatagram.parse(packet, at: 1, count: 13, source: clientIP, destination: serverIP), datagram)
        XCTAssertThrowsError(try UDPDatagram.parse(packet, at: 1, count: 13, source: clientIP, destination: clientIP)) {
            XCTAssertEqual($0 as? NetParseError, .badChecksum, "the pseudo-header is part of the sum")
        }
        var unchecked = packet
        unchecked[7] = 0
        unchecked[8] = 0
        XCTAssertNoThrow(
            try UDPDatagram.parse(unchecked, at: 1, count: 13, source: clientIP, destination: clientIP),
            "checksum 0: none was computed")
        XCTAssertThrowsError(try UDPDatagram.parse(packet, at: 1, count: 7, source: clientIP, destination: serverIP))
        var long = packet
        long[6] = 50  // length 50 > 13
        XCTAssertThrowsError(try UDPDatagram.parse(long, at: 1, count: 13, source: clientIP, destination: serverIP)) {
            XCTAssertEqual($0 as? NetParseError, .badLength)
        }
    }

    func testGarbageFramesAreCountedNotFatal() {
        let (server, _) = makePair()
        XCTAssertTrue(server.listen(port: 80, backlog: 4))
        var state: UInt64 = 42
        for length in 0..<200 {
            var frame = serverMAC + clientMAC + [0x08, 0x00, 0x45, 0x00]
            for _ in 0..<length {
                state ^= state << 13
                state ^= state >> 7
                state ^= state << 17
                frame.append(UInt8(truncatingIfNeeded: state))
            }
            if frame.count > 23 { frame[23] = length % 2 == 0 ? IPProtocol.tcp : IPProtocol.udp }
            server.handle(frame: frame, now: now)
        }
        XCTAssertEqual(server.connectionCount, 0)
        XCTAssertGreaterThan(server.linkCounters.dropped, 150)
    }
}
