// Moving bytes in blocks.
//
// In the kernel's -Osize Embedded build, Array's generic initialisers and
// `append(contentsOf:)` copy UInt8 elements one at a time (six instructions a
// byte, found with `toro-vmm run --profile`), and every guest instruction is
// expensive under an emulating hypervisor. `copyMemory` lowers to one call of
// the runtime's memmove (`rep movsb`), so the network path builds frames and
// buffers through these helpers instead.

extension Array where Element == UInt8 {
    /// `count` bytes from `source`, copied in one block.
    public init(copying source: UnsafeRawPointer, count: Int) {
        self.init(unsafeUninitializedCapacity: count) { buffer, initialized in
            if count > 0 { UnsafeMutableRawPointer(buffer.baseAddress!).copyMemory(from: source, byteCount: count) }
            initialized = count
        }
    }

    /// The bytes of `slice`, copied in one block.
    public init(copying slice: ArraySlice<UInt8>) {
        let count = slice.count
        self = slice.withUnsafeBytes { bytes in
            count == 0 ? [] : [UInt8](copying: bytes.baseAddress!, count: count)
        }
    }

    /// A frame of `size` bytes (at least `minimum`, zero-padded) written by `body`.
    public static func frame(size: Int, minimum: Int = 0, _ body: (inout ByteWriter) -> Void) -> [UInt8] {
        let total = Swift.max(size, minimum)
        return [UInt8](unsafeUninitializedCapacity: total) { buffer, initialized in
            var writer = ByteWriter(buffer.baseAddress!, capacity: total)
            body(&writer)
            if writer.offset < total {
                (UnsafeMutableRawPointer(buffer.baseAddress!) + writer.offset).initializeMemory(
                    as: UInt8.self, repeating: 0, count: total - writer.offset)
            }
            initialized = total
        }
    }
}

/// Writes big-endian fields and byte blocks into memory, front to back. The
/// writer trusts its caller with the capacity (it is only used to build
/// frames whose size was computed first); a wrong size traps.
public struct ByteWriter {
    public let base: UnsafeMutablePointer<UInt8>
    public let capacity: Int
    public private(set) var offset = 0

    public init(_ base: UnsafeMutablePointer<UInt8>, capacity: Int) {
        self.base = base
        self.capacity = capacity
    }

    @inline(__always)
    public mutating func put(_ value: UInt8) {
        precondition(offset < capacity)
        base[offset] = value
        offset += 1
    }

    @inline(__always)
    public mutating func put16(_ value: UInt16) {
        put(UInt8(truncatingIfNeeded: value >> 8))
        put(UInt8(truncatingIfNeeded: value))
    }

    @inline(__always)
    public mutating func put32(_ value: UInt32) {
        put16(UInt16(truncatingIfNeeded: value >> 16))
        put16(UInt16(truncatingIfNeeded: value))
    }

    /// `count` bytes from `source` in one block.
    public mutating func put(_ source: UnsafeRawPointer, count: Int) {
        guard count > 0 else { return }
        precondition(offset + count <= capacity)
        UnsafeMutableRawPointer(base + offset).copyMemory(from: source, byteCount: count)
        offset += count
    }

    public mutating func put(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { put($0.baseAddress ?? UnsafeRawPointer(base), count: $0.count) }
    }

    public mutating func put(_ bytes: ArraySlice<UInt8>) {
        bytes.withUnsafeBytes { put($0.baseAddress ?? UnsafeRawPointer(base), count: $0.count) }
    }

    /// The next `count` bytes, for a caller that writes them itself; the writer moves past them.
    public mutating func claim(_ count: Int) -> UnsafeMutableRawPointer {
        precondition(count >= 0 && offset + count <= capacity)
        defer { offset += count }
        return UnsafeMutableRawPointer(base + offset)
    }

    /// Overwrites two bytes already written at `at` (a checksum filled in afterwards).
    public func patch16(_ value: UInt16, at: Int) {
        precondition(at + 2 <= offset)
        base[at] = UInt8(truncatingIfNeeded: value >> 8)
        base[at + 1] = UInt8(truncatingIfNeeded: value)
    }
}

extension EthernetHeader {
    /// Writes the header at the writer's position (building a frame in one block).
    public func write(to writer: inout ByteWriter) {
        writer.put(destination)
        writer.put(source)
        writer.put16(etherType)
    }
}

extension ARPPacket {
    /// Writes the 28-byte packet at the writer's position.
    public func write(to writer: inout ByteWriter) {
        writer.put16(1)  // Ethernet
        writer.put16(EtherType.ipv4)
        writer.put(6)
        writer.put(4)
        writer.put16(operation)
        writer.put(senderMAC)
        writer.put32(senderIP.value)
        writer.put(targetMAC)
        writer.put32(targetIP.value)
    }
}

extension IPv4Header {
    /// Writes a 20-byte header (no options) with its checksum computed.
    public func write(to writer: inout ByteWriter) {
        let start = writer.offset
        writer.put(0x45)
        writer.put(typeOfService)
        writer.put16(UInt16(truncatingIfNeeded: totalLength))
        writer.put16(identification)
        writer.put16(flagsAndOffset)
        writer.put(timeToLive)
        writer.put(protocolNumber)
        writer.put16(0)
        writer.put32(source.value)
        writer.put32(destination.value)
        let sum = InternetChecksum.sumFast(UnsafeRawPointer(writer.base + start), count: Self.minimumSize)
        writer.patch16(~InternetChecksum.fold(sum), at: start + 10)
    }
}

// MARK: - Lists reused across turns

extension Array {
    /// Empties the array and keeps its memory, one `removeLast()` at a time:
    /// `removeAll(keepingCapacity:)` and `removeLast(_:)` go through the
    /// generic `replaceSubrange`, which is slow in the kernel's -Osize
    /// build. For the short lists the network path reuses every turn.
    @inline(__always)
    mutating func removeAllKeepingCapacity() {
        while !isEmpty { removeLast() }
    }

    /// Removes the elements `removes` returns true for (it may act on them
    /// first), keeping the order of the rest: `removeAll(where:)` without the
    /// generic machinery that is slow in the kernel's -Osize build.
    mutating func removeInPlace(where removes: (Element) -> Bool) {
        var kept = 0
        for index in indices {
            let element = self[index]
            if removes(element) { continue }
            if kept != index { self[kept] = element }
            kept += 1
        }
        truncate(to: kept)
    }

    /// Drops the elements from `count` on, one `removeLast()` at a time (see
    /// ``removeAllKeepingCapacity()``).
    @inline(__always)
    mutating func truncate(to count: Int) {
        while self.count > count { removeLast() }
    }
}

/// A first-in, first-out list whose `removeFirst()` moves nothing: the front
/// is an index into the array, and the dead front is dropped (the live
/// elements moved down once) only when it outgrows the live part. Array's own
/// `removeFirst()` moves every other element, one at a time in the kernel's
/// -Osize build: for a full SYN queue, hundreds of moves per SYN of a flood.
struct FIFO<Element>: Sequence {
    private var storage: [Element] = []
    private var head = 0

    init() {}

    var count: Int { storage.count - head }
    var isEmpty: Bool { head == storage.count }
    var first: Element? { isEmpty ? nil : storage[head] }

    mutating func append(_ element: Element) { storage.append(element) }

    /// Removes and returns the oldest element; the list must not be empty.
    @discardableResult
    mutating func removeFirst() -> Element {
        precondition(!isEmpty)
        let element = storage[head]
        head += 1
        if head == storage.count {
            storage.removeAllKeepingCapacity()
            head = 0
        } else if head >= 16 && head * 2 >= storage.count {
            compact()
        }
        return element
    }

    /// Removes the elements `removes` returns true for, keeping the order of the rest.
    mutating func removeInPlace(where removes: (Element) -> Bool) {
        compact()
        storage.removeInPlace(where: removes)
    }

    func makeIterator() -> IndexingIterator<ArraySlice<Element>> {
        storage[head...].makeIterator()
    }

    /// Moves the live elements to the front of the array.
    private mutating func compact() {
        guard head > 0 else { return }
        var index = head
        while index < storage.count {
            storage[index - head] = storage[index]
            index += 1
        }
        storage.truncate(to: storage.count - head)
        head = 0
    }
}
