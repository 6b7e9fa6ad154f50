// Byte storage for TCP's send and receive buffers, moved in blocks.
//
// In the kernel's -Osize Embedded build, Array's generic initialisers and
// `append(contentsOf:)` copy UInt8 elements one at a time, and every guest
// instruction is expensive under an emulating hypervisor; `copyMemory` lowers
// to one memmove. So the TCP buffers are rings over raw memory, and payloads
// come out of them (and out of packets) with one block copy each.

/// A growable ring of bytes: append at the back, copy out from anywhere,
/// drop from the front. Nothing is moved when the front is dropped, and
/// appends wrap around instead of compacting.
final class TCPByteRing {
    private var storage: UnsafeMutableRawPointer?
    private(set) var capacity = 0
    private var head = 0
    /// Bytes held.
    private(set) var count = 0

    init() {}

    deinit { storage?.deallocate() }

    /// Appends `bytes` (growing the ring if needed).
    func append(_ bytes: ArraySlice<UInt8>) {
        bytes.withUnsafeBytes { raw in
            if let base = raw.baseAddress { append(base, count: raw.count) }
        }
    }

    /// Appends `count` bytes from `source`.
    func append(_ source: UnsafeRawPointer, count length: Int) {
        guard length > 0 else { return }
        reserve(count + length)
        let base = storage!
        var tail = head + count
        if tail >= capacity { tail -= capacity }
        let first = min(length, capacity - tail)
        (base + tail).copyMemory(from: source, byteCount: first)
        if first < length { base.copyMemory(from: source + first, byteCount: length - first) }
        count += length
    }

    /// Copies the `length` bytes that start `offset` bytes after the front to `destination`.
    func copy(from offset: Int, count length: Int, to destination: UnsafeMutableRawPointer) {
        precondition(offset >= 0 && length >= 0 && offset + length <= count)
        guard length > 0 else { return }
        let base = storage!
        var start = head + offset
        if start >= capacity { start -= capacity }
        let first = min(length, capacity - start)
        destination.copyMemory(from: base + start, byteCount: first)
        if first < length { (destination + first).copyMemory(from: base, byteCount: length - first) }
    }

    /// The `length` bytes that start `offset` bytes after the front, as an array.
    func bytes(from offset: Int, count length: Int) -> [UInt8] {
        guard length > 0 else { return [] }
        return [UInt8](unsafeUninitializedCapacity: length) { buffer, initialized in
            copy(from: offset, count: length, to: UnsafeMutableRawPointer(buffer.baseAddress!))
            initialized = length
        }
    }

    /// Forgets the first `length` bytes.
    func removeFirst(_ length: Int) {
        precondition(length >= 0 && length <= count)
        count -= length
        head += length
        if head >= capacity { head -= capacity }
        if count == 0 { head = 0 }
    }

    /// Forgets everything and gives the memory back.
    func removeAll() {
        storage?.deallocate()
        storage = nil
        capacity = 0
        head = 0
        count = 0
    }

    /// Room for `needed` bytes: doubles (from 2 KiB) and unwraps the contents.
    private func reserve(_ needed: Int) {
        guard needed > capacity else { return }
        var newCapacity = max(capacity * 2, 2048)
        while newCapacity < needed { newCapacity *= 2 }
        let newStorage = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        if count > 0 { copy(from: 0, count: count, to: newStorage) }
        storage?.deallocate()
        storage = newStorage
        capacity = newCapacity
        head = 0
    }
}
