// The first layers of the network stack: Ethernet, ARP, IPv4 and ICMP echo.
// Plain Swift with no kernel imports, so that it is unit-tested on the host
// (Tests/ToroKernelTests/NetPacketsTests.swift) and built into every image.

/// Why a frame could not be read.
public enum NetParseError: Error, Equatable {
    /// Fewer bytes than the header (or the length it declares) needs.
    case truncated
    /// A field has a value this stack does not read (IPv4 version, ARP hardware type...).
    case unsupported
    /// The IPv4 header length or total length is inconsistent.
    case badLength
    /// The Internet checksum does not verify.
    case badChecksum
    /// An IPv4 fragment (more-fragments set or a non-zero offset): not reassembled.
    case fragment
}

@inline(__always)
func readUInt16(_ bytes: [UInt8], _ offset: Int) -> UInt16 {
    UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
}

@inline(__always)
func appendUInt16(_ bytes: inout [UInt8], _ value: UInt16) {
    bytes.append(UInt8(truncatingIfNeeded: value >> 8))
    bytes.append(UInt8(truncatingIfNeeded: value))
}

/// An IPv4 address, most significant byte first.
public struct IPv4Address: Equatable, Hashable {
    public var value: UInt32

    public init(_ value: UInt32) { self.value = value }

    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        value = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    /// Four bytes at `offset`.
    public init(_ bytes: [UInt8], at offset: Int) {
        self.init(bytes[offset], bytes[offset + 1], bytes[offset + 2], bytes[offset + 3])
    }

    /// Dotted quad, `10.77.0.2`; nil for anything else.
    public init?(_ text: String) {
        var result: UInt32 = 0
        var parts = 0
        var current = -1
        for byte in text.utf8 {
            if byte == UInt8(ascii: ".") {
                guard current >= 0, parts < 3 else { return nil }
                result = result << 8 | UInt32(current)
                parts += 1
                current = -1
            } else if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                current = (current < 0 ? 0 : current * 10) + Int(byte - UInt8(ascii: "0"))
                guard current <= 255 else { return nil }
            } else {
                return nil
            }
        }
        guard current >= 0, parts == 3 else { return nil }
        value = result << 8 | UInt32(current)
    }

    public var bytes: [UInt8] {
        [UInt8(truncatingIfNeeded: value >> 24), UInt8(truncatingIfNeeded: value >> 16),
         UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)]
    }

    public func append(to frame: inout [UInt8]) { frame += bytes }

    public var dotted: String {
        var text = String(Int(value >> 24))
        text += "."
        text += String(Int((value >> 16) & 255))
        text += "."
        text += String(Int((value >> 8) & 255))
        text += "."
        text += String(Int(value & 255))
        return text
    }
}

/// An address with its prefix, as in the `ip=10.77.0.2/24` option.
public struct IPv4Interface: Equatable {
    public var address: IPv4Address
    public var prefixLength: Int

    public init(address: IPv4Address, prefixLength: Int) {
        self.address = address
        self.prefixLength = prefixLength
    }

    /// `A.B.C.D/N` (N from 0 to 32) or a bare `A.B.C.D` (prefix 32).
    public init?(_ text: String) {
        let pieces = text.split(separator: "/", omittingEmptySubsequences: false)
        guard pieces.count == 1 || pieces.count == 2, let address = IPv4Address(String(pieces[0])) else { return nil }
        var prefix = 32
        if pieces.count == 2 {
            // One or two digits, read by hand: Int("+8") would accept a sign.
            let digits = pieces[1].utf8
            guard !digits.isEmpty, digits.count <= 2, digits.allSatisfy({ $0 &- UInt8(ascii: "0") < 10 }) else { return nil }
            let value = digits.reduce(0) { $0 * 10 + Int($1 &- UInt8(ascii: "0")) }
            guard value <= 32 else { return nil }
            prefix = value
        }
        self.init(address: address, prefixLength: prefix)
    }

    public var mask: UInt32 { prefixLength == 0 ? 0 : ~UInt32(0) << UInt32(32 - prefixLength) }

    public func isOnLink(_ other: IPv4Address) -> Bool {
        (other.value & mask) == (address.value & mask)
    }
}

/// The Internet checksum (RFC 1071): the ones' complement of the ones'
/// complement sum of 16-bit big-endian words (an odd last byte is padded).
public enum InternetChecksum {
    /// The ones' complement sum of `count` bytes from `offset`, not yet folded
    /// or complemented (add several with `initial`): RFC 1071 word by word, the
    /// plain definition that ``sumFast(_:from:count:initial:)`` (which every
    /// caller uses) is tested against.
    public static func sum(_ bytes: [UInt8], from offset: Int, count: Int, initial: UInt32 = 0) -> UInt32 {
        var total = initial
        var index = offset
        let end = offset + count
        while index + 1 < end {
            total &+= UInt32(bytes[index]) << 8 | UInt32(bytes[index + 1])
            index += 2
        }
        if index < end { total &+= UInt32(bytes[index]) << 8 }
        return total
    }

    /// The checksum to store: the complement of the folded sum.
    public static func compute(_ bytes: [UInt8], from offset: Int, count: Int) -> UInt16 {
        ~fold(sumFast(bytes, from: offset, count: count))
    }

    /// True when the bytes, checksum field included, verify (compute gives 0).
    public static func verifies(_ bytes: [UInt8], from offset: Int, count: Int) -> Bool {
        compute(bytes, from: offset, count: count) == 0
    }

    /// The same sum as ``sum(_:from:count:initial:)`` once folded, computed 8
    /// bytes at a time: every instruction counts in the guest, so payloads are
    /// never summed byte by byte. The words are read little-endian and the
    /// folded result swapped back (the ones' complement sum commutes with byte
    /// swapping, RFC 1071 §2(B)); the returned value is `initial` plus a folded
    /// 16-bit sum, so it can be chained like ``sum(_:from:count:initial:)``.
    public static func sumFast(_ bytes: [UInt8], from offset: Int, count: Int, initial: UInt32 = 0) -> UInt32 {
        precondition(offset >= 0 && count >= 0 && offset + count <= bytes.count)
        guard count > 0 else { return initial }
        return bytes.withUnsafeBytes { raw in sumFast(raw.baseAddress! + offset, count: count, initial: initial) }
    }

    /// ``sumFast(_:from:count:initial:)`` over `count` bytes at `start`.
    public static func sumFast(_ start: UnsafeRawPointer, count: Int, initial: UInt32 = 0) -> UInt32 {
        var total: UInt64 = 0
        var index = 0
        // Four words per turn; each add keeps its carry (end-around carry).
        while index + 32 <= count {
            let a = UInt64(littleEndian: start.loadUnaligned(fromByteOffset: index, as: UInt64.self))
            let b = UInt64(littleEndian: start.loadUnaligned(fromByteOffset: index + 8, as: UInt64.self))
            let c = UInt64(littleEndian: start.loadUnaligned(fromByteOffset: index + 16, as: UInt64.self))
            let d = UInt64(littleEndian: start.loadUnaligned(fromByteOffset: index + 24, as: UInt64.self))
            var (s, o) = total.addingReportingOverflow(a)
            total = s &+ (o ? 1 : 0)
            (s, o) = total.addingReportingOverflow(b)
            total = s &+ (o ? 1 : 0)
            (s, o) = total.addingReportingOverflow(c)
            total = s &+ (o ? 1 : 0)
            (s, o) = total.addingReportingOverflow(d)
            total = s &+ (o ? 1 : 0)
            index += 32
        }
        while index + 8 <= count {
            let word = UInt64(littleEndian: start.loadUnaligned(fromByteOffset: index, as: UInt64.self))
            let (s, o) = total.addingReportingOverflow(word)
            total = s &+ (o ? 1 : 0)
            index += 8
        }
        // At most 7 bytes left: the same little-endian layout, zero-padded.
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while index < count {
            tail |= UInt64(start.load(fromByteOffset: index, as: UInt8.self)) << shift
            shift += 8
            index += 1
        }
        let (s, o) = total.addingReportingOverflow(tail)
        total = s &+ (o ? 1 : 0)
        // 2^16 ≡ 1 (mod 0xFFFF): folding keeps the residue, and stays non-zero
        // for non-zero data, exactly like folding the slow sum.
        total = (total & 0xFFFF_FFFF) &+ (total >> 32)
        total = (total & 0xFFFF_FFFF) &+ (total >> 32)
        total = (total & 0xFFFF) &+ (total >> 16)
        total = (total & 0xFFFF) &+ (total >> 16)
        return initial &+ UInt32(UInt16(truncatingIfNeeded: total).byteSwapped)
    }

    /// A sum folded to 16 bits (end-around carries added back).
    public static func fold(_ sum: UInt32) -> UInt16 {
        var total = sum
        while total >> 16 != 0 { total = (total & 0xFFFF) &+ (total >> 16) }
        return UInt16(truncatingIfNeeded: total)
    }

    /// The ones' complement sum of the IPv4 pseudo-header (RFC 793 §3.1,
    /// RFC 768) for a transport message of `length` bytes, not folded.
    public static func pseudoHeaderSum(source: IPv4Address, destination: IPv4Address, protocolNumber: UInt8, length: Int) -> UInt32 {
        (source.value >> 16) &+ (source.value & 0xFFFF) &+ (destination.value >> 16) &+ (destination.value & 0xFFFF)
            &+ UInt32(protocolNumber) &+ UInt32(truncatingIfNeeded: length & 0xFFFF)
    }
}

/// EtherType values this stack reads.
public enum EtherType {
    public static let ipv4: UInt16 = 0x0800
    public static let arp: UInt16 = 0x0806
}

/// The 14-byte Ethernet II header.
public struct EthernetHeader: Equatable {
    public static let size = 14
    /// The minimum frame without the frame check sequence: shorter frames are padded.
    public static let minimumFrame = 60
    public static let broadcast: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]

    public var destination: [UInt8]
    public var source: [UInt8]
    public var etherType: UInt16

    public init(destination: [UInt8], source: [UInt8], etherType: UInt16) {
        self.destination = destination
        self.source = source
        self.etherType = etherType
    }

    public static func parse(_ frame: [UInt8]) throws(NetParseError) -> EthernetHeader {
        guard frame.count >= size else { throw .truncated }
        return EthernetHeader(
            destination: Array(frame[0..<6]), source: Array(frame[6..<12]), etherType: readUInt16(frame, 12))
    }

    public func append(to frame: inout [UInt8]) {
        frame += destination
        frame += source
        appendUInt16(&frame, etherType)
    }
}

/// An ARP packet for IPv4 over Ethernet (RFC 826), 28 bytes.
public struct ARPPacket: Equatable {
    public static let size = 28
    public static let request: UInt16 = 1
    public static let reply: UInt16 = 2

    public var operation: UInt16
    public var senderMAC: [UInt8]
    public var senderIP: IPv4Address
    public var targetMAC: [UInt8]
    public var targetIP: IPv4Address

    public init(operation: UInt16, senderMAC: [UInt8], senderIP: IPv4Address, targetMAC: [UInt8], targetIP: IPv4Address) {
        self.operation = operation
        self.senderMAC = senderMAC
        self.senderIP = senderIP
        self.targetMAC = targetMAC
        self.targetIP = targetIP
    }

    /// The packet at `offset` (after the Ethernet header).
    public static func parse(_ frame: [UInt8], at offset: Int) throws(NetParseError) -> ARPPacket {
        guard frame.count >= offset + size else { throw .truncated }
        guard readUInt16(frame, offset) == 1, readUInt16(frame, offset + 2) == EtherType.ipv4,
            frame[offset + 4] == 6, frame[offset + 5] == 4
        else { throw .unsupported }
        let operation = readUInt16(frame, offset + 6)
        guard operation == request || operation == reply else { throw .unsupported }
        return ARPPacket(
            operation: operation, senderMAC: Array(frame[(offset + 8)..<(offset + 14)]),
            senderIP: IPv4Address(frame, at: offset + 14), targetMAC: Array(frame[(offset + 18)..<(offset + 24)]),
            targetIP: IPv4Address(frame, at: offset + 24))
    }

    public func append(to frame: inout [UInt8]) {
        frame += [0x00, 0x01, 0x08, 0x00, 6, 4]
        appendUInt16(&frame, operation)
        frame += senderMAC
        senderIP.append(to: &frame)
        frame += targetMAC
        targetIP.append(to: &frame)
    }

    /// A whole frame (Ethernet header, packet, padding to 60 bytes), written
    /// in one block (a flood of spoofed sources makes the stack ask ARP for
    /// each, so this is on a hot path then).
    public func frame(from source: [UInt8], to destination: [UInt8]) -> [UInt8] {
        [UInt8].frame(size: EthernetHeader.size + Self.size, minimum: EthernetHeader.minimumFrame) { writer in
            EthernetHeader(destination: destination, source: source, etherType: EtherType.arp).write(to: &writer)
            write(to: &writer)
        }
    }
}

/// A small ARP cache: at most `capacity` entries, each valid for `lifetime`
/// units of a clock the caller passes in (nanoseconds, ticks: its choice).
public struct ARPCache {
    struct Entry {
        var address: IPv4Address
        var mac: [UInt8]
        var expires: UInt64
    }

    public let capacity: Int
    public let lifetime: UInt64
    var entries: [Entry] = []

    public init(capacity: Int = 16, lifetime: UInt64) {
        self.capacity = max(capacity, 1)
        self.lifetime = lifetime
    }

    public var count: Int { entries.count }

    /// Records (or refreshes) `address` at `mac`; the entry closest to expiry
    /// makes room when the cache is full.
    public mutating func insert(_ address: IPv4Address, mac: [UInt8], now: UInt64) {
        let expires = now &+ lifetime
        for index in entries.indices where entries[index].address == address {
            entries[index].mac = mac
            entries[index].expires = expires
            return
        }
        if entries.count >= capacity {
            var oldest = 0
            for index in entries.indices where entries[index].expires < entries[oldest].expires { oldest = index }
            entries.remove(at: oldest)
        }
        entries.append(Entry(address: address, mac: mac, expires: expires))
    }

    /// The MAC for `address`, nil when unknown or expired (an expired entry is removed).
    public mutating func lookup(_ address: IPv4Address, now: UInt64) -> [UInt8]? {
        for index in entries.indices where entries[index].address == address {
            if now >= entries[index].expires {
                entries.remove(at: index)
                return nil
            }
            return entries[index].mac
        }
        return nil
    }

    /// Drops every expired entry.
    public mutating func expire(now: UInt64) {
        entries.removeAll { now >= $0.expires }
    }
}

/// IP protocol numbers this stack reads.
public enum IPProtocol {
    public static let icmp: UInt8 = 1
    public static let tcp: UInt8 = 6
    public static let udp: UInt8 = 17
}

/// An IPv4 header (RFC 791). Options are kept in the length but not read.
public struct IPv4Header: Equatable {
    public static let minimumSize = 20

    public var headerLength: Int = minimumSize
    public var typeOfService: UInt8 = 0
    public var totalLength: Int
    public var identification: UInt16 = 0
    /// Flags (3 bits) and fragment offset (13 bits).
    public var flagsAndOffset: UInt16 = 0x4000  // don't fragment
    public var timeToLive: UInt8 = 64
    public var protocolNumber: UInt8
    public var source: IPv4Address
    public var destination: IPv4Address

    public init(totalLength: Int, protocolNumber: UInt8, source: IPv4Address, destination: IPv4Address) {
        self.totalLength = totalLength
        self.protocolNumber = protocolNumber
        self.source = source
        self.destination = destination
    }

    public var isFragment: Bool { flagsAndOffset & 0x2000 != 0 || flagsAndOffset & 0x1FFF != 0 }

    /// The header at `offset`: version 4, a consistent header and total length
    /// within `frame`, a verified checksum, not a fragment.
    public static func parse(_ frame: [UInt8], at offset: Int) throws(NetParseError) -> IPv4Header {
        guard frame.count >= offset + minimumSize else { throw .truncated }
        guard frame[offset] >> 4 == 4 else { throw .unsupported }
        let headerLength = Int(frame[offset] & 0x0F) * 4
        guard headerLength >= minimumSize else { throw .badLength }
        guard frame.count >= offset + headerLength else { throw .truncated }
        let totalLength = Int(readUInt16(frame, offset + 2))
        guard totalLength >= headerLength else { throw .badLength }
        guard frame.count >= offset + totalLength else { throw .truncated }
        guard InternetChecksum.verifies(frame, from: offset, count: headerLength) else { throw .badChecksum }
        var header = IPv4Header(
            totalLength: totalLength, protocolNumber: frame[offset + 9],
            source: IPv4Address(frame, at: offset + 12), destination: IPv4Address(frame, at: offset + 16))
        header.headerLength = headerLength
        header.typeOfService = frame[offset + 1]
        header.identification = readUInt16(frame, offset + 4)
        header.flagsAndOffset = readUInt16(frame, offset + 6)
        header.timeToLive = frame[offset + 8]
        guard !header.isFragment else { throw .fragment }
        return header
    }

    /// Appends a 20-byte header (no options) with its checksum computed
    /// (``write(to:)`` does the work).
    public func append(to frame: inout [UInt8]) {
        frame += [UInt8].frame(size: Self.minimumSize) { write(to: &$0) }
    }
}

/// ICMP echo (RFC 792).
public enum ICMPEcho {
    public static let reply: UInt8 = 0
    public static let request: UInt8 = 8
    public static let headerSize = 8

    /// Checks the ICMP message of `count` bytes at `offset`: long enough and its checksum verifies.
    public static func validate(_ frame: [UInt8], at offset: Int, count: Int) throws(NetParseError) {
        guard count >= headerSize, frame.count >= offset + count else { throw .truncated }
        guard InternetChecksum.verifies(frame, from: offset, count: count) else { throw .badChecksum }
    }

    /// Appends the reply to the echo request of `count` bytes at `offset`
    /// (same identifier, sequence and data; type 0; new checksum).
    public static func appendReply(to frame: inout [UInt8], request: [UInt8], at offset: Int, count: Int) {
        let start = frame.count
        frame.append(reply)
        frame.append(0)
        frame.append(0)
        frame.append(0)
        frame += request[(offset + 4)..<(offset + count)]
        let checksum = InternetChecksum.compute(frame, from: start, count: count)
        frame[start + 2] = UInt8(truncatingIfNeeded: checksum >> 8)
        frame[start + 3] = UInt8(truncatingIfNeeded: checksum)
    }
}

/// What the stack counted.
public struct NetCounters: Equatable {
    public var receivedFrames = 0
    public var sentFrames = 0
    public var arpRequestsAnswered = 0
    public var arpRepliesReceived = 0
    public var echoRequests = 0
    public var echoReplies = 0
    public var droppedTruncated = 0
    public var droppedBadChecksum = 0
    public var droppedBadLength = 0
    public var droppedFragments = 0
    public var droppedUnsupported = 0
    /// Well-formed, but not addressed to us or not a protocol we answer.
    public var ignored = 0

    public init() {}

    public var dropped: Int {
        droppedTruncated + droppedBadChecksum + droppedBadLength + droppedFragments + droppedUnsupported
    }

    mutating func count(_ error: NetParseError) {
        switch error {
        case .truncated: droppedTruncated += 1
        case .badChecksum: droppedBadChecksum += 1
        case .badLength: droppedBadLength += 1
        case .fragment: droppedFragments += 1
        case .unsupported: droppedUnsupported += 1
        }
    }
}

/// One interface's receive path: takes a frame, answers ARP for its address
/// and ICMP echo, learns senders into its ARP cache, counts everything.
/// No I/O: the caller gives it frames and sends what it returns.
public struct NetEndpoint {
    public let mac: [UInt8]
    public let interface: IPv4Interface
    public var counters = NetCounters()
    public var arpCache: ARPCache
    var nextIdentification: UInt16 = 1

    public init(mac: [UInt8], interface: IPv4Interface, arpLifetime: UInt64) {
        self.mac = mac
        self.interface = interface
        arpCache = ARPCache(lifetime: arpLifetime)
    }

    /// The identification for the next IPv4 packet sent.
    mutating func takeIdentification() -> UInt16 {
        defer { nextIdentification &+= 1 }
        return nextIdentification
    }

    /// Handles one received frame at time `now` (the ARP cache's clock); the
    /// frame to send in answer, if any.
    public mutating func handle(_ frame: [UInt8], now: UInt64) -> [UInt8]? {
        counters.receivedFrames += 1
        do {
            let reply = try answer(frame, now: now)
            if reply == nil { counters.ignored += 1 } else { counters.sentFrames += 1 }
            return reply
        } catch {
            counters.count(error)
            return nil
        }
    }

    mutating func answer(_ frame: [UInt8], now: UInt64) throws(NetParseError) -> [UInt8]? {
        guard frame.count >= EthernetHeader.size else { throw .truncated }
        let destinationIsUs = frame[0] == mac[0] && frame[1] == mac[1] && frame[2] == mac[2]
            && frame[3] == mac[3] && frame[4] == mac[4] && frame[5] == mac[5]
        let destinationIsBroadcast = frame[0] & frame[1] & frame[2] & frame[3] & frame[4] & frame[5] == 0xFF
        guard destinationIsUs || destinationIsBroadcast else { return nil }
        switch readUInt16(frame, 12) {
        case EtherType.arp:
            let packet = try ARPPacket.parse(frame, at: EthernetHeader.size)
            if packet.operation == ARPPacket.reply {
                counters.arpRepliesReceived += 1
                if interface.isOnLink(packet.senderIP) { arpCache.insert(packet.senderIP, mac: packet.senderMAC, now: now) }
                return nil
            }
            guard packet.targetIP == interface.address else { return nil }
            // Learnt only from on-link askers, like replies: an off-link sender
            // address is never a next hop, and would only push real ones out.
            if interface.isOnLink(packet.senderIP) { arpCache.insert(packet.senderIP, mac: packet.senderMAC, now: now) }
            counters.arpRequestsAnswered += 1
            return ARPPacket(
                operation: ARPPacket.reply, senderMAC: mac, senderIP: interface.address,
                targetMAC: packet.senderMAC, targetIP: packet.senderIP
            ).frame(from: mac, to: packet.senderMAC)
        case EtherType.ipv4:
            guard destinationIsUs else { return nil }
            let offset = EthernetHeader.size
            let header = try IPv4Header.parse(frame, at: offset)
            guard header.destination == interface.address, header.protocolNumber == IPProtocol.icmp else { return nil }
            let icmpOffset = offset + header.headerLength
            let icmpCount = header.totalLength - header.headerLength
            try ICMPEcho.validate(frame, at: icmpOffset, count: icmpCount)
            guard frame[icmpOffset] == ICMPEcho.request, frame[icmpOffset + 1] == 0 else { return nil }
            counters.echoRequests += 1
            var reply: [UInt8] = []
            reply.reserveCapacity(max(EthernetHeader.size + IPv4Header.minimumSize + icmpCount, EthernetHeader.minimumFrame))
            EthernetHeader(destination: Array(frame[6..<12]), source: mac, etherType: EtherType.ipv4).append(to: &reply)
            var ip = IPv4Header(
                totalLength: IPv4Header.minimumSize + icmpCount, protocolNumber: IPProtocol.icmp,
                source: interface.address, destination: header.source)
            ip.identification = takeIdentification()
            ip.append(to: &reply)
            ICMPEcho.appendReply(to: &reply, request: frame, at: icmpOffset, count: icmpCount)
            while reply.count < EthernetHeader.minimumFrame { reply.append(0) }
            counters.echoReplies += 1
            return reply
        default:
            return nil
        }
    }
}
