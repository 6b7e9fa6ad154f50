import XCTest

@testable import ToroKernelPortable

/// A tiny deterministic PRNG for the tests (xorshift64*).
struct XorShift {
    var state: UInt64
    init(seed: UInt64) { state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed }
    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }
    mutating func below(_ bound: Int) -> Int { bound <= 0 ? 0 : Int(next() % UInt64(bound)) }
    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
    mutating func bytes(_ count: Int) -> [UInt8] {
        var result = [UInt8](repeating: 0, count: count)
        for index in 0..<count { result[index] = UInt8(truncatingIfNeeded: next() >> 32) }
        return result
    }
}

final class TCPSegmentTests: XCTestCase {
    let client = IPv4Address(10, 77, 0, 1)
    let server = IPv4Address(10, 77, 0, 2)

    func encode(_ segment: TCPSegment, from source: IPv4Address, to destination: IPv4Address) -> [UInt8] {
        var bytes: [UInt8] = []
        segment.append(to: &bytes, source: source, destination: destination)
        return bytes
    }

    /// A raw header with `options` (padded by the caller to a 4-byte multiple) and a correct checksum.
    func rawSegment(options: [UInt8], payload: [UInt8] = [], dataOffsetWords: Int? = nil) -> [UInt8] {
        var bytes: [UInt8] = [0x9C, 0x40, 0x00, 0x50, 0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0]
        let words = dataOffsetWords ?? (20 + options.count) / 4
        bytes += [UInt8(words << 4), 0x02, 0xFA, 0xF0, 0, 0, 0, 0]
        bytes += options
        bytes += payload
        let pseudo = TCPSegment.pseudoHeaderSum(source: client, destination: server, length: bytes.count)
        let checksum = ~InternetChecksum.fold(InternetChecksum.sum(bytes, from: 0, count: bytes.count, initial: pseudo))
        bytes[16] = UInt8(checksum >> 8)
        bytes[17] = UInt8(checksum & 0xFF)
        return bytes
    }

    func parse(_ bytes: [UInt8]) throws(NetParseError) -> TCPSegment {
        try TCPSegment.parse(bytes, at: 0, count: bytes.count, source: client, destination: server)
    }

    func expectError(
        _ expected: NetParseError, _ bytes: [UInt8], at offset: Int = 0, count: Int? = nil,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        do {
            _ = try TCPSegment.parse(bytes, at: offset, count: count ?? bytes.count - offset, source: client, destination: server)
            XCTFail("parsed, expected \(expected)", file: file, line: line)
        } catch {
            XCTAssertEqual(error, expected, file: file, line: line)
        }
    }

    func testFlagsValues() {
        XCTAssertEqual(TCPFlags.fin.rawValue, 0x01)
        XCTAssertEqual(TCPFlags.syn.rawValue, 0x02)
        XCTAssertEqual(TCPFlags.rst.rawValue, 0x04)
        XCTAssertEqual(TCPFlags.psh.rawValue, 0x08)
        XCTAssertEqual(TCPFlags.ack.rawValue, 0x10)
        XCTAssertEqual(TCPFlags.urg.rawValue, 0x20)
    }

    func testKnownSYNChecksum() throws {
        // 10.77.0.1:40000 → 10.77.0.2:80, SYN, seq 0x12345678, window 64240, MSS 1460;
        // checksum 0x835c computed independently (Python, RFC 1071 over pseudo-header + header).
        let expected: [UInt8] = [
            0x9C, 0x40, 0x00, 0x50, 0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0x00, 0x00,
            0x60, 0x02, 0xFA, 0xF0, 0x83, 0x5C, 0x00, 0x00, 0x02, 0x04, 0x05, 0xB4,
        ]
        let syn = TCPSegment(
            sourcePort: 40000, destinationPort: 80, sequence: 0x1234_5678, acknowledgement: 0, flags: .syn,
            window: 64240, maximumSegmentSize: 1460)
        XCTAssertEqual(syn.encodedSize, 24)
        XCTAssertEqual(syn.sequenceLength, 1)
        XCTAssertEqual(encode(syn, from: client, to: server), expected)
        XCTAssertEqual(try parse(expected), syn)
        // The same bytes with the addresses swapped do not verify: the pseudo-header counts.
        XCTAssertThrowsError(
            try TCPSegment.parse(expected, at: 0, count: 24, source: server, destination: IPv4Address(10, 77, 0, 3)))
    }

    func testKnownDataSegmentChecksumOddPayload() throws {
        // 10.77.0.2:80 → 10.77.0.1:40000, PSH|ACK, "hello, world!" (13 bytes): checksum 0x96fb (Python).
        let segment = TCPSegment(
            sourcePort: 80, destinationPort: 40000, sequence: 0xDEAD_BEEF, acknowledgement: 0x1234_5679,
            flags: [.psh, .ack], window: 65535, payload: Array("hello, world!".utf8))
        let bytes = encode(segment, from: server, to: client)
        XCTAssertEqual(bytes.count, 33)
        XCTAssertEqual(bytes[16], 0x96)
        XCTAssertEqual(bytes[17], 0xFB)
        XCTAssertEqual(segment.sequenceLength, 13)
        XCTAssertEqual(try TCPSegment.parse(bytes, at: 0, count: 33, source: server, destination: client), segment)
    }

    func testRoundTripAtOffset() throws {
        var random = XorShift(seed: 7)
        for round in 0..<50 {
            let segment = TCPSegment(
                sourcePort: UInt16(truncatingIfNeeded: random.next()), destinationPort: UInt16(truncatingIfNeeded: random.next()),
                sequence: UInt32(truncatingIfNeeded: random.next()), acknowledgement: UInt32(truncatingIfNeeded: random.next()),
                flags: TCPFlags(rawValue: UInt8(truncatingIfNeeded: random.next()) & 0x3F),
                window: UInt16(truncatingIfNeeded: random.next()),
                maximumSegmentSize: round % 3 == 0 ? UInt16(truncatingIfNeeded: random.next()) : nil,
                payload: random.bytes(random.below(1600)))
            let prefix = random.bytes(random.below(9))
            var packet = prefix
            segment.append(to: &packet, source: client, destination: server)
            XCTAssertEqual(packet.count, prefix.count + segment.encodedSize)
            XCTAssertEqual(Array(packet[0..<prefix.count]), prefix)
            packet += random.bytes(random.below(5))  // trailing bytes beyond `count` are not the segment's
            let parsed = try TCPSegment.parse(
                packet, at: prefix.count, count: segment.encodedSize, source: client, destination: server)
            XCTAssertEqual(parsed, segment)
            // The stack's parse leaves the payload where it lies.
            let (header, payload) = try TCPSegment.parseHeader(
                packet, at: prefix.count, count: segment.encodedSize, source: client, destination: server)
            XCTAssertTrue(header.payload.isEmpty)
            XCTAssertEqual(Array(packet[payload]), segment.payload)
            var withPayload = header
            withPayload.payload = Array(packet[payload])
            XCTAssertEqual(withPayload, segment)
        }
    }

    func testOptionListIsWalked() throws {
        // NOP, NOP, timestamps (kind 8, length 10), MSS 1200, window scale (3, 3), EOL, padding.
        let options: [UInt8] = [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 2, 4, 0x04, 0xB0, 3, 3, 7, 0]
        let parsed = try parse(rawSegment(options: options, payload: [0xAA, 0xBB]))
        XCTAssertEqual(parsed.maximumSegmentSize, 1200)
        XCTAssertEqual(parsed.payload, [0xAA, 0xBB])
        XCTAssertEqual(parsed.flags, .syn)
        // EOL ends the list: an MSS after it is not read (and not validated).
        let afterEOL = try parse(rawSegment(options: [0, 2, 1, 0xFF]))
        XCTAssertNil(afterEOL.maximumSegmentSize)
        // Unknown options only: no MSS.
        XCTAssertNil(try parse(rawSegment(options: [1, 1, 4, 2])).maximumSegmentSize)
    }

    func testMalformedOptions() {
        expectError(.badLength, rawSegment(options: [2, 3, 5, 1]))  // MSS with length 3
        expectError(.badLength, rawSegment(options: [2, 6, 5, 1, 0, 0, 0, 0]))  // MSS with length 6
        expectError(.badLength, rawSegment(options: [8, 1, 0, 0]))  // length below 2
        expectError(.badLength, rawSegment(options: [2, 0, 0, 0]))  // length 0 (would loop forever)
        expectError(.badLength, rawSegment(options: [1, 1, 1, 8]))  // no room for the length byte
        expectError(.badLength, rawSegment(options: [8, 10, 0, 0]))  // runs past the header
        expectError(.badLength, rawSegment(options: [2, 1, 0, 0]))  // MSS with length 1
        expectError(.badLength, rawSegment(options: [1, 1, 2, 4]))  // MSS running past the header
        expectError(.badLength, rawSegment(options: [1, 1, 1, 2]))  // a kind with no length byte left
        // An MSS of 0 parses: the connection raises it (TCPConfiguration.minimumPeerMSS).
        XCTAssertEqual(try parse(rawSegment(options: [2, 4, 0, 0])).maximumSegmentSize, 0)
        // The same lists well-formed parse.
        XCTAssertEqual(try parse(rawSegment(options: [2, 4, 5, 1])).maximumSegmentSize, 0x0501)
        XCTAssertNoThrow(try parse(rawSegment(options: [8, 4, 0, 0])))
    }

    func testLengthErrors() {
        let good = rawSegment(options: [], payload: [1, 2, 3])
        XCTAssertNoThrow(try parse(good))
        expectError(.truncated, Array(good[0..<19]))
        expectError(.truncated, good, count: 19)
        expectError(.truncated, good, count: good.count + 1)  // beyond the packet
        expectError(.truncated, good, at: 5, count: good.count)
        expectError(.badLength, rawSegment(options: [], dataOffsetWords: 4))  // data offset below 5
        expectError(.badLength, rawSegment(options: [], dataOffsetWords: 0))
        expectError(.badLength, rawSegment(options: [], payload: [1, 2, 3], dataOffsetWords: 6))  // 24 > 23 bytes
        expectError(.badLength, rawSegment(options: [], payload: [1, 2, 3], dataOffsetWords: 15))
        // A data offset exactly covering everything: header only, no payload.
        XCTAssertEqual(try parse(rawSegment(options: [1, 1, 1, 1])).payload, [])
    }

    func testBadChecksum() {
        let segment = TCPSegment(
            sourcePort: 1, destinationPort: 2, sequence: 3, acknowledgement: 4, flags: .ack, window: 5, payload: [9, 8, 7])
        var bytes = encode(segment, from: client, to: server)
        XCTAssertNoThrow(try parse(bytes))
        for index in [0, 4, 13, 16, 17, 20, 22] {
            var corrupt = bytes
            corrupt[index] ^= 0x01
            expectError(.badChecksum, corrupt)
        }
        bytes[16] = 0
        bytes[17] = 0
        expectError(.badChecksum, bytes)
    }

    func testFastChecksumMatchesSlowChecksum() {
        var random = XorShift(seed: 0xC0FFEE)
        for round in 0..<400 {
            let count = round < 40 ? round : random.below(3000)
            let offset = random.below(16)
            var data = random.bytes(offset + count + random.below(8))
            if round % 50 == 7 { data = [UInt8](repeating: 0xFF, count: data.count) }
            if round % 50 == 9 { data = [UInt8](repeating: 0, count: data.count) }
            let initial = round % 3 == 0 ? UInt32(truncatingIfNeeded: random.next()) & 0x3_FFFF : 0
            let slow = InternetChecksum.sum(data, from: offset, count: count, initial: initial)
            let fast = InternetChecksum.sumFast(data, from: offset, count: count, initial: initial)
            XCTAssertEqual(InternetChecksum.fold(fast), InternetChecksum.fold(slow), "count \(count) offset \(offset)")
        }
        // The RFC 1071 example.
        let example: [UInt8] = [0x00, 0x01, 0xF2, 0x03, 0xF4, 0xF5, 0xF6, 0xF7]
        XCTAssertEqual(InternetChecksum.fold(InternetChecksum.sumFast(example, from: 0, count: 8)), 0xDDF2)
        XCTAssertEqual(InternetChecksum.fold(InternetChecksum.sumFast([0x01], from: 0, count: 1)), 0x0100)
        XCTAssertEqual(InternetChecksum.fold(InternetChecksum.sumFast([], from: 0, count: 0)), 0)
    }

    func testWriteIntoMemoryMatchesAppend() {
        let segment = TCPSegment(
            sourcePort: 80, destinationPort: 40000, sequence: 1, acknowledgement: 2, flags: [.syn, .ack], window: 3,
            maximumSegmentSize: 1460, payload: [1, 2, 3, 4, 5])
        let expected = encode(segment, from: server, to: client)
        var memory = [UInt8](repeating: 0xEE, count: segment.encodedSize + 3)
        memory.withUnsafeMutableBytes { raw in
            segment.write(into: raw.baseAddress! + 1, source: server, destination: client)
        }
        XCTAssertEqual(Array(memory[1..<(1 + segment.encodedSize)]), expected)
        XCTAssertEqual(memory[0], 0xEE)
        XCTAssertEqual(memory[segment.encodedSize + 1], 0xEE)
        // The same with the payload written by the caller (from a send buffer).
        var header = segment
        header.payload = []
        var direct = [UInt8](repeating: 0xEE, count: segment.encodedSize)
        direct.withUnsafeMutableBytes { raw in
            header.write(into: raw.baseAddress!, source: server, destination: client, payloadCount: 5) { start in
                start.copyMemory(from: [UInt8]([1, 2, 3, 4, 5]), byteCount: 5)
            }
        }
        XCTAssertEqual(direct, expected)
    }

    func testByteRingAgainstAnArray() {
        var random = XorShift(seed: 31337)
        let ring = TCPByteRing()
        var model: [UInt8] = []
        for _ in 0..<3000 {
            switch random.below(4) {
            case 0, 1:
                let bytes = random.bytes(random.below(3000))
                let from = random.below(bytes.count + 1)
                ring.append(bytes[from...])
                model += bytes[from...]
            case 2:
                let count = random.below(model.count + 1)
                ring.removeFirst(count)
                model.removeFirst(count)
            default:
                let offset = random.below(model.count + 1)
                let count = random.below(model.count - offset + 1)
                XCTAssertEqual(ring.bytes(from: offset, count: count), Array(model[offset..<(offset + count)]))
            }
            XCTAssertEqual(ring.count, model.count)
            XCTAssertGreaterThanOrEqual(ring.capacity, ring.count)
        }
        XCTAssertEqual(ring.bytes(from: 0, count: ring.count), model)
        ring.removeAll()
        XCTAssertEqual(ring.count, 0)
        XCTAssertEqual(ring.capacity, 0)
        ring.append([9, 8][...])
        XCTAssertEqual(ring.bytes(from: 0, count: 2), [9, 8])
        XCTAssertEqual([UInt8](copying: [1, 2, 3, 4][1..<3]), [2, 3])
        XCTAssertEqual([UInt8](copying: [UInt8]()[...]), [])
    }
}
