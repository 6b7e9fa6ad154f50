// The whole network stack under fuzzing, as a hostile peer on the link sees
// it. Shared by the libFuzzer target NetStack (make fuzz) and the corpus
// replay (FuzzCorpusTests).
//
// The input is a program (see `Op`): raw frames; frames built from fields
// with valid checksums (TCP with any flags, sequence and acknowledgement
// numbers raw or just where the stack expects them, options, payload; UDP;
// ARP; ping), some of them deliberately broken; the clock moving on; and the
// application's calls (accept, send, receive, close, abort, connect, UDP).
// The stack listens on TCP port 80 and has UDP port 7 bound; the
// configuration is the default one or a small one whose every bound a short
// input can reach. After every step the stack is polled.
//
// Beyond "no trap": every frame the stack sends is well formed (its own
// MAC and address, valid IPv4, TCP and UDP checksums, at most one MSS of
// payload, padded to 60 bytes and, but for ping answers, no longer than 1514); the deadline a poll
// returns is never later than `nextDeadline` (and equal to it while no SYN
// queue eviction has happened); each connection keeps its buffers within
// their sizes, SND.UNA <= the send pointer <= SND.NXT, its window, RTO and
// MSS in range; the table, the SYN queues, the packets held for ARP, the
// next hops asked for and the UDP queues stay consistent and bounded.

import FuzzSupport
@testable import ToroKernelPortable

enum NetStackFuzz {
    static let mac: [UInt8] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x02]
    static let peerMAC: [UInt8] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01]
    nonisolated(unsafe) static let address = IPv4Address(10, 0, 0, 2)
    nonisolated(unsafe) static let gateway = IPv4Address(10, 0, 0, 1)
    /// Where built frames come from: the gateway, another host on the link, a
    /// host beyond the gateway, and addresses no peer should use (ours, the
    /// subnet's broadcast, zero).
    nonisolated(unsafe) static let peers: [IPv4Address] = [
        gateway, IPv4Address(10, 0, 0, 3), IPv4Address(192, 168, 7, 9), address, IPv4Address(10, 0, 0, 255), IPv4Address(0),
    ]
    static let listenPort: UInt16 = 80
    static let udpPort: UInt16 = 7
    static let maximumConnections = 8

    enum Op: CaseIterable {
        case rawFrame, tcp, udp, arp, ping, advance, accept, send, receive, close, abort, connect
        case sendUDP, receiveUDP, listen, bindUDP
    }

    /// What the stack last sent to a peer's port: where the peer's next segment is expected.
    struct LastSent {
        var sequence: UInt32
        var acknowledgement: UInt32
        var length: Int
    }

    final class Run {
        let stack: NetStackCore
        let configuration: NetStackConfiguration
        var now: UInt64 = 1_000_000_000
        var connections: [TCPConnection] = []
        var lastSent: [UInt64: LastSent] = [:]
        /// Frames per poll written in place (the driver's transmit ring); 0: none.
        var ring: Int
        var identification: UInt16 = 1

        init(stack: NetStackCore, configuration: NetStackConfiguration, ring: Int) {
            self.stack = stack
            self.configuration = configuration
            self.ring = ring
        }
    }

    static func configuration(_ choice: UInt8) -> NetStackConfiguration {
        var configuration = NetStackConfiguration()
        if choice & 1 != 0 {
            // Small: every bound within reach of a short input.
            configuration.unresolvedLimit = 2
            configuration.udpQueueLimit = 2
            configuration.synQueueLimit = 2
            configuration.tcp.receiveBufferSize = 3000
            configuration.tcp.sendBufferSize = 4000
            configuration.tcp.maximumHeldSegments = 3
            configuration.tcp.maximumSegmentSize = 536
            configuration.tcp.maximumRetransmissions = 3
            configuration.tcp.maximumSYNACKRetransmissions = 2
            configuration.tcp.challengeACKLimit = 2
        }
        if choice & 2 != 0 { configuration.tcp.idleTimeout = 0 }
        if choice & 4 != 0 { configuration.tcp.timeWait = 0 }
        if choice & 8 != 0 { configuration.tcp.delayedACK = 0 }
        return configuration
    }

    static func check(_ bytes: [UInt8]) throws(FuzzViolation) {
        var input = FuzzReader(bytes)
        let configuration = configuration(input.u8())
        let stack = NetStackCore(
            mac: mac, interface: IPv4Interface(address: address, prefixLength: 24), gateway: gateway,
            configuration: configuration, secret: input.u32())
        _ = stack.listen(port: listenPort, backlog: 2)
        _ = stack.bindUDP(port: udpPort)
        let run = Run(stack: stack, configuration: configuration, ring: Int(input.u8() % 4))
        var steps = 0
        while !input.isAtEnd && steps < 256 {
            steps += 1
            try step(run, &input)
            try poll(run)
            try checkState(run)
        }
    }

    static func pickPort(_ input: inout FuzzReader) -> UInt16 {
        switch input.u8() % 6 {
        case 0, 1: return listenPort
        case 2: return 40000
        case 3: return 40001
        case 4: return udpPort
        default: return input.u16()
        }
    }

    static func key(_ address: IPv4Address, _ port: UInt16) -> UInt64 { UInt64(address.value) << 16 | UInt64(port) }

    static func step(_ run: Run, _ input: inout FuzzReader) throws(FuzzViolation) {
        let stack = run.stack
        let op = Op.allCases[Int(input.u8()) % Op.allCases.count]
        switch op {
        case .rawFrame:
            stack.handle(frame: input.take(Int(input.u16() % 1600)), now: run.now)
        case .tcp:
            stack.handle(frame: tcpFrame(run, &input), now: run.now)
        case .udp:
            let control = input.u8()
            let source = input.pick(peers)
            let datagram = UDPDatagram(sourcePort: pickPort(&input), destinationPort: pickPort(&input), payload: payload(&input))
            var bytes: [UInt8] = []
            datagram.append(to: &bytes, source: source, destination: address)
            if control & 1 != 0 { bytes[6] = 0; bytes[7] = 0 }  // no checksum: allowed
            stack.handle(frame: ipFrame(run, control, IPProtocol.udp, source, bytes), now: run.now)
        case .arp:
            let control = input.u8()
            var senderMAC = control & 8 != 0 ? input.take(6) : peerMAC
            senderMAC += [UInt8](repeating: 0, count: 6 - senderMAC.count)
            let packet = ARPPacket(
                operation: input.pick([ARPPacket.request, ARPPacket.reply, 3]), senderMAC: senderMAC,
                senderIP: input.pick(peers), targetMAC: [0, 0, 0, 0, 0, 0],
                targetIP: control & 16 != 0 ? input.pick(peers) : address)
            stack.handle(frame: packet.frame(from: senderMAC, to: control & 32 != 0 ? mac : EthernetHeader.broadcast), now: run.now)
        case .ping:
            let control = input.u8()
            let source = input.pick(peers)
            var message: [UInt8] = [ICMPEcho.request, 0, 0, 0] + input.take(4) + payload(&input)
            message += [UInt8](repeating: 0, count: max(0, ICMPEcho.headerSize - message.count))
            let checksum = InternetChecksum.compute(message, from: 0, count: message.count)
            message[2] = UInt8(checksum >> 8)
            message[3] = UInt8(truncatingIfNeeded: checksum)
            stack.handle(frame: ipFrame(run, control, IPProtocol.icmp, source, message), now: run.now)
        case .advance:
            let choice = input.u8()
            let steps: [UInt64] = [0, 1_000_000, 20_000_000, 200_000_000, 1_000_000_000, 3_000_000_000, 31_000_000_000, 64_000_000_000]
            switch choice % 10 {
            case 8: run.now = max(run.now, stack.nextDeadline ?? run.now)
            case 9: run.now &+= UInt64(input.u32())
            default: run.now &+= steps[Int(choice % 10) % steps.count]
            }
        case .accept:
            while run.connections.count < maximumConnections, let connection = stack.accept(port: listenPort) {
                run.connections.append(connection)
            }
        case .send:
            guard let connection = pickConnection(run, &input) else { break }
            let count = Int(input.u16() % 6000)
            let space = connection.sendSpace
            let bytes = [UInt8](repeating: UInt8(truncatingIfNeeded: count), count: count)
            let taken = connection.send(bytes[...])
            try fuzzExpect(taken >= 0 && taken <= count && taken <= space, "send took \(taken) of \(count), space \(space)")
            stack.touch(connection)
        case .receive:
            guard let connection = pickConnection(run, &input) else { break }
            let maximum = Int(input.u16()) - 100
            let available = connection.bytesAvailable
            let bytes = connection.receive(maximum: maximum)
            try fuzzExpect(bytes.count == min(max(0, maximum), available), "receive gave \(bytes.count) bytes")
            stack.touch(connection)
        case .close:
            guard let connection = pickConnection(run, &input) else { break }
            connection.close(now: run.now)
            stack.touch(connection)
        case .abort:
            guard let connection = pickConnection(run, &input) else { break }
            connection.abort(now: run.now)
            stack.touch(connection)
        case .connect:
            let remote = TCPEndpoint(address: input.pick(peers), port: pickPort(&input))
            guard run.connections.count < maximumConnections, let connection = stack.connect(to: remote, now: run.now) else { break }
            run.connections.append(connection)
        case .sendUDP:
            let payload = [UInt8](repeating: 0x55, count: Int(input.u16() % 1600))
            let remote = TCPEndpoint(address: input.pick(peers), port: pickPort(&input))
            let sent = stack.sendUDP(payload, from: pickPort(&input), to: remote, now: run.now)
            try fuzzExpect(sent == (payload.count <= 1472), "sendUDP of \(payload.count) bytes said \(sent)")
        case .receiveUDP:
            _ = stack.receiveUDP(port: pickPort(&input))
        case .listen:
            if stack.isListening(port: listenPort) {
                stack.stopListening(port: listenPort, now: run.now)
            } else {
                try fuzzExpect(stack.listen(port: listenPort, backlog: Int(input.u8() % 4)), "listen refused a free port")
            }
        case .bindUDP:
            if stack.udpPorts[udpPort] != nil {
                stack.unbindUDP(port: udpPort)
            } else {
                try fuzzExpect(stack.bindUDP(port: udpPort), "bindUDP refused a free port")
            }
        }
    }

    static func pickConnection(_ run: Run, _ input: inout FuzzReader) -> TCPConnection? {
        let choice = Int(input.u8())
        return run.connections.isEmpty ? nil : run.connections[choice % run.connections.count]
    }

    /// Up to 255 bytes from the input, or a longer run of one byte (past one MSS).
    static func payload(_ input: inout FuzzReader) -> [UInt8] {
        let length = input.u8()
        if length == 0xFF { return [UInt8](repeating: 0x41, count: Int(input.u16() % 3000)) }
        return input.take(Int(length))
    }

    /// A TCP segment from fields of the input, with a valid checksum unless told otherwise.
    static func tcpFrame(_ run: Run, _ input: inout FuzzReader) -> [UInt8] {
        let control = input.u8()
        let source = input.pick(peers)
        let sourcePort = pickPort(&input)
        let destinationPort = pickPort(&input)
        let flags = input.u8()
        let last = run.lastSent[key(source, sourcePort)]
        // Sequence: raw, or near what the stack expects next (its last acknowledgement).
        let sequenceMode = input.u8()
        let expected: UInt32 = last?.acknowledgement ?? 0
        let sequence: UInt32 = sequenceMode & 0x80 == 0 ? input.u32() : expected &+ delta(sequenceMode)
        // Acknowledgement: raw, or near the end of what the stack sent last.
        let acknowledgementMode = input.u8()
        let sentEnd: UInt32 = last.map { $0.sequence &+ UInt32(truncatingIfNeeded: $0.length) } ?? 0
        let acknowledgement: UInt32 = acknowledgementMode & 0x80 == 0 ? input.u32() : sentEnd &+ delta(acknowledgementMode)
        let window = input.u16()
        var options: [UInt8] = []
        let optionMode = input.u8()
        if optionMode & 1 != 0 { options += [2, 4] + [UInt8(input.u8()), input.u8()] }  // MSS
        if optionMode & 2 != 0 {
            let words = Int(optionMode >> 2 & 7)  // raw option bytes, 0-28
            options += input.take(4 * words)
            options += [UInt8](repeating: 0, count: (4 - options.count % 4) % 4)
        }
        options = Array(options.prefix(40))
        var segment: [UInt8] = []
        appendUInt16(&segment, sourcePort)
        appendUInt16(&segment, destinationPort)
        appendUInt16(&segment, UInt16(truncatingIfNeeded: sequence >> 16))
        appendUInt16(&segment, UInt16(truncatingIfNeeded: sequence))
        appendUInt16(&segment, UInt16(truncatingIfNeeded: acknowledgement >> 16))
        appendUInt16(&segment, UInt16(truncatingIfNeeded: acknowledgement))
        segment.append(UInt8((TCPSegment.headerSize + options.count) / 4) << 4)
        segment.append(flags)
        appendUInt16(&segment, window)
        segment += [0, 0, 0, 0]  // checksum, urgent pointer
        segment += options
        segment += payload(&input)
        let pseudo = InternetChecksum.pseudoHeaderSum(
            source: source, destination: address, protocolNumber: IPProtocol.tcp, length: segment.count)
        var checksum = ~InternetChecksum.fold(InternetChecksum.sumFast(segment, from: 0, count: segment.count, initial: pseudo))
        if control & 8 != 0 { checksum ^= 0x0100 }  // broken
        segment[16] = UInt8(checksum >> 8)
        segment[17] = UInt8(truncatingIfNeeded: checksum)
        return ipFrame(run, control, IPProtocol.tcp, source, segment)
    }

    /// The low seven bits of `mode` as a signed step, -64...63 (two's complement, wrapped into UInt32).
    static func delta(_ mode: UInt8) -> UInt32 {
        UInt32(bitPattern: Int32(Int8(bitPattern: mode << 1) >> 1))
    }

    /// Ethernet and IPv4 headers around `payload`. `control` breaks things on
    /// purpose: bit 4 another destination address, bit 5 the broadcast MAC,
    /// bit 6 a fragment, bit 7 IP options (4 bytes of NOPs).
    static func ipFrame(_ run: Run, _ control: UInt8, _ protocolNumber: UInt8, _ source: IPv4Address, _ payload: [UInt8]) -> [UInt8] {
        var frame: [UInt8] = []
        EthernetHeader(destination: control & 32 != 0 ? EthernetHeader.broadcast : mac, source: peerMAC, etherType: EtherType.ipv4)
            .append(to: &frame)
        let headerLength = control & 128 != 0 ? 24 : 20
        let start = frame.count
        frame.append(0x40 | UInt8(headerLength / 4))
        frame.append(0)
        appendUInt16(&frame, UInt16(truncatingIfNeeded: headerLength + payload.count))
        appendUInt16(&frame, run.identification)
        run.identification &+= 1
        appendUInt16(&frame, control & 64 != 0 ? 0x2000 : 0x4000)
        frame.append(64)
        frame.append(protocolNumber)
        frame += [0, 0]
        source.append(to: &frame)
        (control & 16 != 0 ? IPv4Address(10, 0, 0, 9) : address).append(to: &frame)
        if headerLength > 20 { frame += [1, 1, 1, 0] }
        let checksum = InternetChecksum.compute(frame, from: start, count: headerLength)
        frame[start + 10] = UInt8(checksum >> 8)
        frame[start + 11] = UInt8(truncatingIfNeeded: checksum)
        frame += payload
        return frame
    }

    /// Polls the stack and checks what it sends.
    static func poll(_ run: Run) throws(FuzzViolation) {
        let stack = run.stack
        var frames: [[UInt8]] = []
        var written: [[UInt8]] = []
        let ring = run.ring
        let transmit: NetFrameWriter = { size, write in
            guard written.count < ring else { return false }
            written.append(
                [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
                    write(UnsafeMutableRawPointer(buffer.baseAddress!))
                    count = size
                })
            return true
        }
        let deadline = stack.poll(now: run.now, into: &frames, transmit: ring > 0 ? transmit : nil)
        let next = stack.nextDeadline
        try fuzzExpect((deadline ?? .max) <= (next ?? .max), "poll's deadline \(String(describing: deadline)) is after nextDeadline \(String(describing: next))")
        if stack.counters.tcpSYNQueueEvictions == 0 {
            try fuzzExpect(deadline == next, "poll's deadline \(String(describing: deadline)), nextDeadline \(String(describing: next))")
        }
        for frame in written + frames { try checkOutgoing(run, frame) }
        stack.clearEvents()
    }

    /// A frame the stack sends is well formed, from us.
    static func checkOutgoing(_ run: Run, _ frame: [UInt8]) throws(FuzzViolation) {
        try fuzzExpect(frame.count >= EthernetHeader.minimumFrame, "a \(frame.count)-byte frame sent")
        // Over 1514 bytes: only an answer to a ping as large (the link brought that).
        let jumbo = frame.count > 1514
        guard let ethernet = try? EthernetHeader.parse(frame) else { throw FuzzViolation(description: "a frame without Ethernet header") }
        try fuzzExpect(ethernet.source == mac, "a frame sent from another MAC")
        switch ethernet.etherType {
        case EtherType.arp:
            guard let packet = try? ARPPacket.parse(frame, at: EthernetHeader.size) else {
                throw FuzzViolation(description: "an ARP packet sent that does not parse")
            }
            try fuzzExpect(packet.senderMAC == mac && packet.senderIP == address, "an ARP packet sent for someone else")
            try fuzzExpect(!jumbo, "a \(frame.count)-byte ARP frame sent")
        case EtherType.ipv4:
            let header: IPv4Header
            do { header = try IPv4Header.parse(frame, at: EthernetHeader.size) } catch {
                throw FuzzViolation(description: "an IPv4 packet sent that does not parse: \(error)")
            }
            try fuzzExpect(header.source == address, "an IPv4 packet sent from \(header.source.dotted)")
            try fuzzExpect(
                frame.count == max(EthernetHeader.size + header.totalLength, EthernetHeader.minimumFrame),
                "a \(frame.count)-byte frame around a \(header.totalLength)-byte packet")
            let start = EthernetHeader.size + header.headerLength
            let count = header.totalLength - header.headerLength
            switch header.protocolNumber {
            case IPProtocol.tcp:
                try fuzzExpect(!jumbo, "a \(frame.count)-byte TCP frame sent")
                let segment: TCPSegment
                do {
                    segment = try TCPSegment.parse(frame, at: start, count: count, source: address, destination: header.destination)
                } catch {
                    throw FuzzViolation(description: "a TCP segment sent that does not parse: \(error)")
                }
                try fuzzExpect(
                    segment.payload.count <= run.configuration.tcp.maximumSegmentSize,
                    "a TCP segment sent with \(segment.payload.count) bytes, over the MSS")
                try fuzzExpect(!segment.flags.contains(.syn) || segment.maximumSegmentSize != nil, "a SYN sent without MSS")
                run.lastSent[key(header.destination, segment.destinationPort)] = LastSent(
                    sequence: segment.sequence, acknowledgement: segment.acknowledgement, length: segment.sequenceLength)
            case IPProtocol.udp:
                try fuzzExpect(!jumbo, "a \(frame.count)-byte UDP frame sent")
                do { _ = try UDPDatagram.parse(frame, at: start, count: count, source: address, destination: header.destination) } catch {
                    throw FuzzViolation(description: "a UDP datagram sent that does not parse: \(error)")
                }
            case IPProtocol.icmp:
                try fuzzExpect((try? ICMPEcho.validate(frame, at: start, count: count)) != nil, "an ICMP message sent with a bad checksum")
            default:
                throw FuzzViolation(description: "an IPv4 packet of protocol \(header.protocolNumber) sent")
            }
        default:
            throw FuzzViolation(description: "a frame of EtherType \(ethernet.etherType) sent")
        }
    }

    /// The stack's tables and every connection, after a poll.
    static func checkState(_ run: Run) throws(FuzzViolation) {
        let stack = run.stack
        let configuration = run.configuration
        let tcp = configuration.tcp
        for (key, connection) in stack.connections {
            // Built only for a message: every step checks every connection.
            var name: String { "connection \(key.remote.dotted):\(key.remotePort)->\(key.localPort) (\(connection.state))" }
            try fuzzExpect(connection.inTable, "\(name) in the table but not marked so")
            try fuzzExpect(
                key.remote == connection.remote.address && key.remotePort == connection.remote.port
                    && key.localPort == connection.local.port, "\(name) filed under another key")
            try fuzzExpect(!connection.isFinished, "\(name) finished but still in the table after a poll")
            try fuzzExpect(connection.bytesAvailable <= tcp.receiveBufferSize, "\(name) holds \(connection.bytesAvailable) received bytes")
            try fuzzExpect(
                connection.unacknowledgedBytes <= tcp.sendBufferSize, "\(name) holds \(connection.unacknowledgedBytes) bytes to send")
            var held = 0
            for piece in connection.held { held += piece.data.count }
            try fuzzExpect(held == connection.heldBytes, "\(name): heldBytes \(connection.heldBytes), pieces hold \(held)")
            try fuzzExpect(
                held <= tcp.receiveBufferSize && connection.held.count <= tcp.maximumHeldSegments,
                "\(name) holds \(connection.held.count) pieces, \(held) bytes, out of order")
            try fuzzExpect(
                seqLEQ(connection.sndUna, connection.sendPointer) && seqLEQ(connection.sendPointer, connection.sndNxt),
                "\(name): SND.UNA \(connection.sndUna), send pointer \(connection.sendPointer), SND.NXT \(connection.sndNxt)")
            try fuzzExpect(connection.sndWnd >= 0 && connection.sndWnd <= 65535, "\(name): send window \(connection.sndWnd)")
            try fuzzExpect(connection.congestionWindow >= 0, "\(name): congestion window \(connection.congestionWindow)")
            try fuzzExpect(connection.rto > 0 && connection.rto <= tcp.maximumRTO, "\(name): RTO \(connection.rto)")
            try fuzzExpect(
                connection.effectiveMSS >= 1 && connection.effectiveMSS <= max(1, tcp.maximumSegmentSize),
                "\(name): MSS \(connection.effectiveMSS)")
        }
        for (port, listener) in stack.listeners {
            try fuzzExpect(listener.embryonic.count <= listener.synQueueLimit, "port \(port): \(listener.embryonic.count) half-open")
            for key in listener.embryonic {
                guard let connection = stack.connections[key] else {
                    throw FuzzViolation(description: "port \(port): a half-open connection not in the table")
                }
                try fuzzExpect(
                    connection.inSYNQueue && connection.state == .synReceived,
                    "port \(port): a connection in \(connection.state) in the SYN queue")
            }
        }
        try fuzzExpect(
            stack.unresolved.count <= max(configuration.unresolvedLimit, 1), "\(stack.unresolved.count) packets held for ARP")
        for hop in stack.arpAsked.keys {
            try fuzzExpect(
                stack.unresolved.contains { $0.nextHop == hop }, "ARP asked for \(hop.dotted), for which no packet waits")
        }
        for (port, queue) in stack.udpPorts {
            try fuzzExpect(queue.count <= configuration.udpQueueLimit, "UDP port \(port) holds \(queue.count) datagrams")
        }
    }
}
