// The kernel's packet parsers under fuzzing: the input is one received
// Ethernet frame. Shared by the libFuzzer target NetPackets (make fuzz) and
// the corpus replay (FuzzCorpusTests).
//
// Every parser gets the frame at the offsets the stack would use (and the
// transport parsers also at offsets and lengths taken from the frame's first
// bytes, within it): what one accepts must be consistent with the frame (an
// IPv4 header's lengths within it, a TCP data offset within the segment, a
// UDP length within its count), and a parsed TCP segment or UDP datagram,
// written back out and parsed again, must come back the same. The two
// checksum implementations must agree on every range. The link layer's
// answer to the frame (ARP, ping), if any, must itself parse, and its
// counters must add up. The frame's bytes as text go to the `ip=` parser.

import FuzzSupport
@testable import ToroKernelPortable

enum NetPacketsFuzz {
    static let mac: [UInt8] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x02]
    nonisolated(unsafe) static let interface = IPv4Interface(address: IPv4Address(10, 0, 0, 2), prefixLength: 24)

    static func check(_ frame: [UInt8]) throws(FuzzViolation) {
        try checkChecksums(frame)
        try checkEthernet(frame)
        try checkARP(frame)
        try checkIPv4(frame)
        try checkTransportAnywhere(frame)
        try checkEndpoint(frame)
        try checkInterfaceText(frame)
    }

    /// The plain RFC 1071 sum and the fast one agree, over the whole frame and a range from its first bytes.
    static func checkChecksums(_ frame: [UInt8]) throws(FuzzViolation) {
        var ranges = [(0, frame.count)]
        if frame.count >= 2 {
            let start = Int(frame[0]) % (frame.count + 1)
            let count = Int(frame[1]) % (frame.count - start + 1)
            ranges.append((start, count))
        }
        for (start, count) in ranges {
            let slow = InternetChecksum.fold(InternetChecksum.sum(frame, from: start, count: count))
            let fast = InternetChecksum.fold(InternetChecksum.sumFast(frame, from: start, count: count))
            try fuzzExpect(slow == fast, "checksums of \(count) bytes at \(start) differ: \(slow) and \(fast)")
        }
    }

    static func checkEthernet(_ frame: [UInt8]) throws(FuzzViolation) {
        guard let header = try? EthernetHeader.parse(frame) else {
            try fuzzExpect(frame.count < EthernetHeader.size, "a \(frame.count)-byte Ethernet header refused")
            return
        }
        try fuzzExpect(frame.count >= EthernetHeader.size, "an Ethernet header parsed from \(frame.count) bytes")
        try fuzzExpect(header.destination.count == 6 && header.source.count == 6, "a MAC that is not six bytes")
        var written: [UInt8] = []
        header.append(to: &written)
        try fuzzExpect(written == Array(frame[0..<EthernetHeader.size]), "the Ethernet header does not write back")
    }

    static func checkARP(_ frame: [UInt8]) throws(FuzzViolation) {
        guard let packet = try? ARPPacket.parse(frame, at: EthernetHeader.size) else { return }
        try fuzzExpect(frame.count >= EthernetHeader.size + ARPPacket.size, "an ARP packet parsed past the frame")
        try fuzzExpect(packet.operation == ARPPacket.request || packet.operation == ARPPacket.reply, "ARP operation \(packet.operation)")
        var written: [UInt8] = []
        packet.append(to: &written)
        let original = Array(frame[EthernetHeader.size..<(EthernetHeader.size + ARPPacket.size)])
        try fuzzExpect(written == original, "the ARP packet does not write back")
    }

    static func checkIPv4(_ frame: [UInt8]) throws(FuzzViolation) {
        let offset = EthernetHeader.size
        guard let header = try? IPv4Header.parse(frame, at: offset) else { return }
        try fuzzExpect(
            header.headerLength >= IPv4Header.minimumSize && header.headerLength <= 60 && header.headerLength % 4 == 0,
            "IPv4 header length \(header.headerLength)")
        try fuzzExpect(
            header.totalLength >= header.headerLength && offset + header.totalLength <= frame.count,
            "IPv4 total length \(header.totalLength) outside the \(frame.count)-byte frame")
        try fuzzExpect(InternetChecksum.verifies(frame, from: offset, count: header.headerLength), "a bad IPv4 checksum accepted")
        try fuzzExpect(!header.isFragment, "a fragment accepted")
        let start = offset + header.headerLength
        let count = header.totalLength - header.headerLength
        switch header.protocolNumber {
        case IPProtocol.tcp: try checkTCP(frame, at: start, count: count, source: header.source, destination: header.destination)
        case IPProtocol.udp: try checkUDP(frame, at: start, count: count, source: header.source, destination: header.destination)
        case IPProtocol.icmp:
            if (try? ICMPEcho.validate(frame, at: start, count: count)) != nil {
                try fuzzExpect(count >= ICMPEcho.headerSize, "a \(count)-byte ICMP message accepted")
            }
        default: break
        }
    }

    /// The transport parsers at an offset and count from the frame's first bytes (within the frame),
    /// with addresses from the frame too.
    static func checkTransportAnywhere(_ frame: [UInt8]) throws(FuzzViolation) {
        guard frame.count >= 4 else { return }
        let offset = Int(frame[2]) % (frame.count + 1)
        let count = Int(frame[3]) % (frame.count - offset + 9)  // up to 8 bytes past the end
        let source = IPv4Address(frame[0], frame[1], frame[2], frame[3])
        let destination = IPv4Address(10, 0, 0, 2)
        try checkTCP(frame, at: offset, count: count, source: source, destination: destination)
        try checkUDP(frame, at: offset, count: count, source: source, destination: destination)
        _ = try? ICMPEcho.validate(frame, at: offset, count: count)
    }

    static func checkTCP(
        _ packet: [UInt8], at offset: Int, count: Int, source: IPv4Address, destination: IPv4Address
    ) throws(FuzzViolation) {
        guard let (header, payload) = try? TCPSegment.parseHeader(packet, at: offset, count: count, source: source, destination: destination)
        else { return }
        try fuzzExpect(offset + count <= packet.count, "a TCP segment parsed past the packet")
        let dataOffset = Int(packet[offset + 12] >> 4) * 4
        try fuzzExpect(
            dataOffset >= TCPSegment.headerSize && dataOffset <= count, "TCP data offset \(dataOffset) outside the \(count)-byte segment")
        try fuzzExpect(
            payload.lowerBound == offset + dataOffset && payload.upperBound == offset + count,
            "TCP payload at \(payload), the segment is \(offset)..<\(offset + count) with data offset \(dataOffset)")
        try fuzzExpect(header.payload.isEmpty, "parseHeader copied the payload")
        let segment: TCPSegment
        do {
            segment = try TCPSegment.parse(packet, at: offset, count: count, source: source, destination: destination)
        } catch {
            throw FuzzViolation(description: "parse refused what parseHeader accepted: \(error)")
        }
        try fuzzExpect(segment.payload == Array(packet[payload]), "the TCP payload differs from its bytes")
        // Written out (only MSS among the options) and read back: the same segment.
        var written: [UInt8] = []
        segment.append(to: &written, source: source, destination: destination)
        try fuzzExpect(written.count == segment.encodedSize, "encodedSize \(segment.encodedSize), wrote \(written.count)")
        let again: TCPSegment
        do {
            again = try TCPSegment.parse(written, at: 0, count: written.count, source: source, destination: destination)
        } catch {
            throw FuzzViolation(description: "a TCP segment written by the stack does not parse: \(error)")
        }
        try fuzzExpect(again == segment, "a TCP segment read back differently")
    }

    static func checkUDP(
        _ packet: [UInt8], at offset: Int, count: Int, source: IPv4Address, destination: IPv4Address
    ) throws(FuzzViolation) {
        guard let datagram = try? UDPDatagram.parse(packet, at: offset, count: count, source: source, destination: destination)
        else { return }
        try fuzzExpect(offset + count <= packet.count, "a UDP datagram parsed past the packet")
        let length = Int(readUInt16(packet, offset + 4))
        try fuzzExpect(length >= UDPDatagram.headerSize && length <= count, "UDP length \(length) outside the \(count) bytes")
        try fuzzExpect(datagram.payload.count == length - UDPDatagram.headerSize, "UDP payload of \(datagram.payload.count) bytes")
        var written: [UInt8] = []
        datagram.append(to: &written, source: source, destination: destination)
        let again: UDPDatagram
        do {
            again = try UDPDatagram.parse(written, at: 0, count: written.count, source: source, destination: destination)
        } catch {
            throw FuzzViolation(description: "a UDP datagram written by the stack does not parse: \(error)")
        }
        try fuzzExpect(again == datagram, "a UDP datagram read back differently")
    }

    /// The link layer's receive path: counters add up, and an answer is a well-formed frame.
    static func checkEndpoint(_ frame: [UInt8]) throws(FuzzViolation) {
        var endpoint = NetEndpoint(mac: mac, interface: interface, arpLifetime: 1_000_000)
        let reply = endpoint.handle(frame, now: 1)
        let counters = endpoint.counters
        try fuzzExpect(
            counters.receivedFrames == 1 && counters.sentFrames + counters.ignored + counters.dropped == 1,
            "link counters do not add up: \(counters)")
        try fuzzExpect(endpoint.arpCache.count <= 1, "the ARP cache learnt \(endpoint.arpCache.count) entries from one frame")
        guard let reply else { return }
        try fuzzExpect(reply.count >= EthernetHeader.minimumFrame, "a \(reply.count)-byte answer")
        guard let ethernet = try? EthernetHeader.parse(reply) else {
            throw FuzzViolation(description: "an answer without an Ethernet header")
        }
        try fuzzExpect(ethernet.source == mac, "an answer from another MAC")
        switch ethernet.etherType {
        case EtherType.arp:
            guard let packet = try? ARPPacket.parse(reply, at: EthernetHeader.size) else {
                throw FuzzViolation(description: "an ARP answer that does not parse")
            }
            try fuzzExpect(
                packet.operation == ARPPacket.reply && packet.senderIP == interface.address && packet.senderMAC == mac,
                "an ARP answer that is not our reply")
        case EtherType.ipv4:
            guard let header = try? IPv4Header.parse(reply, at: EthernetHeader.size) else {
                throw FuzzViolation(description: "a ping answer whose IPv4 header does not parse")
            }
            try fuzzExpect(header.protocolNumber == IPProtocol.icmp && header.source == interface.address, "a ping answer not ICMP from us")
            let start = EthernetHeader.size + header.headerLength
            let count = header.totalLength - header.headerLength
            try fuzzExpect((try? ICMPEcho.validate(reply, at: start, count: count)) != nil, "a ping answer with a bad ICMP checksum")
            try fuzzExpect(reply[start] == ICMPEcho.reply, "a ping answer that is not an echo reply")
        default:
            throw FuzzViolation(description: "an answer of EtherType \(ethernet.etherType)")
        }
    }

    /// The `ip=` option's parser on the frame as text: what it accepts prints back the same.
    static func checkInterfaceText(_ frame: [UInt8]) throws(FuzzViolation) {
        let text = String(decoding: frame.prefix(64), as: UTF8.self)
        guard let parsed = IPv4Interface(text) else { return }
        try fuzzExpect(parsed.prefixLength >= 0 && parsed.prefixLength <= 32, "prefix length \(parsed.prefixLength)")
        try fuzzExpect(IPv4Address(parsed.address.dotted) == parsed.address, "\(parsed.address.dotted) does not read back")
        _ = parsed.mask
        _ = parsed.isOnLink(IPv4Address(frame.count > 3 ? UInt32(frame[3]) : 0))
    }
}
