@testable import ToroKernelPortable
import XCTest

final class NetPacketsTests: XCTestCase {
    let ourMAC: [UInt8] = [0x02, 0x54, 0x00, 0xAA, 0xBB, 0x01]
    let hostMAC: [UInt8] = [0x3E, 0x11, 0x22, 0x33, 0x44, 0x55]
    let us = IPv4Address(10, 77, 0, 2)
    let host = IPv4Address(10, 77, 0, 1)

    func endpoint() -> NetEndpoint {
        NetEndpoint(mac: ourMAC, interface: IPv4Interface("10.77.0.2/24")!, arpLifetime: 1000)
    }

    /// An echo request from the host as Linux ping sends it (recorded shape: DF, TTL 64, 56 data bytes).
    func echoRequest(sequence: UInt16 = 1, dataCount: Int = 56) -> [UInt8] {
        var frame: [UInt8] = []
        EthernetHeader(destination: ourMAC, source: hostMAC, etherType: EtherType.ipv4).append(to: &frame)
        var ip = IPv4Header(totalLength: 20 + 8 + dataCount, protocolNumber: IPProtocol.icmp, source: host, destination: us)
        ip.identification = 0x1234
        ip.append(to: &frame)
        let start = frame.count
        frame += [8, 0, 0, 0, 0x00, 0x2A, UInt8(sequence >> 8), UInt8(sequence & 255)]
        for index in 0..<dataCount { frame.append(UInt8(truncatingIfNeeded: index + 0x10)) }
        let checksum = InternetChecksum.compute(frame, from: start, count: 8 + dataCount)
        frame[start + 2] = UInt8(checksum >> 8)
        frame[start + 3] = UInt8(checksum & 255)
        return frame
    }

    func arpRequest(for target: IPv4Address) -> [UInt8] {
        ARPPacket(operation: ARPPacket.request, senderMAC: hostMAC, senderIP: host, targetMAC: [0, 0, 0, 0, 0, 0], targetIP: target)
            .frame(from: hostMAC, to: EthernetHeader.broadcast)
    }

    func testChecksumRFC1071Example() {
        // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2 (before complement).
        let bytes: [UInt8] = [0x00, 0x01, 0xF2, 0x03, 0xF4, 0xF5, 0xF6, 0xF7]
        XCTAssertEqual(InternetChecksum.compute(bytes, from: 0, count: 8), ~UInt16(0xDDF2))
        // An odd count pads with a zero byte.
        XCTAssertEqual(InternetChecksum.compute([0x01], from: 0, count: 1), ~UInt16(0x0100))
    }

    func testRecordedIPv4HeaderVerifies() {
        // A well-known header (Wikipedia's example): checksum b861.
        let header: [UInt8] = [0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xB8, 0x61,
                               0xC0, 0xA8, 0x00, 0x01, 0xC0, 0xA8, 0x00, 0xC7]
        XCTAssertTrue(InternetChecksum.verifies(header, from: 0, count: 20))
        var rebuilt: [UInt8] = []
        var ip = IPv4Header(totalLength: 0x73, protocolNumber: 0x11, source: IPv4Address(192, 168, 0, 1),
                            destination: IPv4Address(192, 168, 0, 199))
        ip.identification = 0
        ip.flagsAndOffset = 0x4000
        ip.timeToLive = 64
        ip.append(to: &rebuilt)
        XCTAssertEqual(rebuilt, header)
        let padded = header + [UInt8](repeating: 0, count: 0x73 - 20)
        let parsed = try? IPv4Header.parse(padded, at: 0)
        XCTAssertEqual(parsed, ip)
    }

    func testIPv4ParseErrors() {
        let good = echoRequest()
        func error(_ frame: [UInt8]) -> NetParseError? {
            do { _ = try IPv4Header.parse(frame, at: 14); return nil } catch { return error }
        }
        XCTAssertNil(error(good))
        XCTAssertEqual(error(Array(good[0..<30])), .truncated)
        var bad = good
        bad[14 + 10] ^= 0xFF
        XCTAssertEqual(error(bad), .badChecksum)
        var version = good
        version[14] = 0x65
        XCTAssertEqual(error(version), .unsupported)
        var short = good
        short[14] = 0x44
        XCTAssertEqual(error(short), .badLength)
        // A total length beyond the frame: truncated (checked before the checksum).
        var long = good
        long[14 + 2] = 0x05
        XCTAssertEqual(error(long), .truncated)
        for flags: UInt16 in [0x2000, 0x0001, 0x20B9] {
            var ip = IPv4Header(totalLength: 28, protocolNumber: 1, source: host, destination: us)
            ip.flagsAndOffset = flags
            var frame = [UInt8](repeating: 0, count: 14)
            ip.append(to: &frame)
            frame += [UInt8](repeating: 0, count: 8)
            XCTAssertEqual(error(frame), .fragment)
        }
    }

    func testEthernetAndARPRoundTrip() throws {
        let frame = arpRequest(for: us)
        XCTAssertEqual(frame.count, 60)
        // Written in one block, the same bytes as appended field by field.
        var appended: [UInt8] = []
        EthernetHeader(destination: EthernetHeader.broadcast, source: hostMAC, etherType: EtherType.arp).append(to: &appended)
        ARPPacket(operation: ARPPacket.request, senderMAC: hostMAC, senderIP: host, targetMAC: [0, 0, 0, 0, 0, 0], targetIP: us)
            .append(to: &appended)
        XCTAssertEqual(frame, appended + [UInt8](repeating: 0, count: 60 - appended.count))
        let ethernet = try EthernetHeader.parse(frame)
        XCTAssertEqual(ethernet, EthernetHeader(destination: EthernetHeader.broadcast, source: hostMAC, etherType: EtherType.arp))
        let packet = try ARPPacket.parse(frame, at: 14)
        XCTAssertEqual(packet.operation, ARPPacket.request)
        XCTAssertEqual(packet.senderIP, host)
        XCTAssertEqual(packet.targetIP, us)
        XCTAssertThrowsError(try EthernetHeader.parse([1, 2, 3]))
        XCTAssertThrowsError(try ARPPacket.parse(Array(frame[0..<30]), at: 14)) { XCTAssertEqual($0 as? NetParseError, .truncated) }
        var ipx = frame
        ipx[14 + 3] = 0x37
        XCTAssertThrowsError(try ARPPacket.parse(ipx, at: 14)) { XCTAssertEqual($0 as? NetParseError, .unsupported) }
    }

    func testAnswersARPForItsAddressOnly() throws {
        var stack = endpoint()
        let reply = try XCTUnwrap(stack.handle(arpRequest(for: us), now: 0))
        XCTAssertEqual(Array(reply[0..<6]), hostMAC)
        XCTAssertEqual(Array(reply[6..<12]), ourMAC)
        let packet = try ARPPacket.parse(reply, at: 14)
        XCTAssertEqual(packet, ARPPacket(operation: ARPPacket.reply, senderMAC: ourMAC, senderIP: us, targetMAC: hostMAC, targetIP: host))
        XCTAssertEqual(stack.arpCache.lookup(host, now: 10), hostMAC, "the asker is learnt")
        XCTAssertNil(stack.handle(arpRequest(for: IPv4Address(10, 77, 0, 9)), now: 0))
        XCTAssertEqual(stack.counters.arpRequestsAnswered, 1)
        XCTAssertEqual(stack.counters.ignored, 1)
    }

    func testEchoRequestGetsAReply() throws {
        var stack = endpoint()
        let request = echoRequest(sequence: 7)
        let reply = try XCTUnwrap(stack.handle(request, now: 0))
        XCTAssertEqual(reply.count, request.count)
        XCTAssertEqual(Array(reply[0..<6]), hostMAC)
        let ip = try IPv4Header.parse(reply, at: 14)
        XCTAssertEqual(ip.source, us)
        XCTAssertEqual(ip.destination, host)
        XCTAssertEqual(ip.protocolNumber, IPProtocol.icmp)
        XCTAssertNoThrow(try ICMPEcho.validate(reply, at: 34, count: ip.totalLength - 20))
        XCTAssertEqual(reply[34], ICMPEcho.reply)
        XCTAssertEqual(Array(reply[38...]), Array(request[38...]), "identifier, sequence and data echoed")
        XCTAssertEqual(stack.counters.echoRequests, 1)
        XCTAssertEqual(stack.counters.echoReplies, 1)

        // A small request is padded to the Ethernet minimum.
        let small = try XCTUnwrap(stack.handle(echoRequest(dataCount: 0), now: 0))
        XCTAssertEqual(small.count, 60)
        XCTAssertEqual(try IPv4Header.parse(small, at: 14).totalLength, 28)
    }

    func testBadFramesAreDroppedAndCounted() {
        var stack = endpoint()
        var badIP = echoRequest()
        badIP[14 + 8] = 1  // TTL changed without fixing the checksum
        XCTAssertNil(stack.handle(badIP, now: 0))
        var badICMP = echoRequest()
        badICMP[50] ^= 0x01
        XCTAssertNil(stack.handle(badICMP, now: 0))
        XCTAssertNil(stack.handle(Array(echoRequest()[0..<40]), now: 0))
        XCTAssertNil(stack.handle([0x02, 0x54], now: 0))
        var lengthTooSmall = echoRequest()
        lengthTooSmall[14 + 2] = 0
        lengthTooSmall[14 + 3] = 10
        XCTAssertNil(stack.handle(lengthTooSmall, now: 0))
        var fragment: [UInt8] = []
        EthernetHeader(destination: ourMAC, source: hostMAC, etherType: EtherType.ipv4).append(to: &fragment)
        var ip = IPv4Header(totalLength: 36, protocolNumber: IPProtocol.icmp, source: host, destination: us)
        ip.flagsAndOffset = 0x2000
        ip.append(to: &fragment)
        fragment += [UInt8](repeating: 0, count: 16)
        XCTAssertNil(stack.handle(fragment, now: 0))
        // Not ours: another MAC, another IP.
        var otherMAC = echoRequest()
        otherMAC[5] = 0x99
        XCTAssertNil(stack.handle(otherMAC, now: 0))

        XCTAssertEqual(stack.counters.droppedBadChecksum, 2)
        XCTAssertEqual(stack.counters.droppedTruncated, 2)
        XCTAssertEqual(stack.counters.droppedBadLength, 1)
        XCTAssertEqual(stack.counters.droppedFragments, 1)
        XCTAssertEqual(stack.counters.dropped, 6)
        XCTAssertEqual(stack.counters.ignored, 1)
        XCTAssertEqual(stack.counters.receivedFrames, 7)
        XCTAssertEqual(stack.counters.sentFrames, 0)
    }

    func testARPCacheExpiresAndEvicts() {
        var cache = ARPCache(capacity: 2, lifetime: 100)
        cache.insert(host, mac: hostMAC, now: 0)
        XCTAssertEqual(cache.lookup(host, now: 99), hostMAC)
        XCTAssertNil(cache.lookup(host, now: 100))
        XCTAssertEqual(cache.count, 0)
        cache.insert(IPv4Address(10, 0, 0, 1), mac: [1, 1, 1, 1, 1, 1], now: 0)
        cache.insert(IPv4Address(10, 0, 0, 2), mac: [2, 2, 2, 2, 2, 2], now: 10)
        cache.insert(IPv4Address(10, 0, 0, 1), mac: [3, 3, 3, 3, 3, 3], now: 20)  // refresh
        cache.insert(IPv4Address(10, 0, 0, 3), mac: [4, 4, 4, 4, 4, 4], now: 30)  // evicts .2
        XCTAssertEqual(cache.count, 2)
        XCTAssertNil(cache.lookup(IPv4Address(10, 0, 0, 2), now: 30))
        XCTAssertEqual(cache.lookup(IPv4Address(10, 0, 0, 1), now: 30), [3, 3, 3, 3, 3, 3])
        cache.expire(now: 125)
        XCTAssertEqual(cache.count, 1)
    }

    func testAddressParsing() {
        XCTAssertEqual(IPv4Interface("10.77.0.2/24"), IPv4Interface(address: IPv4Address(10, 77, 0, 2), prefixLength: 24))
        XCTAssertEqual(IPv4Interface("10.77.0.2")?.prefixLength, 32)
        XCTAssertEqual(IPv4Interface("10.77.0.2/08")?.prefixLength, 8)
        XCTAssertEqual(IPv4Interface("10.77.0.2/0")?.prefixLength, 0)
        XCTAssertEqual(IPv4Interface("10.77.0.2/24")?.mask, 0xFFFF_FF00)
        XCTAssertEqual(IPv4Interface("0.0.0.0/0")?.mask, 0)
        XCTAssertTrue(IPv4Interface("10.77.0.2/24")!.isOnLink(host))
        XCTAssertFalse(IPv4Interface("10.77.0.2/24")!.isOnLink(IPv4Address(10, 78, 0, 1)))
        for bad in ["10.77.0.2/33", "10.77.0/24", "10.77.0.256", "10.77.0.2/", "a.b.c.d", "10..0.2", "10.77.0.2.1", "", "10.77.0.2/24/1",
                    "10.77.0.2/+8", "10.77.0.2/-0", "10.77.0.2/099", "10.77.0.2/ 8", "99999999999999999999.0.0.1", "10.77.0.-1",
                    "10.77.0.+1", "4294967306.0.0.0"] {
            XCTAssertNil(IPv4Interface(bad), bad)
        }
        XCTAssertEqual(IPv4Address(10, 77, 0, 2).dotted, "10.77.0.2")
        XCTAssertEqual(IPv4Address("255.255.255.255")?.value, 0xFFFF_FFFF)
    }
}
