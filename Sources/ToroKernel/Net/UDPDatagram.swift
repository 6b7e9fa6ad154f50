// UDP (RFC 768): enough for a world without DNS — a port, a payload, and the
// checksum over the IPv4 pseudo-header. Plain Swift, host-tested.

/// One UDP datagram: ports and payload.
public struct UDPDatagram: Equatable {
    public static let headerSize = 8

    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var payload: [UInt8]

    public init(sourcePort: UInt16, destinationPort: UInt16, payload: [UInt8]) {
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.payload = payload
    }

    /// The datagram of `count` bytes at `offset` of `packet` (an IPv4 packet's
    /// payload). The length field must fit in `count`; a non-zero checksum must
    /// verify (zero means the sender computed none, which IPv4 allows).
    public static func parse(
        _ packet: [UInt8], at offset: Int, count: Int, source: IPv4Address, destination: IPv4Address
    ) throws(NetParseError) -> UDPDatagram {
        guard count >= headerSize, packet.count >= offset + count else { throw .truncated }
        let length = Int(readUInt16(packet, offset + 4))
        guard length >= headerSize, length <= count else { throw .badLength }
        if readUInt16(packet, offset + 6) != 0 {
            let pseudo = InternetChecksum.pseudoHeaderSum(
                source: source, destination: destination, protocolNumber: IPProtocol.udp, length: length)
            guard InternetChecksum.fold(InternetChecksum.sumFast(packet, from: offset, count: length, initial: pseudo)) == 0xFFFF
            else { throw .badChecksum }
        }
        return UDPDatagram(
            sourcePort: readUInt16(packet, offset), destinationPort: readUInt16(packet, offset + 2),
            payload: [UInt8](copying: packet[(offset + headerSize)..<(offset + length)]))
    }

    public var encodedSize: Int { Self.headerSize + payload.count }

    /// Writes header and payload at the writer's position, checksum included
    /// (a computed 0 is sent as 0xFFFF: 0 means "no checksum").
    public func write(to writer: inout ByteWriter, source: IPv4Address, destination: IPv4Address) {
        let length = encodedSize
        let start = writer.offset
        writer.put16(sourcePort)
        writer.put16(destinationPort)
        writer.put16(UInt16(truncatingIfNeeded: length))
        writer.put16(0)
        writer.put(payload)
        let pseudo = InternetChecksum.pseudoHeaderSum(
            source: source, destination: destination, protocolNumber: IPProtocol.udp, length: length)
        var checksum = ~InternetChecksum.fold(
            InternetChecksum.sumFast(UnsafeRawPointer(writer.base + start), count: length, initial: pseudo))
        if checksum == 0 { checksum = 0xFFFF }
        writer.patch16(checksum, at: start + 6)
    }

    /// Appends header and payload, with the checksum computed.
    public func append(to packet: inout [UInt8], source: IPv4Address, destination: IPv4Address) {
        packet += [UInt8].frame(size: encodedSize) { writer in write(to: &writer, source: source, destination: destination) }
    }
}
