// TCP segments (RFC 793 §3.1): the header, the MSS option, the checksum over
// the IPv4 pseudo-header. Plain Swift, unit-tested on the host
// (Tests/ToroKernelTests/TCPSegmentTests.swift).

/// The control bits of a TCP header.
public struct TCPFlags: OptionSet, Equatable, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let fin = TCPFlags(rawValue: 0x01)
    public static let syn = TCPFlags(rawValue: 0x02)
    public static let rst = TCPFlags(rawValue: 0x04)
    public static let psh = TCPFlags(rawValue: 0x08)
    public static let ack = TCPFlags(rawValue: 0x10)
    public static let urg = TCPFlags(rawValue: 0x20)
}

/// One TCP segment: the header fields this stack uses, the MSS option, the payload.
public struct TCPSegment: Equatable {
    public static let headerSize = 20

    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var sequence: UInt32
    public var acknowledgement: UInt32
    public var flags: TCPFlags
    public var window: UInt16
    /// The MSS option (kind 2); the connection sets it only on SYNs.
    public var maximumSegmentSize: UInt16?
    public var payload: [UInt8]

    public init(
        sourcePort: UInt16, destinationPort: UInt16, sequence: UInt32, acknowledgement: UInt32,
        flags: TCPFlags, window: UInt16, maximumSegmentSize: UInt16? = nil, payload: [UInt8] = []
    ) {
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.sequence = sequence
        self.acknowledgement = acknowledgement
        self.flags = flags
        self.window = window
        self.maximumSegmentSize = maximumSegmentSize
        self.payload = payload
    }

    /// The sum of the pseudo-header (RFC 793 §3.1): addresses, protocol, length.
    static func pseudoHeaderSum(source: IPv4Address, destination: IPv4Address, length: Int) -> UInt32 {
        InternetChecksum.pseudoHeaderSum(source: source, destination: destination, protocolNumber: IPProtocol.tcp, length: length)
    }

    /// Payload bytes plus one for SYN and one for FIN.
    public var sequenceLength: Int {
        payload.count + (flags.contains(.syn) ? 1 : 0) + (flags.contains(.fin) ? 1 : 0)
    }

    /// The header with its options: 24 bytes with the MSS option, else 20.
    public var headerLength: Int { maximumSegmentSize == nil ? Self.headerSize : Self.headerSize + 4 }

    /// Header (with options) plus payload, in bytes.
    public var encodedSize: Int { headerLength + payload.count }

    /// The segment of `count` bytes at `offset` of `packet` (an IPv4 packet's
    /// payload), its checksum verified with the pseudo-header of
    /// `source`/`destination` (RFC 793 §3.1). Options other than MSS are skipped.
    /// Throws `.truncated` when `count` is under 20 bytes or runs past `packet`,
    /// `.badLength` for a data offset under 5 words or beyond `count` and for a
    /// malformed option list, `.badChecksum` when the checksum does not verify.
    public static func parse(
        _ packet: [UInt8], at offset: Int, count: Int, source: IPv4Address, destination: IPv4Address
    ) throws(NetParseError) -> TCPSegment {
        var (segment, payload) = try parseHeader(packet, at: offset, count: count, source: source, destination: destination)
        segment.payload = [UInt8](copying: packet[payload])
        return segment
    }

    /// ``parse(_:at:count:source:destination:)`` without copying the payload:
    /// the segment's `payload` is empty, and where the payload lies in
    /// `packet` comes with it (the stack copies it once, into the receive buffer).
    static func parseHeader(
        _ packet: [UInt8], at offset: Int, count: Int, source: IPv4Address, destination: IPv4Address
    ) throws(NetParseError) -> (segment: TCPSegment, payload: Range<Int>) {
        guard offset >= 0, count >= 0, packet.count - offset >= count else { throw .truncated }
        guard count >= headerSize else { throw .truncated }
        let dataOffset = Int(packet[offset + 12] >> 4) * 4
        guard dataOffset >= headerSize, dataOffset <= count, count <= 0xFFFF else { throw .badLength }
        let pseudo = pseudoHeaderSum(source: source, destination: destination, length: count)
        guard InternetChecksum.fold(InternetChecksum.sumFast(packet, from: offset, count: count, initial: pseudo)) == 0xFFFF
        else { throw .badChecksum }

        // The option list (RFC 793 §3.1, RFC 9293 §3.2): EOL ends it, NOP is one
        // byte, every other kind carries a length that must fit.
        var mss: UInt16? = nil
        var index = offset + headerSize
        let optionsEnd = offset + dataOffset
        while index < optionsEnd {
            let kind = packet[index]
            if kind == 0 { break }
            if kind == 1 {
                index += 1
                continue
            }
            guard index + 1 < optionsEnd else { throw .badLength }
            let length = Int(packet[index + 1])
            guard length >= 2, index + length <= optionsEnd else { throw .badLength }
            if kind == 2 {
                guard length == 4 else { throw .badLength }
                mss = readUInt16(packet, index + 2)
            }
            index += length
        }
        let segment = TCPSegment(
            sourcePort: readUInt16(packet, offset), destinationPort: readUInt16(packet, offset + 2),
            sequence: UInt32(readUInt16(packet, offset + 4)) << 16 | UInt32(readUInt16(packet, offset + 6)),
            acknowledgement: UInt32(readUInt16(packet, offset + 8)) << 16 | UInt32(readUInt16(packet, offset + 10)),
            flags: TCPFlags(rawValue: packet[offset + 13]), window: readUInt16(packet, offset + 14),
            maximumSegmentSize: mss)
        return (segment, optionsEnd..<(offset + count))
    }

    /// Appends header (+ MSS option when set, padded to a 4-byte multiple) and
    /// payload, with the checksum computed. The bytes already in `packet`
    /// (the Ethernet and IPv4 headers) are copied once into a new array.
    public func append(to packet: inout [UInt8], source: IPv4Address, destination: IPv4Address) {
        let start = packet.count
        let total = start + encodedSize
        packet = packet.withUnsafeBytes { old in
            [UInt8](unsafeUninitializedCapacity: total) { buffer, initialized in
                let base = UnsafeMutableRawPointer(buffer.baseAddress!)
                if start > 0 { base.copyMemory(from: old.baseAddress!, byteCount: start) }
                write(into: base + start, source: source, destination: destination)
                initialized = total
            }
        }
    }

    /// Writes the segment, checksum computed, into the `encodedSize` bytes at
    /// `destination` (for callers that build a frame in place).
    public func write(into destination: UnsafeMutableRawPointer, source: IPv4Address, destination target: IPv4Address) {
        payload.withUnsafeBytes { bytes in
            write(into: destination, source: source, destination: target, payloadCount: bytes.count) { start in
                if let base = bytes.baseAddress { start.copyMemory(from: base, byteCount: bytes.count) }
            }
        }
    }

    /// ``write(into:source:destination:)`` with a payload of `payloadCount`
    /// bytes that `writePayload` puts at the pointer it is given, in place of
    /// ``payload`` (ignored): for a payload that lives elsewhere (a TCP send
    /// buffer), copied once into the frame.
    func write(
        into destination: UnsafeMutableRawPointer, source: IPv4Address, destination target: IPv4Address,
        payloadCount: Int, writePayload: (UnsafeMutableRawPointer) -> Void
    ) {
        let headerLength = self.headerLength
        destination.storeBytes(of: sourcePort.bigEndian, toByteOffset: 0, as: UInt16.self)
        destination.storeBytes(of: destinationPort.bigEndian, toByteOffset: 2, as: UInt16.self)
        destination.storeBytes(of: sequence.bigEndian, toByteOffset: 4, as: UInt32.self)
        destination.storeBytes(of: acknowledgement.bigEndian, toByteOffset: 8, as: UInt32.self)
        destination.storeBytes(of: UInt8(truncatingIfNeeded: headerLength / 4) << 4, toByteOffset: 12, as: UInt8.self)
        destination.storeBytes(of: flags.rawValue, toByteOffset: 13, as: UInt8.self)
        destination.storeBytes(of: window.bigEndian, toByteOffset: 14, as: UInt16.self)
        destination.storeBytes(of: 0, toByteOffset: 16, as: UInt32.self)  // checksum (below), urgent pointer
        if let mss = maximumSegmentSize {
            destination.storeBytes(of: 2, toByteOffset: 20, as: UInt8.self)
            destination.storeBytes(of: 4, toByteOffset: 21, as: UInt8.self)
            destination.storeBytes(of: mss.bigEndian, toByteOffset: 22, as: UInt16.self)
        }
        if payloadCount > 0 { writePayload(destination + headerLength) }
        let length = headerLength + payloadCount
        let pseudo = Self.pseudoHeaderSum(source: source, destination: target, length: length)
        let checksum = ~InternetChecksum.fold(
            InternetChecksum.sumFast(UnsafeRawPointer(destination), count: length, initial: pseudo))
        destination.storeBytes(of: checksum.bigEndian, toByteOffset: 16, as: UInt16.self)
    }
}

/// One end of a TCP connection.
public struct TCPEndpoint: Equatable, Hashable {
    public var address: IPv4Address
    public var port: UInt16

    public init(address: IPv4Address, port: UInt16) {
        self.address = address
        self.port = port
    }
}

// MARK: - Sequence numbers

/// `a - b` in sequence space (RFC 793 §3.3: arithmetic modulo 2^32).
@inline(__always)
func seqDiff(_ a: UInt32, _ b: UInt32) -> Int { Int(Int32(bitPattern: a &- b)) }
@inline(__always)
func seqLT(_ a: UInt32, _ b: UInt32) -> Bool { seqDiff(a, b) < 0 }
@inline(__always)
func seqLEQ(_ a: UInt32, _ b: UInt32) -> Bool { seqDiff(a, b) <= 0 }
@inline(__always)
func seqGT(_ a: UInt32, _ b: UInt32) -> Bool { seqDiff(a, b) > 0 }
@inline(__always)
func seqGEQ(_ a: UInt32, _ b: UInt32) -> Bool { seqDiff(a, b) >= 0 }
@inline(__always)
func seqAdd(_ a: UInt32, _ n: Int) -> UInt32 { a &+ UInt32(truncatingIfNeeded: n) }
