import XCTest

@testable import ToroKernelPortable

private let ms: UInt64 = 1_000_000
private let second: UInt64 = 1_000_000_000

/// Two connections wired back to back through a simulated network: every
/// segment is encoded and parsed again, delivered after `latency` (plus a
/// random jitter that reorders), and may be dropped or duplicated.
final class TCPTestNetwork {
    enum Side { case client, server }

    let clientEndpoint = TCPEndpoint(address: IPv4Address(10, 77, 0, 1), port: 40000)
    let serverEndpoint = TCPEndpoint(address: IPv4Address(10, 77, 0, 2), port: 80)
    var now: UInt64 = 0
    var latency: UInt64 = 1 * ms
    var jitter: UInt64 = 0
    var lossPercent = 0
    var duplicatePercent = 0
    var random = XorShift(seed: 1)
    /// Return true to drop a segment sent by `side`.
    var dropFilter: ((TCPSegment, Side) -> Bool)?
    var serverConfiguration: TCPConfiguration
    var clientConfiguration: TCPConfiguration
    var client: TCPConnection
    var server: TCPConnection?
    /// The server's initial sequence number.
    var serverISS: UInt32 = 500_000
    /// Everything sent, in order, with the sender.
    var sent: [(side: Side, segment: TCPSegment, at: UInt64)] = []
    var inFlight: [(at: UInt64, to: Side, segment: TCPSegment)] = []
    /// Called at every step and at least every `applicationInterval`.
    var application: (() -> Void)?
    var applicationInterval: UInt64 = 1 * ms
    /// Called after every delivery (for tracing).
    var observer: (() -> Void)?
    var stuck = false

    init(
        client clientConfiguration: TCPConfiguration = TCPConfiguration(),
        server serverConfiguration: TCPConfiguration = TCPConfiguration(), clientISS: UInt32 = 1000
    ) {
        self.clientConfiguration = clientConfiguration
        self.serverConfiguration = serverConfiguration
        client = TCPConnection(
            connectingFrom: clientEndpoint, to: serverEndpoint, initialSequence: clientISS, now: 0,
            configuration: clientConfiguration)
    }

    func transmit(_ segment: TCPSegment, from side: Side) {
        sent.append((side, segment, now))
        if let dropFilter, dropFilter(segment, side) { return }
        if lossPercent > 0 && random.chance(lossPercent) { return }
        // Through the wire format and back.
        let (source, destination) =
            side == .client
            ? (clientEndpoint.address, serverEndpoint.address) : (serverEndpoint.address, clientEndpoint.address)
        var bytes: [UInt8] = []
        segment.append(to: &bytes, source: source, destination: destination)
        guard let parsed = try? TCPSegment.parse(bytes, at: 0, count: bytes.count, source: source, destination: destination)
        else {
            XCTFail("a sent segment does not parse")
            return
        }
        XCTAssertEqual(parsed, segment)
        let to: Side = side == .client ? .server : .client
        let copies = duplicatePercent > 0 && random.chance(duplicatePercent) ? 2 : 1
        for _ in 0..<copies {
            let delay = latency + (jitter > 0 ? UInt64(random.below(Int(jitter))) : 0)
            inFlight.append((now + delay, to, parsed))
        }
    }

    func flush() {
        for segment in client.output(now: now) { transmit(segment, from: .client) }
        if let server { for segment in server.output(now: now) { transmit(segment, from: .server) } }
    }

    /// What the layer above does for a segment to a forgotten connection (RFC 793 p. 36): a reset.
    func answerWithReset(_ segment: TCPSegment, from side: Side) {
        guard !segment.flags.contains(.rst) else { return }
        let reset =
            segment.flags.contains(.ack)
            ? TCPSegment(
                sourcePort: segment.destinationPort, destinationPort: segment.sourcePort,
                sequence: segment.acknowledgement, acknowledgement: 0, flags: .rst, window: 0)
            : TCPSegment(
                sourcePort: segment.destinationPort, destinationPort: segment.sourcePort, sequence: 0,
                acknowledgement: segment.sequence &+ UInt32(segment.sequenceLength), flags: [.rst, .ack], window: 0)
        transmit(reset, from: side)
    }

    func deliver(_ segment: TCPSegment, to side: Side) {
        switch side {
        case .client:
            if client.isFinished { answerWithReset(segment, from: .client) }
            client.handle(segment, now: now)
        case .server:
            if let server {
                if server.isFinished { answerWithReset(segment, from: .server) }
                server.handle(segment, now: now)
            } else if segment.flags == .syn {
                server = TCPConnection(
                    acceptingSYN: segment, local: serverEndpoint, remote: clientEndpoint, initialSequence: serverISS,
                    now: now, configuration: serverConfiguration)
            }
        }
    }

    /// Runs until `done` or `limit` (absolute time).
    func run(until limit: UInt64, _ done: () -> Bool = { false }) {
        var sameTime = 0
        while now < limit {
            application?()
            flush()
            if done() { return }
            var next: UInt64 = min(now + applicationInterval, limit)
            for packet in inFlight where packet.at < next { next = packet.at }
            if let deadline = client.nextDeadline, deadline < next { next = deadline }
            if let deadline = server?.nextDeadline, deadline < next { next = deadline }
            if next <= now {
                sameTime += 1
                if sameTime > 1000 {
                    stuck = true
                    XCTFail("no progress at \(now)")
                    return
                }
            } else {
                sameTime = 0
                now = next
            }
            var index = 0
            while index < inFlight.count {
                if inFlight[index].at <= now {
                    let packet = inFlight.remove(at: index)
                    deliver(packet.segment, to: packet.to)
                    observer?()
                    flush()
                } else {
                    index += 1
                }
            }
        }
    }

    func connect(file: StaticString = #filePath, line: UInt = #line) {
        run(until: now + 1 * second) { client.state == .established && server?.state == .established }
        XCTAssertEqual(client.state, .established, file: file, line: line)
        XCTAssertEqual(server?.state, .established, file: file, line: line)
    }

    func sentBy(_ side: Side) -> [TCPSegment] { sent.filter { $0.side == side }.map { $0.segment } }
}

/// A peer played by hand: builds segments for a connection under test.
struct TCPPeer {
    var sequence: UInt32
    var acknowledgement: UInt32 = 0
    var window: UInt16 = 65535
    let port: UInt16
    let peerPort: UInt16

    func segment(
        _ flags: TCPFlags, sequence: UInt32? = nil, ack: UInt32? = nil, window: UInt16? = nil,
        mss: UInt16? = nil, payload: [UInt8] = []
    ) -> TCPSegment {
        TCPSegment(
            sourcePort: port, destinationPort: peerPort, sequence: sequence ?? self.sequence,
            acknowledgement: ack ?? acknowledgement, flags: flags, window: window ?? self.window,
            maximumSegmentSize: mss, payload: payload)
    }
}

final class TCPConnectionTests: XCTestCase {
    let local = TCPEndpoint(address: IPv4Address(10, 77, 0, 2), port: 80)
    let remote = TCPEndpoint(address: IPv4Address(10, 77, 0, 1), port: 40000)

    func pattern(_ count: Int, seed: UInt64) -> [UInt8] {
        var random = XorShift(seed: seed)
        return random.bytes(count)
    }

    /// A passive connection taken to established by hand: the peer's ISS is
    /// 7000, ours 100; the peer announces `mss` and `window`.
    func acceptedConnection(
        configuration: TCPConfiguration = TCPConfiguration(), mss: UInt16? = 1460, window: UInt16 = 65535, at now: UInt64 = 0
    ) -> (TCPConnection, TCPPeer) {
        var peer = TCPPeer(sequence: 7000, window: window, port: remote.port, peerPort: local.port)
        let connection = TCPConnection(
            acceptingSYN: peer.segment(.syn, mss: mss), local: local, remote: remote, initialSequence: 100, now: now,
            configuration: configuration)
        let synAck = connection.output(now: now)
        XCTAssertEqual(synAck.count, 1)
        XCTAssertEqual(synAck.first?.flags, [.syn, .ack])
        peer.sequence = 7001
        peer.acknowledgement = 101
        connection.handle(peer.segment(.ack), now: now)
        XCTAssertEqual(connection.state, .established)
        XCTAssertEqual(connection.output(now: now), [])
        return (connection, peer)
    }

    // MARK: - Handshake

    func testThreeWayHandshakeActiveSide() {
        let configuration = TCPConfiguration()
        let connection = TCPConnection(
            connectingFrom: local, to: remote, initialSequence: 0xFFFF_FFF0, now: 0, configuration: configuration)
        XCTAssertEqual(connection.state, .synSent)
        XCTAssertEqual(connection.nextDeadline, 0)
        let syn = connection.output(now: 0)
        XCTAssertEqual(
            syn,
            [
                TCPSegment(
                    sourcePort: 80, destinationPort: 40000, sequence: 0xFFFF_FFF0, acknowledgement: 0,
                    flags: .syn, window: 65535, maximumSegmentSize: 1460)
            ])
        XCTAssertEqual(connection.nextDeadline, 1 * second)  // initial RTO
        XCTAssertEqual(connection.output(now: 10 * ms), [])
        let peer = TCPPeer(sequence: 5000, port: 40000, peerPort: 80)
        connection.handle(peer.segment([.syn, .ack], ack: 0xFFFF_FFF1, window: 30000, mss: 1200), now: 100 * ms)
        XCTAssertEqual(connection.state, .established)
        XCTAssertTrue(connection.isEstablished)
        XCTAssertEqual(connection.effectiveMSS, 1200)
        XCTAssertEqual(connection.smoothedRTT, 100 * ms)
        XCTAssertEqual(connection.retransmissionTimeout, 300 * ms)  // 100 + 4 * 50
        let ack = connection.output(now: 100 * ms)
        XCTAssertEqual(
            ack,
            [
                TCPSegment(
                    sourcePort: 80, destinationPort: 40000, sequence: 0xFFFF_FFF1, acknowledgement: 5001,
                    flags: .ack, window: 65535)
            ])
        XCTAssertNil(connection.nextDeadline.flatMap { $0 < 30 * second ? $0 : nil })  // only the idle timeout remains
    }

    func testThreeWayHandshakePassiveSide() {
        var peer = TCPPeer(sequence: 7000, window: 20000, port: 40000, peerPort: 80)
        let connection = TCPConnection(
            acceptingSYN: peer.segment(.syn, mss: 1460), local: local, remote: remote, initialSequence: 100, now: 0,
            configuration: TCPConfiguration())
        XCTAssertEqual(connection.state, .synReceived)
        XCTAssertFalse(connection.isEstablished)
        let synAck = connection.output(now: 0)
        XCTAssertEqual(
            synAck,
            [
                TCPSegment(
                    sourcePort: 80, destinationPort: 40000, sequence: 100, acknowledgement: 7001,
                    flags: [.syn, .ack], window: 65535, maximumSegmentSize: 1460)
            ])
        // Lost SYN-ACK: retransmitted after the initial RTO.
        XCTAssertEqual(connection.output(now: 999 * ms), [])
        let again = connection.output(now: 1 * second)
        XCTAssertEqual(again.first?.flags, [.syn, .ack])
        XCTAssertEqual(connection.counters.retransmissions, 1)
        // A retransmitted SYN from the peer gets the SYN-ACK again at once.
        connection.handle(peer.segment(.syn, mss: 1460), now: 1100 * ms)
        XCTAssertEqual(connection.output(now: 1100 * ms).first?.flags, [.syn, .ack])
        peer.sequence = 7001
        connection.handle(peer.segment(.ack, ack: 101), now: 1200 * ms)
        XCTAssertEqual(connection.state, .established)
        XCTAssertNil(connection.smoothedRTT)  // Karn: the SYN-ACK was retransmitted
        XCTAssertEqual(connection.output(now: 1200 * ms), [])
    }

    func testUnacceptableSegmentInSynReceivedIsAnsweredOnce() {
        let peer = TCPPeer(sequence: 7000, port: 40000, peerPort: 80)
        let connection = TCPConnection(
            acceptingSYN: peer.segment(.syn), local: local, remote: remote, initialSequence: 100, now: 0,
            configuration: TCPConfiguration())
        _ = connection.output(now: 0)
        connection.handle(peer.segment(.ack, sequence: 7001 &+ 200_000, ack: 101), now: 1 * ms)
        XCTAssertEqual(connection.nextDeadline, 0)
        XCTAssertEqual(connection.output(now: 1 * ms).map { $0.flags }, [.ack])
        XCTAssertEqual(connection.nextDeadline, 1 * second)  // only the SYN-ACK's timer
        XCTAssertEqual(connection.state, .synReceived)
        // An ACK for something we never sent: a reset at that ACK (RFC 793 p. 72).
        connection.handle(peer.segment(.ack, sequence: 7001, ack: 5000), now: 2 * ms)
        XCTAssertEqual(
            connection.output(now: 2 * ms),
            [
                TCPSegment(sourcePort: 80, destinationPort: 40000, sequence: 5000, acknowledgement: 0, flags: .rst, window: 0)
            ])
        XCTAssertEqual(connection.state, .synReceived)
    }

    func testHandshakeOverTheNetwork() {
        let network = TCPTestNetwork()
        network.connect()
        let client = network.sentBy(.client)
        let server = network.sentBy(.server)
        XCTAssertEqual(client.count, 2)
        XCTAssertEqual(server.count, 1)
        XCTAssertEqual(client[0].flags, .syn)
        XCTAssertEqual(server[0].flags, [.syn, .ack])
        XCTAssertEqual(server[0].acknowledgement, 1001)
        XCTAssertEqual(client[1].flags, .ack)
        XCTAssertEqual(client[1].acknowledgement, 500_001)
    }

    func testSimultaneousOpen() {
        let a = TCPConnection(connectingFrom: local, to: remote, initialSequence: 100, now: 0, configuration: TCPConfiguration())
        let b = TCPConnection(connectingFrom: remote, to: local, initialSequence: 9000, now: 0, configuration: TCPConfiguration())
        let synA = a.output(now: 0)
        let synB = b.output(now: 0)
        for segment in synB { a.handle(segment, now: 1 * ms) }
        for segment in synA { b.handle(segment, now: 1 * ms) }
        XCTAssertEqual(a.state, .synReceived)
        XCTAssertEqual(b.state, .synReceived)
        let synAckA = a.output(now: 1 * ms)
        let synAckB = b.output(now: 1 * ms)
        XCTAssertEqual(synAckA.first?.flags, [.syn, .ack])
        for segment in synAckB { a.handle(segment, now: 2 * ms) }
        for segment in synAckA { b.handle(segment, now: 2 * ms) }
        XCTAssertEqual(a.state, .established)
        XCTAssertEqual(b.state, .established)
    }

    func testMSSNegotiation() {
        // A peer without the option: 536 (RFC 9293 §3.7.1).
        let (connection, _) = acceptedConnection(mss: nil)
        XCTAssertEqual(connection.effectiveMSS, 536)
        XCTAssertEqual(connection.send(pattern(2000, seed: 1)[...]), 2000)
        let segments = connection.output(now: 1 * ms)
        XCTAssertEqual(segments.map { $0.payload.count }, [536, 536, 536, 392])
        XCTAssertTrue(segments.allSatisfy { $0.maximumSegmentSize == nil })
        // Both sides use the smaller of the two.
        var small = TCPConfiguration()
        small.maximumSegmentSize = 1000
        let network = TCPTestNetwork(client: small)
        network.connect()
        XCTAssertEqual(network.client.effectiveMSS, 1000)
        XCTAssertEqual(network.server?.effectiveMSS, 1000)
        XCTAssertEqual(network.sentBy(.client)[0].maximumSegmentSize, 1000)
        XCTAssertEqual(network.sentBy(.server)[0].maximumSegmentSize, 1460)
    }

    // MARK: - Data transfer

    /// Sends `clientData` and `serverData` through `network` (already
    /// connected or not), both sides close when done; the readers take
    /// `readChunk` bytes every millisecond. Returns what each side received.
    func exchange(
        _ network: TCPTestNetwork, clientData: [UInt8], serverData: [UInt8], readChunk: Int = 1 << 20,
        limit: UInt64 = 600 * second
    ) -> (atServer: [UInt8], atClient: [UInt8]) {
        var clientSent = 0
        var serverSent = 0
        var atServer: [UInt8] = []
        var atClient: [UInt8] = []
        network.application = {
            let client = network.client
            if clientSent < clientData.count {
                clientSent += client.send(clientData[clientSent...])
            } else if client.state == .established || client.state == .closeWait {
                client.close(now: network.now)
            }
            atClient += client.receive(maximum: readChunk)
            guard let server = network.server else { return }
            if server.state != .synReceived {
                if serverSent < serverData.count {
                    serverSent += server.send(serverData[serverSent...])
                } else if server.state == .established || server.state == .closeWait {
                    server.close(now: network.now)
                }
            }
            atServer += server.receive(maximum: readChunk)
        }
        network.run(until: network.now + limit) {
            network.client.isFinished && (network.server?.isFinished ?? false)
        }
        // A finished connection keeps what the application has not read yet.
        atClient += network.client.receive(maximum: Int.max)
        atServer += network.server?.receive(maximum: Int.max) ?? []
        return (atServer, atClient)
    }

    func testLargeTransferBothWaysThroughSmallWindows() {
        var configuration = TCPConfiguration()
        configuration.receiveBufferSize = 4096
        configuration.sendBufferSize = 8192
        let network = TCPTestNetwork(client: configuration, server: configuration)
        let up = pattern(200 * 1024, seed: 2)
        let down = pattern(200 * 1024 + 333, seed: 3)
        let result = exchange(network, clientData: up, serverData: down, readChunk: 1500)
        XCTAssertEqual(result.atServer.count, up.count)
        XCTAssertTrue(result.atServer == up)
        XCTAssertEqual(result.atClient.count, down.count)
        XCTAssertTrue(result.atClient == down)
        XCTAssertEqual(network.client.closeReason, .normal)
        XCTAssertEqual(network.server?.closeReason, .normal)
        XCTAssertTrue(network.server?.receivedFIN ?? false)
        XCTAssertFalse(network.stuck)
        // Never more in flight than the 4096-byte window allows, never a segment over the MSS.
        for entry in network.sent { XCTAssertLessThanOrEqual(entry.segment.payload.count, 1460) }
        XCTAssertTrue(network.sent.allSatisfy { $0.segment.window <= 4096 })
        XCTAssertEqual(network.client.counters.retransmissions, 0)
        XCTAssertEqual(network.server?.counters.retransmissions, 0)
        // The right edge each side advertises (ACK + window) never moves left.
        for side in [TCPTestNetwork.Side.client, .server] {
            var edge: UInt32? = nil
            for segment in network.sentBy(side) where segment.flags.contains(.ack) && !segment.flags.contains(.rst) {
                let right = segment.acknowledgement &+ UInt32(segment.window)
                if let edge { XCTAssertGreaterThanOrEqual(Int32(bitPattern: right &- edge), 0) }
                edge = right
            }
        }
    }

    func testLargeTransferFastReader() {
        let network = TCPTestNetwork()
        let up = pattern(300 * 1024, seed: 4)
        let result = exchange(network, clientData: up, serverData: [])
        XCTAssertTrue(result.atServer == up)
        XCTAssertTrue(network.client.isFinished)
        XCTAssertEqual(network.client.counters.retransmissions, 0)
    }

    func testDataQueuedDuringHandshakeGoesAfterIt() {
        let connection = TCPConnection(
            connectingFrom: local, to: remote, initialSequence: 10, now: 0, configuration: TCPConfiguration())
        XCTAssertEqual(connection.send([1, 2, 3][...]), 3)
        XCTAssertEqual(connection.unacknowledgedBytes, 3)
        let syn = connection.output(now: 0)
        XCTAssertEqual(syn.count, 1)
        XCTAssertEqual(syn[0].payload, [])
        let peer = TCPPeer(sequence: 50, port: 40000, peerPort: 80)
        connection.handle(peer.segment([.syn, .ack], ack: 11, mss: 1460), now: 1 * ms)
        let out = connection.output(now: 1 * ms)
        XCTAssertEqual(out.count, 1)
        XCTAssertEqual(out[0].payload, [1, 2, 3])
        XCTAssertEqual(out[0].sequence, 11)
        XCTAssertEqual(out[0].flags, [.ack, .psh])
        XCTAssertEqual(out[0].acknowledgement, 51)
    }

    // MARK: - Retransmission

    func testRetransmissionTimerBackoffAndRTTEstimate() {
        var configuration = TCPConfiguration()
        configuration.idleTimeout = 0
        let connection = TCPConnection(
            connectingFrom: local, to: remote, initialSequence: 0, now: 0, configuration: configuration)
        _ = connection.output(now: 0)
        var peer = TCPPeer(sequence: 5000, port: 40000, peerPort: 80)
        connection.handle(peer.segment([.syn, .ack], ack: 1, mss: 1460), now: 100 * ms)
        _ = connection.output(now: 100 * ms)
        XCTAssertEqual(connection.smoothedRTT, 100 * ms)
        XCTAssertEqual(connection.retransmissionTimeout, 300 * ms)
        peer.sequence = 5001

        // 100 bytes at t = 1 s, "dropped".
        let data = pattern(100, seed: 5)
        XCTAssertEqual(connection.send(data[...]), 100)
        let first = connection.output(now: 1 * second)
        XCTAssertEqual(first.map { $0.payload }, [data])
        XCTAssertEqual(connection.nextDeadline, 1300 * ms)
        XCTAssertEqual(connection.output(now: 1300 * ms - 1), [])
        let retry1 = connection.output(now: 1300 * ms)
        XCTAssertEqual(retry1.map { $0.payload }, [data])
        XCTAssertEqual(retry1.first?.sequence, 1)
        XCTAssertEqual(connection.retransmissionTimeout, 600 * ms)
        XCTAssertEqual(connection.nextDeadline, 1900 * ms)
        let retry2 = connection.output(now: 1900 * ms)
        XCTAssertEqual(retry2.map { $0.payload }, [data])
        XCTAssertEqual(connection.retransmissionTimeout, 1200 * ms)
        XCTAssertEqual(connection.nextDeadline, 3100 * ms)
        XCTAssertEqual(connection.counters.timeouts, 2)
        XCTAssertEqual(connection.counters.retransmissions, 2)

        // The ACK: no sample (Karn), the timer stops.
        connection.handle(peer.segment(.ack, ack: 101), now: 2000 * ms)
        XCTAssertEqual(connection.smoothedRTT, 100 * ms)
        XCTAssertEqual(connection.unacknowledgedBytes, 0)
        XCTAssertNil(connection.nextDeadline)

        // New data measured at 50 ms: SRTT = 7/8·100 + 1/8·50 = 93.75 ms,
        // RTTVAR = 3/4·50 + 1/4·|100 − 50| = 50 ms, RTO = 93.75 + 200 = 293.75 ms.
        XCTAssertEqual(connection.send(data[...]), 100)
        _ = connection.output(now: 3 * second)
        connection.handle(peer.segment(.ack, ack: 201), now: 3050 * ms)
        XCTAssertEqual(connection.smoothedRTT, 93_750_000)
        XCTAssertEqual(connection.retransmissionTimeout, 293_750_000)
    }

    func testMinimumAndMaximumRTO() {
        var configuration = TCPConfiguration()
        configuration.maximumRTO = 3 * second
        configuration.idleTimeout = 0
        configuration.maximumRetransmissions = 20
        let connection = TCPConnection(
            connectingFrom: local, to: remote, initialSequence: 0, now: 0, configuration: configuration)
        _ = connection.output(now: 0)
        let peer = TCPPeer(sequence: 5000, port: 40000, peerPort: 80)
        connection.handle(peer.segment([.syn, .ack], ack: 1, mss: 1460), now: 1 * ms)
        XCTAssertEqual(connection.retransmissionTimeout, 200 * ms)  // 1 ms + 4·0.5 ms, clamped up
        _ = connection.send([1][...])
        var now: UInt64 = 10 * ms
        _ = connection.output(now: now)
        var timeouts: [UInt64] = []
        for _ in 0..<6 {
            now = connection.nextDeadline!
            _ = connection.output(now: now)
            timeouts.append(connection.retransmissionTimeout)
        }
        XCTAssertEqual(timeouts, [400 * ms, 800 * ms, 1600 * ms, 3 * second, 3 * second, 3 * second])
    }

    func testGiveUpAfterMaximumRetransmissions() {
        var configuration = TCPConfiguration()
        configuration.idleTimeout = 0
        configuration.maximumRetransmissions = 4
        let (connection, _) = acceptedConnection(configuration: configuration)
        _ = connection.send(pattern(10, seed: 6)[...])
        var sent = connection.output(now: 0)
        XCTAssertEqual(sent.count, 1)
        var now: UInt64 = 0
        while let deadline = connection.nextDeadline, connection.state != .closed {
            now = deadline
            sent += connection.output(now: now)
        }
        XCTAssertEqual(connection.state, .closed)
        XCTAssertEqual(connection.closeReason, .timedOut)
        XCTAssertEqual(connection.counters.timeouts, 4)
        XCTAssertEqual(sent.count, 6)  // the original, 4 retransmissions, the reset
        XCTAssertEqual(sent.last?.flags, [.rst, .ack])
        XCTAssertEqual(sent.last?.sequence, 111)
        XCTAssertEqual(now, (200 + 400 + 800 + 1600 + 3200) * ms)  // RTO from the handshake's sample: 200 ms, doubling
        XCTAssertTrue(connection.isFinished)
        XCTAssertEqual(connection.output(now: now + second), [])
        XCTAssertEqual(connection.send([1][...]), 0)
    }

    func testSYNGiveUp() {
        var configuration = TCPConfiguration()
        configuration.maximumRetransmissions = 3
        let connection = TCPConnection(
            connectingFrom: local, to: remote, initialSequence: 0, now: 0, configuration: configuration)
        var sent = connection.output(now: 0)
        while let deadline = connection.nextDeadline, connection.state != .closed {
            sent += connection.output(now: deadline)
        }
        XCTAssertEqual(sent.map { $0.flags }, [.syn, .syn, .syn, .syn])  // no reset from synSent
        XCTAssertEqual(connection.closeReason, .timedOut)
        XCTAssertTrue(connection.isFinished)
    }

    func testRetransmissionAfterDroppedSegmentOverTheNetwork() {
        let network = TCPTestNetwork()
        network.connect()
        var dropped = false
        network.dropFilter = { segment, side in
            // Drop the second data segment from the client, once.
            if side == .client && !dropped && segment.sequence == 1001 + 1460 && !segment.payload.isEmpty {
                dropped = true
                return true
            }
            return false
        }
        let data = pattern(3 * 1460, seed: 7)
        _ = network.client.send(data[...])
        var received: [UInt8] = []
        network.application = { received += network.server!.receive(maximum: 1 << 20) }
        network.run(until: network.now + 5 * second) { received.count == data.count }
        XCTAssertTrue(dropped)
        XCTAssertTrue(received == data)
        XCTAssertEqual(network.server?.counters.outOfOrderSegments, 1)
        XCTAssertGreaterThanOrEqual(network.client.counters.retransmissions, 1)
    }

    func testFastRetransmitOnThirdDuplicateACK() {
        let (connection, peer) = acceptedConnection(mss: 1000)
        let data = pattern(8000, seed: 8)
        _ = connection.send(data[...])
        var out = connection.output(now: 1 * ms)
        XCTAssertEqual(out.map { $0.sequence }, [101, 1101, 2101, 3101])  // initial window 4 · 1000
        connection.handle(peer.segment(.ack, ack: 1101), now: 10 * ms)
        out = connection.output(now: 10 * ms)
        XCTAssertEqual(out.map { $0.sequence }, [4101, 5101])  // slow start: +1 MSS
        let smoothedBefore = connection.smoothedRTT
        XCTAssertEqual(smoothedBefore, 1_125_000)  // samples 0 (handshake) then 9 ms: 0 + 9/8 ms
        // 2101 is lost: three duplicate ACKs for 1101. The first two each let
        // one new segment out (limited transmit, RFC 3042).
        connection.handle(peer.segment(.ack, ack: 1101), now: 11 * ms)
        XCTAssertEqual(connection.output(now: 11 * ms).map { $0.sequence }, [6101])
        connection.handle(peer.segment(.ack, ack: 1101), now: 11 * ms)
        XCTAssertEqual(connection.output(now: 11 * ms).map { $0.sequence }, [7101])
        XCTAssertEqual(connection.counters.fastRetransmissions, 0)
        connection.handle(peer.segment(.ack, ack: 1101), now: 12 * ms)
        out = connection.output(now: 12 * ms)
        XCTAssertEqual(out.map { $0.sequence }, [1101])
        XCTAssertEqual(out.first?.payload, Array(data[1000..<2000]))
        XCTAssertEqual(connection.counters.fastRetransmissions, 1)
        XCTAssertEqual(connection.counters.timeouts, 0)
        XCTAssertEqual(connection.slowStartThreshold, 3500)  // half of the 7000 bytes in flight
        // A partial ACK (NewReno) retransmits the next hole at once.
        connection.handle(peer.segment(.ack, ack: 2101), now: 20 * ms)
        out = connection.output(now: 20 * ms)
        XCTAssertEqual(out.map { $0.sequence }, [2101])
        XCTAssertEqual(connection.counters.fastRetransmissions, 2)
        XCTAssertNotNil(connection.recoveryPoint)
        // Everything sent before the loss acknowledged: recovery ends, the window deflates.
        connection.handle(peer.segment(.ack, ack: 8101), now: 30 * ms)
        XCTAssertNil(connection.recoveryPoint)
        XCTAssertEqual(connection.congestionWindow, 3500)
        XCTAssertEqual(connection.unacknowledgedBytes, 0)
        XCTAssertEqual(connection.smoothedRTT, smoothedBefore)  // Karn: these ACKs covered retransmitted data
    }

    // MARK: - Reception

    func testOutOfOrderSegmentsAreReassembled() {
        let (connection, peer) = acceptedConnection()
        let data = pattern(3000, seed: 9)
        connection.handle(peer.segment(.ack, sequence: 8001, ack: 101, payload: Array(data[1000..<2000])), now: 1 * ms)
        var out = connection.output(now: 1 * ms)
        XCTAssertEqual(out.map { $0.acknowledgement }, [7001])  // a duplicate ACK at once
        XCTAssertEqual(connection.bytesAvailable, 0)
        connection.handle(peer.segment([.ack, .fin], sequence: 9001, ack: 101, payload: Array(data[2000..<3000])), now: 2 * ms)
        out = connection.output(now: 2 * ms)
        XCTAssertEqual(out.map { $0.acknowledgement }, [7001])
        XCTAssertEqual(connection.counters.outOfOrderSegments, 2)
        XCTAssertEqual(connection.state, .established)
        connection.handle(peer.segment(.ack, sequence: 7001, ack: 101, payload: Array(data[0..<1000])), now: 3 * ms)
        out = connection.output(now: 3 * ms)
        XCTAssertEqual(out.map { $0.acknowledgement }, [10002])  // data and the held FIN
        XCTAssertEqual(connection.receive(maximum: 10000), data)
        XCTAssertTrue(connection.receivedFIN)
        XCTAssertEqual(connection.state, .closeWait)
    }

    func testOverlappingAndDuplicateSegments() {
        let (connection, peer) = acceptedConnection()
        let data = pattern(3000, seed: 10)
        connection.handle(peer.segment(.ack, sequence: 7001, payload: Array(data[0..<1000])), now: 1 * ms)
        connection.handle(peer.segment(.ack, sequence: 7001, payload: Array(data[0..<1000])), now: 2 * ms)
        XCTAssertEqual(connection.counters.duplicateSegments, 1)
        XCTAssertEqual(connection.output(now: 2 * ms).map { $0.acknowledgement }, [8001])  // a duplicate is ACKed at once
        // Overlapping the old data: only the new part is kept.
        connection.handle(peer.segment(.ack, sequence: 7501, payload: Array(data[500..<2000])), now: 3 * ms)
        // An out-of-order piece held twice is held once.
        connection.handle(peer.segment(.ack, sequence: 9501, payload: Array(data[2500..<3000])), now: 4 * ms)
        connection.handle(peer.segment(.ack, sequence: 9501, payload: Array(data[2500..<3000])), now: 4 * ms)
        XCTAssertEqual(connection.held.count, 1)
        connection.handle(peer.segment(.ack, sequence: 9001, payload: Array(data[2000..<2700])), now: 5 * ms)
        XCTAssertEqual(connection.receive(maximum: 1 << 20), data)
        XCTAssertEqual(connection.counters.duplicateSegments, 2)
    }

    func testDataBeyondTheWindowIsTrimmed() {
        var configuration = TCPConfiguration()
        configuration.receiveBufferSize = 1000
        let (connection, peer) = acceptedConnection(configuration: configuration)
        let data = pattern(1500, seed: 11)
        connection.handle(peer.segment(.ack, payload: data), now: 1 * ms)
        XCTAssertEqual(connection.bytesAvailable, 1000)
        let out = connection.output(now: 1 * ms)
        XCTAssertEqual(out.map { $0.acknowledgement }, [8001])
        XCTAssertEqual(out.map { $0.window }, [0])
        // Reading 499 bytes is below min(MSS, half the buffer): no update; 500 is.
        _ = connection.receive(maximum: 499)
        XCTAssertEqual(connection.output(now: 2 * ms), [])
        _ = connection.receive(maximum: 1)
        let update = connection.output(now: 3 * ms)
        XCTAssertEqual(update.map { $0.window }, [500])
        // A probe into a closed window is not accepted but is answered.
        XCTAssertEqual(connection.receive(maximum: 1000).count, 500)
    }

    func testDelayedACK() {
        let (connection, peer) = acceptedConnection()
        // One small segment: the ACK waits 20 ms.
        connection.handle(peer.segment([.ack, .psh], payload: [1, 2, 3]), now: 10 * ms)
        XCTAssertEqual(connection.output(now: 10 * ms), [])
        XCTAssertEqual(connection.nextDeadline, 30 * ms)
        XCTAssertEqual(connection.output(now: 29 * ms), [])
        XCTAssertEqual(connection.output(now: 30 * ms).map { $0.acknowledgement }, [7004])
        // Two full segments: one ACK for both, at once.
        let full = pattern(1460, seed: 12)
        connection.handle(peer.segment(.ack, sequence: 7004, payload: full), now: 40 * ms)
        XCTAssertEqual(connection.output(now: 40 * ms), [])
        connection.handle(peer.segment(.ack, sequence: 7004 + 1460, payload: full), now: 41 * ms)
        XCTAssertEqual(connection.output(now: 41 * ms).map { $0.acknowledgement }, [7004 + 2920])
        // A request answered within the delay: the ACK rides on the response.
        connection.handle(peer.segment([.ack, .psh], sequence: 7004 + 2920, payload: [9]), now: 50 * ms)
        _ = connection.send([4, 5][...])
        let out = connection.output(now: 55 * ms)
        XCTAssertEqual(out.count, 1)
        XCTAssertEqual(out.first?.payload, [4, 5])
        XCTAssertEqual(out.first?.acknowledgement, 7004 + 2921)
        XCTAssertEqual(connection.output(now: 80 * ms), [])
        _ = connection.receive(maximum: 10000)
    }

    // MARK: - Resets

    func testResetInSynSent() {
        let connection = TCPConnection(
            connectingFrom: local, to: remote, initialSequence: 100, now: 0, configuration: TCPConfiguration())
        _ = connection.output(now: 0)
        let peer = TCPPeer(sequence: 0, port: 40000, peerPort: 80)
        connection.handle(peer.segment(.rst), now: 1 * ms)  // no ACK: ignored
        XCTAssertEqual(connection.state, .synSent)
        connection.handle(peer.segment([.rst, .ack], ack: 50), now: 1 * ms)  // unacceptable ACK: ignored
        XCTAssertEqual(connection.state, .synSent)
        // An unacceptable ACK without RST is answered with a reset at its ACK.
        connection.handle(peer.segment(.ack, ack: 5000), now: 1 * ms)
        XCTAssertEqual(connection.output(now: 1 * ms).map { $0.flags }, [.rst])
        connection.handle(peer.segment([.rst, .ack], ack: 101), now: 2 * ms)
        XCTAssertEqual(connection.state, .closed)
        XCTAssertEqual(connection.closeReason, .refused)
        XCTAssertTrue(connection.isFinished)
        XCTAssertEqual(connection.output(now: 2 * ms), [])
    }

    func testResetInSynReceived() {
        let peer = TCPPeer(sequence: 7000, port: 40000, peerPort: 80)
        let connection = TCPConnection(
            acceptingSYN: peer.segment(.syn), local: local, remote: remote, initialSequence: 100, now: 0,
            configuration: TCPConfiguration())
        _ = connection.output(now: 0)
        connection.handle(peer.segment(.rst, sequence: 7001), now: 1 * ms)
        XCTAssertEqual(connection.state, .closed)
        XCTAssertEqual(connection.closeReason, .reset)
        XCTAssertEqual(connection.output(now: 1 * ms), [])
    }

    /// A connection brought to `state` by hand, and its peer.
    func connection(in state: TCPState) -> (TCPConnection, TCPPeer) {
        var (connection, peer) = acceptedConnection()
        switch state {
        case .established:
            break
        case .finWait1:
            connection.close(now: 0)
            _ = connection.output(now: 0)
        case .finWait2:
            connection.close(now: 0)
            _ = connection.output(now: 0)
            connection.handle(peer.segment(.ack, ack: 102), now: 1 * ms)
        case .closeWait:
            connection.handle(peer.segment([.ack, .fin]), now: 1 * ms)
            peer.sequence += 1
            _ = connection.output(now: 1 * ms)
        case .lastAck:
            connection.handle(peer.segment([.ack, .fin]), now: 1 * ms)
            peer.sequence += 1
            connection.close(now: 1 * ms)
            _ = connection.output(now: 1 * ms)
        case .closing:
            connection.close(now: 0)
            _ = connection.output(now: 0)
            connection.handle(peer.segment([.ack, .fin], ack: 101), now: 1 * ms)
            peer.sequence += 1
        case .timeWait:
            connection.close(now: 0)
            _ = connection.output(now: 0)
            connection.handle(peer.segment([.ack, .fin], ack: 102), now: 1 * ms)
            peer.sequence += 1
        default:
            XCTFail("no recipe for \(state)")
        }
        XCTAssertEqual(connection.state, state)
        return (connection, peer)
    }

    func testResetInEachSynchronizedState() {
        let states: [TCPState] = [.established, .finWait1, .finWait2, .closeWait, .closing, .lastAck, .timeWait]
        for state in states {
            // Inside the window but not exact: a challenge ACK, nothing else (RFC 5961).
            var (connection, peer) = self.connection(in: state)
            _ = connection.output(now: 2 * ms)
            connection.handle(peer.segment(.rst, sequence: peer.sequence &+ 10), now: 2 * ms)
            XCTAssertEqual(connection.state, state, "\(state)")
            XCTAssertEqual(connection.output(now: 2 * ms).map { $0.flags }, [.ack], "\(state)")
            // Exact: closed.
            connection.handle(peer.segment(.rst), now: 3 * ms)
            XCTAssertEqual(connection.state, .closed, "\(state)")
            XCTAssertEqual(connection.closeReason, state == .timeWait ? .normal : .reset, "\(state)")
            XCTAssertEqual(connection.output(now: 3 * ms), [], "\(state)")
            XCTAssertTrue(connection.isFinished)
            // A closed connection ignores everything.
            peer.sequence &+= 0
            connection.handle(peer.segment(.ack), now: 4 * ms)
            XCTAssertEqual(connection.output(now: 4 * ms), [])
        }
    }

    /// RFC 5961 §4.2 / RFC 9293 §3.10.7.4: a SYN on a synchronized connection,
    /// in the window or not, gets a challenge ACK (SND.NXT, RCV.NXT) and the
    /// connection stays; a peer that really restarted answers it with an
    /// exact reset, which ends the connection.
    func testSYNOnASynchronizedConnectionGetsAChallengeACK() {
        let states: [TCPState] = [.established, .finWait1, .finWait2, .closeWait, .closing, .lastAck, .timeWait]
        for state in states {
            for sequence: UInt32 in [7005, 7001, 7001 &+ 200_000] {  // in the window, at RCV.NXT, far outside
                let (connection, peer) = self.connection(in: state)
                _ = connection.output(now: 2 * ms)
                let received = connection.counters.badSegments
                connection.handle(peer.segment(.syn, sequence: sequence), now: 2 * ms)
                XCTAssertEqual(connection.state, state, "\(state) \(sequence)")
                let answer = connection.output(now: 2 * ms)
                XCTAssertEqual(answer.map { $0.flags }, [.ack], "\(state) \(sequence)")
                XCTAssertEqual(answer.first?.sequence, connection.sndNxt, "\(state)")
                XCTAssertEqual(answer.first?.acknowledgement, connection.rcvNxt, "\(state)")
                XCTAssertEqual(connection.counters.challengeACKs, 1, "\(state)")
                XCTAssertEqual(connection.counters.badSegments, received + 1, "\(state)")
                // The restarted peer's reset, at the challenge ACK's number, ends it.
                connection.handle(peer.segment(.rst, sequence: answer.first?.acknowledgement ?? 0), now: 3 * ms)
                XCTAssertEqual(connection.state, .closed, "\(state)")
            }
        }
        // A SYN with data and FIN, in the window: no byte of it is taken.
        let (connection, peer) = acceptedConnection()
        connection.handle(peer.segment([.syn, .fin], sequence: 7001, payload: [1, 2, 3]), now: 1 * ms)
        XCTAssertEqual(connection.state, .established)
        XCTAssertEqual(connection.bytesAvailable, 0)
        XCTAssertFalse(connection.receivedFIN)
        XCTAssertEqual(connection.output(now: 1 * ms).map { $0.acknowledgement }, [7001])
    }

    /// In SYN-RECEIVED a SYN other than the one answered gives the half-open
    /// connection up (RFC 793; RFC 5961 §4 covers synchronized states).
    func testAnotherSYNInSynReceivedResets() {
        let peer = TCPPeer(sequence: 7000, port: 40000, peerPort: 80)
        let connection = TCPConnection(
            acceptingSYN: peer.segment(.syn), local: local, remote: remote, initialSequence: 100, now: 0,
            configuration: TCPConfiguration())
        _ = connection.output(now: 0)
        connection.handle(peer.segment(.syn, sequence: 7010), now: 1 * ms)
        XCTAssertEqual(connection.state, .closed)
        XCTAssertEqual(connection.closeReason, .reset)
        XCTAssertEqual(connection.output(now: 1 * ms).map { $0.flags }, [[.rst, .ack]])
    }

    /// RFC 5961 §7: at most `challengeACKLimit` challenge ACKs per interval,
    /// whatever asks for them (RSTs and SYNs in the window, ACKs of data never
    /// sent); the next interval allows as many again.
    func testChallengeACKsAreRateLimited() {
        var configuration = TCPConfiguration()
        configuration.idleTimeout = 0
        let (connection, peer) = acceptedConnection(configuration: configuration)
        var answered = 0
        var time = 1 * ms
        for index in 0..<30 {
            switch index % 3 {
            case 0: connection.handle(peer.segment(.rst, sequence: 7001 &+ 10), now: time)
            case 1: connection.handle(peer.segment(.syn, sequence: 7001 &+ 10), now: time)
            default: connection.handle(peer.segment(.ack, ack: 5000), now: time)
            }
            answered += connection.output(now: time).count
            time += 10 * ms
        }
        XCTAssertEqual(answered, configuration.challengeACKLimit, "30 in 300 ms")
        XCTAssertEqual(connection.counters.challengeACKs, configuration.challengeACKLimit)
        XCTAssertEqual(connection.counters.challengeACKsSuppressed, 30 - configuration.challengeACKLimit)
        XCTAssertEqual(connection.state, .established)
        // A second later the limit starts over.
        time = 1 * ms + configuration.challengeACKInterval
        connection.handle(peer.segment(.rst, sequence: 7001 &+ 10), now: time)
        XCTAssertEqual(connection.output(now: time).map { $0.flags }, [.ack])
        // An exact reset needs no ACK and is never held back.
        connection.handle(peer.segment(.rst), now: time)
        XCTAssertEqual(connection.state, .closed)
    }

    /// A passive connection whose SYN-ACK is never answered resends it 5 times
    /// (1 s, backing off) and ends at 63 s without a reset.
    func testHalfOpenConnectionGivesUpSilently() {
        let peer = TCPPeer(sequence: 7000, port: 40000, peerPort: 80)
        let connection = TCPConnection(
            acceptingSYN: peer.segment(.syn), local: local, remote: remote, initialSequence: 100, now: 0,
            configuration: TCPConfiguration())
        var sent: [(UInt64, TCPFlags)] = connection.output(now: 0).map { (0, $0.flags) }
        while let deadline = connection.nextDeadline, connection.state != .closed {
            sent += connection.output(now: deadline).map { (deadline, $0.flags) }
        }
        XCTAssertEqual(sent.map { $0.0 }, [0, 1, 3, 7, 15, 31].map { $0 * second })
        XCTAssertTrue(sent.allSatisfy { $0.1 == [.syn, .ack] }, "SYN-ACKs only, no reset")
        XCTAssertEqual(connection.closeReason, .timedOut)
        XCTAssertTrue(connection.isFinished)
        XCTAssertEqual(connection.counters.timeouts, 5)
        // An active open keeps its own, longer, limit.
        var configuration = TCPConfiguration()
        configuration.maximumSYNACKRetransmissions = 1
        let active = TCPConnection(connectingFrom: local, to: remote, initialSequence: 0, now: 0, configuration: configuration)
        var syns = active.output(now: 0)
        while let deadline = active.nextDeadline, active.state != .closed { syns += active.output(now: deadline) }
        XCTAssertEqual(syns.count, 1 + TCPConfiguration().maximumRetransmissions)
    }

    /// The MSS a peer announces is raised to `minimumPeerMSS`: an MSS of 0 or
    /// 1 must not turn every byte into a segment.
    func testPeerMSSHasAFloor() {
        for (announced, expected) in [(0, 48), (1, 48), (47, 48), (48, 48), (100, 100), (65535, 1460)] {
            let (connection, _) = acceptedConnection(mss: UInt16(announced))
            XCTAssertEqual(connection.effectiveMSS, expected, "MSS \(announced)")
            XCTAssertEqual(connection.send(pattern(1000, seed: 3)[...]), 1000)
            let segments = connection.output(now: 1 * ms)
            XCTAssertTrue(segments.allSatisfy { $0.payload.count <= expected }, "MSS \(announced)")
        }
    }

    /// Out-of-order pieces held are bounded in number as well as in bytes.
    func testHeldOutOfOrderPiecesAreBounded() {
        let (connection, peer) = acceptedConnection()
        let limit = TCPConfiguration().maximumHeldSegments
        // One byte at every other sequence number after a gap at 7001.
        for index in 0..<(3 * limit) {
            connection.handle(peer.segment(.ack, sequence: 7003 &+ UInt32(2 * index), payload: [UInt8(truncatingIfNeeded: index)]),
                              now: 1 * ms)
            XCTAssertLessThanOrEqual(connection.held.count, limit)
        }
        XCTAssertEqual(connection.held.count, limit)
        // The gap fills; what was held is delivered, what was not comes again later.
        connection.handle(peer.segment(.ack, sequence: 7001, payload: [0xAA, 0xBB]), now: 2 * ms)
        XCTAssertEqual(connection.bytesAvailable, 3, "the gap and the first held byte; the next hole follows")
        XCTAssertEqual(connection.receive(maximum: 10), [0xAA, 0xBB, 0])
        XCTAssertEqual(connection.held.count, limit - 1)
    }

    /// Sequence numbers on both sides start just below 2^32 and wrap during
    /// a transfer: everything arrives, in order, both ways.
    func testSequenceNumbersWrapBothWays() {
        let network = TCPTestNetwork(clientISS: 0xFFFF_FF00)
        network.serverISS = 0xFFFF_FFF0
        network.connect()
        let clientData = pattern(70_000, seed: 11)
        let serverData = pattern(90_000, seed: 12)
        let (atServer, atClient) = exchange(network, clientData: clientData, serverData: serverData)
        XCTAssertTrue(atServer == clientData)
        XCTAssertTrue(atClient == serverData)
        XCTAssertLessThan(network.server?.sndNxt ?? .max, 0x0010_0000, "the server's numbers wrapped")
        XCTAssertLessThan(network.client.sndNxt, 0x0010_0000, "the client's numbers wrapped")
    }

    func testAbort() {
        let (connection, _) = acceptedConnection()
        _ = connection.send([1, 2, 3][...])
        _ = connection.output(now: 1 * ms)
        connection.abort(now: 2 * ms)
        XCTAssertEqual(connection.state, .closed)
        XCTAssertEqual(connection.closeReason, .aborted)
        XCTAssertFalse(connection.isFinished)
        let out = connection.output(now: 2 * ms)
        XCTAssertEqual(out.count, 1)
        XCTAssertEqual(out.first?.flags, [.rst, .ack])
        XCTAssertEqual(out.first?.sequence, 104)  // SND.NXT
        XCTAssertTrue(connection.isFinished)
        XCTAssertEqual(connection.send([1][...]), 0)
        connection.abort(now: 3 * ms)  // idempotent
        XCTAssertEqual(connection.output(now: 3 * ms), [])
        // In synSent: no reset.
        let early = TCPConnection(
            connectingFrom: local, to: remote, initialSequence: 1, now: 0, configuration: TCPConfiguration())
        _ = early.output(now: 0)
        early.abort(now: 1)
        XCTAssertEqual(early.output(now: 1), [])
        XCTAssertEqual(early.closeReason, .aborted)
    }

    func testUnacceptableSegmentsAreAnsweredWithACK() {
        let (connection, peer) = acceptedConnection()
        connection.handle(peer.segment(.ack, sequence: 7001 &+ 100_000, payload: [1]), now: 1 * ms)
        XCTAssertEqual(connection.counters.badSegments, 1)
        XCTAssertEqual(connection.output(now: 1 * ms).map { $0.acknowledgement }, [7001])
        connection.handle(peer.segment(.ack, ack: 5000), now: 2 * ms)  // acknowledges the future
        XCTAssertEqual(connection.output(now: 2 * ms).map { $0.flags }, [.ack])
        XCTAssertEqual(connection.state, .established)
    }

    func testRandomSegmentsNeverCrash() {
        var random = XorShift(seed: 99)
        for round in 0..<200 {
            let (connection, _) = acceptedConnection()
            if round % 2 == 0 { _ = connection.send(pattern(5000, seed: UInt64(round))[...]) }
            if round % 3 == 0 { connection.close(now: 0) }
            var now: UInt64 = 0
            for _ in 0..<50 {
                now += UInt64(random.below(Int(2 * second)))
                let near = random.chance(50)
                let segment = TCPSegment(
                    sourcePort: 40000, destinationPort: 80,
                    sequence: near
                        ? 7001 &+ UInt32(truncatingIfNeeded: random.below(70000)) : UInt32(truncatingIfNeeded: random.next()),
                    acknowledgement: near
                        ? 101 &+ UInt32(truncatingIfNeeded: random.below(6000)) : UInt32(truncatingIfNeeded: random.next()),
                    flags: TCPFlags(rawValue: UInt8(truncatingIfNeeded: random.next())),
                    window: UInt16(truncatingIfNeeded: random.next()),
                    maximumSegmentSize: random.chance(10) ? UInt16(truncatingIfNeeded: random.next()) : nil,
                    payload: random.bytes(random.below(2000)))
                connection.handle(segment, now: now)
                _ = connection.output(now: now)
                if let deadline = connection.nextDeadline { XCTAssertGreaterThan(deadline, now, "\(connection.state)") }
                _ = connection.receive(maximum: random.below(3000))
                if let deadline = connection.nextDeadline, deadline <= now + second {
                    _ = connection.output(now: max(deadline, now))
                }
            }
        }
    }

    func testRandomSegmentsInEveryStateNeverCrash() {
        var random = XorShift(seed: 4242)
        let states: [TCPState] = [.established, .finWait1, .finWait2, .closeWait, .closing, .lastAck, .timeWait]
        for round in 0..<300 {
            let connection: TCPConnection
            var base: UInt32 = 7001
            switch round % 9 {
            case 7:
                connection = TCPConnection(
                    connectingFrom: local, to: remote, initialSequence: 100, now: 0, configuration: TCPConfiguration())
                _ = connection.output(now: 0)
            case 8:
                let peer = TCPPeer(sequence: 7000, port: 40000, peerPort: 80)
                connection = TCPConnection(
                    acceptingSYN: peer.segment(.syn), local: local, remote: remote, initialSequence: 100, now: 0,
                    configuration: TCPConfiguration())
                _ = connection.output(now: 0)
            default:
                let (made, peer) = self.connection(in: states[round % 9])
                connection = made
                base = peer.sequence
            }
            var now: UInt64 = 2 * ms
            for _ in 0..<40 {
                now += UInt64(random.below(Int(300 * ms)))
                let flags: [TCPFlags] = [.ack, [.ack, .fin], .syn, [.syn, .ack], .rst, [.rst, .ack], [.ack, .psh], []]
                let segment = TCPSegment(
                    sourcePort: 40000, destinationPort: 80,
                    sequence: base &+ UInt32(truncatingIfNeeded: random.below(4000)) &- 1000,
                    acknowledgement: 100 &+ UInt32(truncatingIfNeeded: random.below(40)) &- 10,
                    flags: flags[random.below(flags.count)],
                    window: UInt16(truncatingIfNeeded: random.below(3) == 0 ? 0 : random.next()),
                    maximumSegmentSize: random.chance(20) ? UInt16(truncatingIfNeeded: random.next()) : nil,
                    payload: random.bytes(random.below(3) == 0 ? 0 : random.below(1500)))
                connection.handle(segment, now: now)
                if random.chance(20) { _ = connection.send(random.bytes(random.below(3000))[...]) }
                if random.chance(5) { connection.close(now: now) }
                for produced in connection.output(now: now) {
                    XCTAssertLessThanOrEqual(produced.payload.count, connection.effectiveMSS)
                }
                // Nothing left due after an output: a caller sleeping until nextDeadline never spins.
                if let deadline = connection.nextDeadline { XCTAssertGreaterThan(deadline, now, "\(connection.state)") }
                _ = connection.receive(maximum: random.below(2000))
            }
        }
    }

    // MARK: - Closing

    func testOrderlyCloseAndTimeWait() {
        var configuration = TCPConfiguration()
        configuration.timeWait = 2 * second
        let network = TCPTestNetwork(client: configuration, server: configuration)
        network.connect()
        network.client.close(now: network.now)
        XCTAssertEqual(network.client.state, .finWait1)
        XCTAssertEqual(network.client.sendSpace, 0)
        network.run(until: network.now + 100 * ms) { network.client.state == .finWait2 }
        XCTAssertEqual(network.server?.state, .closeWait)
        XCTAssertTrue(network.server?.receivedFIN ?? false)
        XCTAssertTrue(network.server?.isEstablished ?? false)
        XCTAssertEqual(network.server?.send([7, 7][...]), 2)  // closeWait still sends
        network.server?.close(now: network.now)
        XCTAssertEqual(network.server?.state, .lastAck)
        network.run(until: network.now + 100 * ms) { network.client.state == .timeWait && network.server?.state == .closed }
        XCTAssertEqual(network.client.state, .timeWait)
        XCTAssertEqual(network.client.closeReason, .normal)
        XCTAssertEqual(network.server?.closeReason, .normal)
        XCTAssertEqual(network.client.receive(maximum: 10), [7, 7])
        let entered = network.sent.last { $0.side == .client }!.at  // the last ACK went when TIME_WAIT began
        XCTAssertEqual(network.client.nextDeadline, entered + 2 * second)
        XCTAssertEqual(network.client.output(now: entered + 2 * second - 1), [])
        XCTAssertEqual(network.client.state, .timeWait)
        XCTAssertFalse(network.client.isFinished)
        // A retransmitted FIN is re-ACKed and restarts the timer.
        let fin = network.sentBy(.server).last!
        XCTAssertTrue(fin.flags.contains(.fin))
        network.client.handle(fin, now: entered + second)
        XCTAssertEqual(
            network.client.output(now: entered + second).map { $0.acknowledgement }, [fin.sequence &+ UInt32(fin.sequenceLength)])
        XCTAssertEqual(network.client.nextDeadline, entered + 3 * second)
        XCTAssertEqual(network.client.output(now: entered + 3 * second), [])
        XCTAssertEqual(network.client.state, .closed)
        XCTAssertTrue(network.client.isFinished)
        XCTAssertEqual(network.client.closeReason, .normal)
    }

    func testSimultaneousClose() {
        let network = TCPTestNetwork()
        network.connect()
        network.client.close(now: network.now)
        network.server?.close(now: network.now)
        network.flush()  // both FINs cross
        XCTAssertEqual(network.client.state, .finWait1)
        XCTAssertEqual(network.server?.state, .finWait1)
        network.run(until: network.now + 1 * ms + 1)
        XCTAssertEqual(network.client.state, .closing)
        XCTAssertEqual(network.server?.state, .closing)
        network.run(until: network.now + 10 * ms)
        XCTAssertEqual(network.client.state, .timeWait)
        XCTAssertEqual(network.server?.state, .timeWait)
        network.run(until: network.now + 2 * second) { network.client.isFinished && network.server!.isFinished }
        XCTAssertEqual(network.client.closeReason, .normal)
        XCTAssertEqual(network.server?.closeReason, .normal)
    }

    func testCloseDuringHandshake() {
        // synReceived: the FIN waits for the handshake.
        var peer = TCPPeer(sequence: 7000, port: 40000, peerPort: 80)
        let connection = TCPConnection(
            acceptingSYN: peer.segment(.syn), local: local, remote: remote, initialSequence: 100, now: 0,
            configuration: TCPConfiguration())
        _ = connection.send([1, 2][...])
        connection.close(now: 0)
        XCTAssertEqual(connection.output(now: 0).map { $0.flags }, [[.syn, .ack]])
        peer.sequence = 7001
        connection.handle(peer.segment(.ack, ack: 101), now: 1 * ms)
        XCTAssertEqual(connection.state, .finWait1)
        let out = connection.output(now: 1 * ms)
        XCTAssertEqual(out.count, 1)
        XCTAssertEqual(out.first?.payload, [1, 2])
        XCTAssertEqual(out.first?.flags, [.ack, .fin, .psh])
        // synSent: closed at once.
        let active = TCPConnection(
            connectingFrom: local, to: remote, initialSequence: 1, now: 0, configuration: TCPConfiguration())
        active.close(now: 0)
        XCTAssertEqual(active.state, .closed)
        XCTAssertTrue(active.isFinished)
    }

    func testFinWait2Timeout() {
        var configuration = TCPConfiguration()
        configuration.finWait2Timeout = 5 * second
        configuration.idleTimeout = 0
        let (connection, peer) = acceptedConnection(configuration: configuration)
        connection.close(now: 0)
        XCTAssertEqual(connection.output(now: 0).map { $0.flags }, [[.ack, .fin]])
        connection.handle(peer.segment(.ack, ack: 102), now: 1 * second)
        XCTAssertEqual(connection.state, .finWait2)
        XCTAssertEqual(connection.nextDeadline, 6 * second)
        // Data from the peer is still read in FIN_WAIT_2, and restarts the timeout.
        connection.handle(peer.segment(.ack, ack: 102, payload: [5]), now: 2 * second)
        XCTAssertEqual(connection.receive(maximum: 5), [5])
        _ = connection.output(now: 2 * second + 20 * ms)  // the delayed ACK
        XCTAssertEqual(connection.nextDeadline, 7 * second)
        _ = connection.output(now: 7 * second - 1)
        XCTAssertEqual(connection.state, .finWait2)
        _ = connection.output(now: 7 * second)
        XCTAssertEqual(connection.state, .closed)
        XCTAssertEqual(connection.closeReason, .timedOut)
        XCTAssertTrue(connection.isFinished)
    }

    /// A socket's close (the application reads nothing more): unread bytes
    /// are dropped; data that comes while our last bytes and FIN are in
    /// flight is acknowledged and thrown away (the peer's sends complete and
    /// it reads our answer); once the peer acknowledged everything, more data
    /// gets a reset. Nothing a peer sends after the close is kept.
    func testCloseDiscardingInputIsAStagedClose() {
        let (connection, peer) = acceptedConnection()
        connection.handle(peer.segment(.ack, payload: [1, 2, 3]), now: 0)
        XCTAssertEqual(connection.bytesAvailable, 3)
        XCTAssertEqual(connection.send([8, 9][...]), 2)
        connection.close(now: 0, discardingInput: true)
        XCTAssertTrue(connection.discardsInput)
        XCTAssertEqual(connection.bytesAvailable, 0, "unread bytes are dropped")
        let last = connection.output(now: 0)
        XCTAssertEqual(last.count, 1)
        XCTAssertEqual(last.first?.payload, [8, 9])
        XCTAssertEqual(last.first?.flags.contains(.fin), true)
        XCTAssertEqual(last.first?.acknowledgement, 7004)
        XCTAssertEqual(connection.state, .finWait1)
        // FIN_WAIT_1: a large body keeps coming; it is acknowledged, not kept,
        // and the window stays open.
        var sequence: UInt32 = 7004
        var acks: [TCPSegment] = []
        for _ in 0..<100 {  // 100,000 bytes: more than the window holds
            connection.handle(peer.segment(.ack, sequence: sequence, ack: 101, payload: [UInt8](repeating: 7, count: 1000)),
                              now: 1 * ms)
            sequence += 1000
            acks += connection.output(now: 1 * ms)
        }
        acks += connection.output(now: 100 * ms)  // a delayed ACK, if one is due
        XCTAssertEqual(connection.bytesAvailable, 0)
        XCTAssertEqual(connection.state, .finWait1)
        XCTAssertEqual(acks.last?.acknowledgement, sequence, "every byte acknowledged")
        XCTAssertEqual(acks.last?.window, 65535)
        // Out of order: not held either.
        connection.handle(peer.segment(.ack, sequence: sequence + 500, ack: 101, payload: [1]), now: 101 * ms)
        XCTAssertTrue(connection.held.isEmpty)
        _ = connection.output(now: 101 * ms)
        // The peer acknowledges our bytes and FIN: FIN_WAIT_2. More data: a reset.
        connection.handle(peer.segment(.ack, sequence: sequence, ack: 104), now: 200 * ms)
        XCTAssertEqual(connection.state, .finWait2)
        connection.handle(peer.segment(.ack, sequence: sequence, ack: 104, payload: [1]), now: 300 * ms)
        XCTAssertEqual(connection.state, .closed)
        XCTAssertEqual(connection.closeReason, .aborted)
        let reset = connection.output(now: 300 * ms)
        XCTAssertEqual(reset.map { $0.flags }, [[.rst, .ack]])
        XCTAssertEqual(reset.first?.sequence, 104)
        XCTAssertTrue(connection.isFinished)
    }

    /// After a discarding close, FIN_WAIT_2's timeout does not restart: a peer
    /// that keeps acknowledging cannot hold the connection.
    func testFinWait2TimeoutDoesNotRestartAfterADiscardingClose() {
        var configuration = TCPConfiguration()
        configuration.finWait2Timeout = 5 * second
        configuration.idleTimeout = 0
        let (connection, peer) = acceptedConnection(configuration: configuration)
        connection.close(now: 0, discardingInput: true)
        XCTAssertEqual(connection.output(now: 0).map { $0.flags }, [[.ack, .fin]])
        connection.handle(peer.segment(.ack, ack: 102), now: 1 * second)
        XCTAssertEqual(connection.state, .finWait2)
        XCTAssertEqual(connection.nextDeadline, 6 * second)
        connection.handle(peer.segment(.ack, ack: 102), now: 4 * second)
        XCTAssertEqual(connection.nextDeadline, 6 * second)
        _ = connection.output(now: 6 * second)
        XCTAssertEqual(connection.state, .closed)
        XCTAssertEqual(connection.closeReason, .timedOut)
        // Its FIN still ends it normally.
        let (other, otherPeer) = acceptedConnection(configuration: configuration)
        other.close(now: 0, discardingInput: true)
        _ = other.output(now: 0)
        other.handle(otherPeer.segment(.ack, ack: 102), now: 1 * second)
        other.handle(otherPeer.segment([.ack, .fin], ack: 102), now: 2 * second)
        XCTAssertEqual(other.state, .timeWait)
    }

    func testIdleTimeoutReleasesVanishedPeer() {
        var configuration = TCPConfiguration()
        configuration.idleTimeout = 10 * second
        let (connection, peer) = acceptedConnection(configuration: configuration)
        connection.handle(peer.segment(.ack, payload: [1]), now: 2 * second)
        _ = connection.output(now: 2 * second + 20 * ms)
        XCTAssertEqual(connection.nextDeadline, 12 * second)
        XCTAssertEqual(connection.output(now: 12 * second - 1), [])
        let out = connection.output(now: 12 * second)
        XCTAssertEqual(out.map { $0.flags }, [[.rst, .ack]])
        XCTAssertEqual(connection.state, .closed)
        XCTAssertEqual(connection.closeReason, .timedOut)
        XCTAssertTrue(connection.isFinished)
        XCTAssertNil(connection.nextDeadline)
    }

    // MARK: - Flow control

    func testZeroWindowPersistAndWindowUpdate() {
        var clientConfiguration = TCPConfiguration()
        clientConfiguration.maximumRTO = 2 * second
        clientConfiguration.maximumRetransmissions = 3
        var serverConfiguration = TCPConfiguration()
        serverConfiguration.receiveBufferSize = 3000
        let network = TCPTestNetwork(client: clientConfiguration, server: serverConfiguration)
        network.connect()
        let data = pattern(10_000, seed: 13)
        XCTAssertEqual(network.client.send(data[...]), 10_000)
        network.run(until: network.now + 20 * second)  // nobody reads: the window closes, the client probes
        XCTAssertEqual(network.server?.bytesAvailable, 3000)
        XCTAssertEqual(network.client.state, .established)  // probes do not count toward giving up
        XCTAssertEqual(network.client.sndWnd, 0)
        let probes = network.sentBy(.client).filter { $0.payload.count == 1 }
        XCTAssertGreaterThan(probes.count, 3)
        // The reader drains: window updates reopen the flow.
        var received: [UInt8] = []
        network.application = { received += network.server!.receive(maximum: 1 << 20) }
        network.run(until: network.now + 10 * second) { received.count == data.count }
        XCTAssertTrue(received == data)
        XCTAssertEqual(network.client.state, .established)
    }

    // MARK: - Loss

    func testRandomLossReorderingAndDuplicationManyTransfers() {
        var random = XorShift(seed: 0x5EED)
        for round in 0..<24 {
            var configuration = TCPConfiguration()
            configuration.receiveBufferSize = [4096, 16384, 65535][round % 3]
            let network = TCPTestNetwork(
                client: configuration, server: configuration, clientISS: UInt32(truncatingIfNeeded: random.next()))
            network.random = XorShift(seed: UInt64(round + 1) * 7919)
            network.lossPercent = 5 + round % 16
            network.duplicatePercent = round % 4 == 0 ? 5 : 0
            network.jitter = round % 2 == 0 ? 3 * ms : 0
            let up = random.bytes(random.below(60_000) + 1)
            let down = random.bytes(random.below(60_000))
            let result = exchange(network, clientData: up, serverData: down, readChunk: 2000, limit: 900 * second)
            XCTAssertTrue(
                result.atServer == up,
                "round \(round): \(result.atServer.count) of \(up.count) \(network.client.state) \(String(describing: network.client.closeReason)) \(network.server!.state) \(String(describing: network.server!.closeReason)) \(network.client.counters) \(network.server!.counters) t=\(network.now)"
            )
            XCTAssertTrue(result.atClient == down, "round \(round): \(result.atClient.count) of \(down.count)")
            XCTAssertTrue(network.client.isFinished, "round \(round) client \(network.client.state)")
            XCTAssertTrue(network.server?.isFinished ?? false, "round \(round) server")
            XCTAssertFalse(network.stuck)
        }
    }

    /// Random networks (0–20% loss, duplicates, reordering), sizes, MSS and
    /// buffers: every transfer completes intact. The timers that give up are
    /// made lenient here, so that any stall would show as a failure rather
    /// than as a (legitimate) timeout after a long loss streak.
    func testNoStallAcrossRandomNetworks() {
        for seed in 1...40 {
            var random = XorShift(seed: UInt64(seed) &* 0x9E37_79B9_7F4A_7C15)
            var configuration = TCPConfiguration()
            configuration.receiveBufferSize = [1000, 4096, 16384, 65535][seed % 4]
            configuration.sendBufferSize = [3000, 65536][seed % 2]
            configuration.maximumSegmentSize = [536, 1460, 100][seed % 3]
            configuration.idleTimeout = 0
            configuration.finWait2Timeout = 10_000 * second
            configuration.maximumRetransmissions = 30
            let network = TCPTestNetwork(
                client: configuration, server: configuration, clientISS: UInt32(truncatingIfNeeded: random.next()))
            network.random = XorShift(seed: UInt64(seed) * 31)
            network.lossPercent = random.below(21)
            network.duplicatePercent = random.below(10)
            network.jitter = UInt64(random.below(5)) * ms
            let up = random.bytes(random.below(40_000))
            let down = random.bytes(random.below(40_000))
            let result = exchange(
                network, clientData: up, serverData: down, readChunk: [100, 2000, 1 << 20][seed % 3], limit: 3000 * second)
            XCTAssertTrue(result.atServer == up, "seed \(seed): \(result.atServer.count) of \(up.count)")
            XCTAssertTrue(result.atClient == down, "seed \(seed): \(result.atClient.count) of \(down.count)")
            XCTAssertTrue(network.client.isFinished && network.server!.isFinished, "seed \(seed)")
            // The side in LAST_ACK may see a reset if the other's TIME_WAIT ended before its FIN got through.
            XCTAssertTrue(network.client.closeReason == .normal || network.client.closeReason == .reset, "seed \(seed)")
            XCTAssertTrue(network.server?.closeReason == .normal || network.server?.closeReason == .reset, "seed \(seed)")
        }
    }
}
