import Synchronization

/// Why a virtqueue operation was refused. Every case is something the guest
/// driver wrote; the device answers with DEVICE_NEEDS_RESET, never a trap.
/// Each case's description is the one line that is reported.
public enum VirtqueueError: Error, Equatable, CustomStringConvertible {
    /// The queue size is 0, not a power of two, or above the device's maximum (§2.7).
    case badQueueSize(size: UInt16, maximum: UInt16)
    /// A ring part (descriptor table, driver or device area) is not wholly inside guest RAM.
    case ringOutsideMemory(part: String, address: UInt64, length: UInt64)
    /// A ring part is not aligned as §2.7 requires (16, 2 and 4 bytes).
    case ringMisaligned(part: String, address: UInt64, alignment: UInt64)
    /// The available ring or a descriptor's `next` names a descriptor beyond the table.
    case descriptorIndexOutOfRange(index: UInt16, size: UInt16)
    /// A chain comes back to a descriptor it already used.
    case descriptorLoop(head: UInt16, index: UInt16)
    /// A chain has more descriptors than the limit (the queue size, or less).
    case chainTooLong(head: UInt16, limit: Int)
    /// A buffer's address + length is not wholly inside guest RAM (or overflows).
    case bufferOutsideMemory(descriptor: UInt16, address: UInt64, length: UInt32)
    /// A device-readable descriptor follows a device-writable one (§2.7.4.2).
    case readableAfterWritable(head: UInt16, index: UInt16)
    /// VIRTQ_DESC_F_INDIRECT on a queue that did not negotiate VIRTIO_F_INDIRECT_DESC.
    case indirectNotNegotiated(index: UInt16)
    /// The driver moved `avail.idx` forward by more than the queue size.
    case availableIndexJump(from: UInt16, to: UInt16, size: UInt16)
    /// Two ring parts (of this queue, or of this queue and another ready one) share bytes:
    /// the device's writes to one would change the other under the driver.
    case ringsOverlap(part: String, address: UInt64, other: String, otherAddress: UInt64)
    /// A device-writable buffer covers a ring part: the device would write the
    /// frame over the rings it reads its work from.
    case bufferOverlapsRing(descriptor: UInt16, address: UInt64, length: UInt32, part: String)

    public var description: String {
        switch self {
        case let .badQueueSize(size, maximum):
            return "virtqueue size \(size) is not a power of two between 1 and \(maximum)"
        case let .ringOutsideMemory(part, address, length):
            return "virtqueue \(part) at \(GuestAddress(address))+\(length) is outside guest memory"
        case let .ringMisaligned(part, address, alignment):
            return "virtqueue \(part) at \(GuestAddress(address)) is not \(alignment)-byte aligned"
        case let .descriptorIndexOutOfRange(index, size):
            return "descriptor index \(index) is outside a queue of \(size)"
        case let .descriptorLoop(head, index):
            return "descriptor chain from \(head) loops back to descriptor \(index)"
        case let .chainTooLong(head, limit):
            return "descriptor chain from \(head) is longer than \(limit) descriptors"
        case let .bufferOutsideMemory(descriptor, address, length):
            return "descriptor \(descriptor) buffer \(GuestAddress(address))+\(length) is outside guest memory"
        case let .readableAfterWritable(head, index):
            return "descriptor chain from \(head): device-readable descriptor \(index) follows a device-writable one"
        case let .indirectNotNegotiated(index):
            return "descriptor \(index) is indirect, but VIRTIO_F_INDIRECT_DESC was not negotiated"
        case let .availableIndexJump(from, to, size):
            return "available index jumped from \(from) to \(to), more than the queue size \(size)"
        case let .ringsOverlap(part, address, other, otherAddress):
            return "virtqueue \(part) at \(GuestAddress(address)) overlaps the \(other) at \(GuestAddress(otherAddress))"
        case let .bufferOverlapsRing(descriptor, address, length, part):
            return "descriptor \(descriptor) device-writable buffer \(GuestAddress(address))+\(length) overlaps the \(part)"
        }
    }
}

/// One guest buffer of a descriptor chain, already checked to lie inside guest RAM.
public struct GuestBuffer: Equatable, Sendable {
    public var address: GuestAddress
    public var length: UInt32
}

/// A chain taken from the available ring: its head (to return in the used ring),
/// then its device-readable buffers, then its device-writable ones (§2.7.4.2).
public struct DescriptorChain: Equatable, Sendable {
    public var head: UInt16
    public var readable: [GuestBuffer] = []
    public var writable: [GuestBuffer] = []

    public var readableLength: UInt64 { readable.reduce(0) { $0 + UInt64($1.length) } }
    public var writableLength: UInt64 { writable.reduce(0) { $0 + UInt64($1.length) } }

    /// Copies the device-readable bytes out of guest memory (at most `limit` bytes).
    public func gatherReadable(from memory: GuestMemory, limit: Int = Int.max) throws(GuestMemoryError) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(min(readableLength, UInt64(limit))))
        for buffer in readable where bytes.count < limit {
            let count = min(UInt64(buffer.length), UInt64(limit - bytes.count))
            bytes += try memory.read(at: buffer.address, count: count)
        }
        return bytes
    }

    /// Copies `bytes` into the device-writable buffers in order; returns the bytes written
    /// (fewer than `bytes.count` if the buffers are shorter).
    public func scatterWritable(_ bytes: UnsafeRawBufferPointer, into memory: GuestMemory) throws(GuestMemoryError) -> Int {
        var offset = 0
        for buffer in writable where offset < bytes.count {
            let count = min(Int(buffer.length), bytes.count - offset)
            try memory.write(UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + count]), at: buffer.address)
            offset += count
        }
        return offset
    }
}

/// One part of a split virtqueue in guest memory: `[start, start + length)`.
public struct RingPart: Equatable, Sendable {
    /// "descriptor table", "driver area" or "device area", with "queue N " before it
    /// where parts of several queues are compared.
    public var name: String
    public var start: UInt64
    public var length: UInt64

    public init(name: String, start: UInt64, length: UInt64) {
        self.name = name
        self.start = start
        self.length = length
    }

    /// Whether `[address, address + length)` shares a byte with this part. Both ranges
    /// lie inside guest memory (checked before), so neither end overflows.
    public func overlaps(_ address: UInt64, _ length: UInt64) -> Bool {
        length > 0 && self.length > 0 && address < start + self.length && start < address + length
    }
}

/// A split virtqueue as the device sees it (virtio 1.2 §2.7): the descriptor
/// table, the driver area (available ring) and the device area (used ring),
/// all in guest memory and all written by a driver that is not trusted.
///
/// Every index, address and length read from the guest is checked before it
/// is used; memory is reached only through ``GuestMemory``.
public struct SplitVirtqueue: Sendable {
    // §2.7.5: struct virtq_desc flags.
    public static let descriptorNext: UInt16 = 1
    public static let descriptorWrite: UInt16 = 2
    public static let descriptorIndirect: UInt16 = 4
    // §2.7.6 / §2.7.8: ring flags.
    public static let availNoInterrupt: UInt16 = 1
    public static let usedNoNotify: UInt16 = 1
    /// The largest queue size the split layout allows (§2.7: 32768).
    public static let maximumSize: UInt16 = 32768

    public let size: UInt16
    public let descriptorTable: GuestAddress
    public let availRing: GuestAddress
    public let usedRing: GuestAddress
    /// VIRTIO_F_EVENT_IDX negotiated: `used_event` decides interrupts instead of the flag (§2.7.10).
    public var eventIndex = false
    /// Longest chain accepted; at most ``size`` (without indirect descriptors no
    /// chain can be longer without revisiting a descriptor).
    public var maxChainLength: Int

    /// Where device-writable buffers must not reach: this queue's own three parts,
    /// and, once the transport has set it (at DRIVER_OK), every ready queue's. A
    /// receive buffer over a ring would have the device write a frame over the
    /// indices and descriptors it reads next.
    public var guardedParts: [RingPart]

    /// The next available-ring slot the device will read.
    public private(set) var nextAvail: UInt16 = 0
    /// The used index the device has published.
    public private(set) var usedIndex: UInt16 = 0
    private var visited: [UInt64]

    // §2.7: sizes of the three parts for a queue of `size`.
    public static func descriptorTableBytes(_ size: UInt16) -> UInt64 { 16 * UInt64(size) }
    public static func availRingBytes(_ size: UInt16) -> UInt64 { 6 + 2 * UInt64(size) }
    public static func usedRingBytes(_ size: UInt16) -> UInt64 { 6 + 8 * UInt64(size) }

    /// The three parts, by the names ``VirtqueueError`` reports.
    public var parts: [RingPart] {
        [
            RingPart(name: "descriptor table", start: descriptorTable.raw, length: SplitVirtqueue.descriptorTableBytes(size)),
            RingPart(name: "driver area", start: availRing.raw, length: SplitVirtqueue.availRingBytes(size)),
            RingPart(name: "device area", start: usedRing.raw, length: SplitVirtqueue.usedRingBytes(size)),
        ]
    }

    /// Checks the layout the driver configured (§2.7: size a power of two, each
    /// part aligned — 16, 2, 4 bytes — wholly inside RAM, and no two parts
    /// sharing a byte: the device writes the device area, which must not change
    /// the descriptors or the available ring under the driver).
    public init(
        size: UInt16, maximumSize: UInt16 = SplitVirtqueue.maximumSize,
        descriptorTable: GuestAddress, availRing: GuestAddress, usedRing: GuestAddress, memory: GuestMemory
    ) throws(VirtqueueError) {
        let limit = min(maximumSize, SplitVirtqueue.maximumSize)
        guard size > 0, size <= limit, size & (size - 1) == 0 else {
            throw .badQueueSize(size: size, maximum: limit)
        }
        let parts: [(String, GuestAddress, UInt64, UInt64)] = [
            ("descriptor table", descriptorTable, SplitVirtqueue.descriptorTableBytes(size), 16),
            ("driver area", availRing, SplitVirtqueue.availRingBytes(size), 2),
            ("device area", usedRing, SplitVirtqueue.usedRingBytes(size), 4),
        ]
        for (part, address, length, alignment) in parts {
            guard address.raw % alignment == 0 else {
                throw .ringMisaligned(part: part, address: address.raw, alignment: alignment)
            }
            guard memory.contains(address, length: length) else {
                throw .ringOutsideMemory(part: part, address: address.raw, length: length)
            }
        }
        for (i, (name, address, length, _)) in parts.enumerated() {
            let part = RingPart(name: name, start: address.raw, length: length)
            for (other, otherAddress, otherLength, _) in parts[(i + 1)...] where part.overlaps(otherAddress.raw, otherLength) {
                throw .ringsOverlap(part: other, address: otherAddress.raw, other: name, otherAddress: address.raw)
            }
        }
        self.size = size
        self.descriptorTable = descriptorTable
        self.availRing = availRing
        self.usedRing = usedRing
        self.maxChainLength = Int(size)
        self.visited = [UInt64](repeating: 0, count: (Int(size) + 63) / 64)
        self.guardedParts = []
        self.guardedParts = self.parts
    }

    // The rings were checked to lie in RAM when the queue was made, so these loads
    // cannot fail; a failure would still only become an error, never a trap.
    private func load16(_ memory: GuestMemory, _ address: GuestAddress) -> UInt16 {
        UInt16(littleEndian: (try? memory.load(UInt16.self, at: address)) ?? 0)
    }

    /// `avail.idx` as the driver last published it (§2.7.6).
    public func availIndex(_ memory: GuestMemory) -> UInt16 { load16(memory, availRing.adding(2)) }

    /// Whether the driver has published chains the device has not taken.
    public func hasAvailable(_ memory: GuestMemory) throws(VirtqueueError) -> Bool {
        try pendingCount(memory) > 0
    }

    private func pendingCount(_ memory: GuestMemory) throws(VirtqueueError) -> UInt16 {
        let published = availIndex(memory)
        let pending = published &- nextAvail
        // §2.7.6: the driver can have at most `size` chains outstanding.
        guard pending <= size else { throw .availableIndexJump(from: nextAvail, to: published, size: size) }
        return pending
    }

    /// Takes the next chain from the available ring, or nil if there is none (§2.7.13.x
    /// device side; §2.7.5 descriptor rules).
    public mutating func popAvailable(_ memory: GuestMemory) throws(VirtqueueError) -> DescriptorChain? {
        guard try pendingCount(memory) > 0 else { return nil }
        // Read the ring entry only after seeing the index that published it.
        atomicMemoryFence(ordering: .acquiring)
        let slot = UInt64(nextAvail % size)
        let head = load16(memory, availRing.adding(4 + 2 * slot))
        let chain = try walkChain(head: head, memory: memory)
        nextAvail &+= 1
        return chain
    }

    /// Gives back the chain last taken by ``popAvailable(_:)``, unused.
    public mutating func undoPop() { nextAvail &-= 1 }

    private mutating func walkChain(head: UInt16, memory: GuestMemory) throws(VirtqueueError) -> DescriptorChain {
        guard head < size else { throw .descriptorIndexOutOfRange(index: head, size: size) }
        for i in visited.indices { visited[i] = 0 }
        var chain = DescriptorChain(head: head)
        var index = head
        var count = 0
        while true {
            let word = Int(index) / 64
            let bit = UInt64(1) << UInt64(index % 64)
            guard visited[word] & bit == 0 else { throw .descriptorLoop(head: head, index: index) }
            visited[word] |= bit
            count += 1
            let limit = min(maxChainLength, Int(size))
            guard count <= limit else { throw .chainTooLong(head: head, limit: limit) }

            // §2.7.5: struct virtq_desc { le64 addr; le32 len; le16 flags; le16 next; }
            let entry = descriptorTable.adding(16 * UInt64(index))
            let address = UInt64(littleEndian: (try? memory.load(UInt64.self, at: entry)) ?? 0)
            let length = UInt32(littleEndian: (try? memory.load(UInt32.self, at: entry.adding(8))) ?? 0)
            let flags = load16(memory, entry.adding(12))
            let next = load16(memory, entry.adding(14))

            guard flags & SplitVirtqueue.descriptorIndirect == 0 else { throw .indirectNotNegotiated(index: index) }
            guard memory.contains(GuestAddress(address), length: UInt64(length)) else {
                throw .bufferOutsideMemory(descriptor: index, address: address, length: length)
            }
            let buffer = GuestBuffer(address: GuestAddress(address), length: length)
            if flags & SplitVirtqueue.descriptorWrite != 0 {
                for part in guardedParts where part.overlaps(address, UInt64(length)) {
                    throw .bufferOverlapsRing(descriptor: index, address: address, length: length, part: part.name)
                }
                chain.writable.append(buffer)
            } else {
                // §2.7.4.2: device-readable descriptors come before all device-writable ones.
                guard chain.writable.isEmpty else { throw .readableAfterWritable(head: head, index: index) }
                chain.readable.append(buffer)
            }
            guard flags & SplitVirtqueue.descriptorNext != 0 else { return chain }
            guard next < size else { throw .descriptorIndexOutOfRange(index: next, size: size) }
            index = next
        }
    }

    /// Returns a chain to the driver: writes `used.ring[idx % size] = {head, length}`,
    /// then publishes the new `used.idx` (§2.7.8). `length` is the bytes written into
    /// the chain's device-writable buffers.
    public mutating func pushUsed(head: UInt16, length: UInt32, memory: GuestMemory) throws(VirtqueueError) {
        guard head < size else { throw .descriptorIndexOutOfRange(index: head, size: size) }
        let element = usedRing.adding(4 + 8 * UInt64(usedIndex % size))
        try? memory.store(UInt32(head).littleEndian, at: element)
        try? memory.store(length.littleEndian, at: element.adding(4))
        // The element must be visible before the index that publishes it.
        atomicMemoryFence(ordering: .releasing)
        usedIndex &+= 1
        try? memory.store(usedIndex.littleEndian, at: usedRing.adding(2))
    }

    /// Whether the driver wants an interrupt for the used buffers published since
    /// `previousUsedIndex` (§2.7.7: the VIRTQ_AVAIL_F_NO_INTERRUPT flag, or with
    /// VIRTIO_F_EVENT_IDX the `used_event` field after the available ring).
    public func needsInterrupt(since previousUsedIndex: UInt16, memory: GuestMemory) -> Bool {
        guard usedIndex != previousUsedIndex else { return false }
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        if eventIndex {
            let usedEvent = load16(memory, availRing.adding(4 + 2 * UInt64(size)))
            // vring_need_event: the driver asked to hear when used.idx passes used_event.
            return usedIndex &- usedEvent &- 1 < usedIndex &- previousUsedIndex
        }
        return load16(memory, availRing) & SplitVirtqueue.availNoInterrupt == 0
    }

    /// Asks the driver not to notify (VIRTQ_USED_F_NO_NOTIFY, §2.7.10) while the device
    /// is already processing the queue; a hint only, the driver may notify anyway.
    /// Ends with a full fence, so a read of `avail.idx` after it cannot be done before
    /// the store (the driver does the mirror image: publish, fence, read the flag).
    public func suppressNotifications(_ suppress: Bool, memory: GuestMemory) {
        if eventIndex {
            // §2.7.10: with VIRTIO_F_EVENT_IDX the device publishes avail_event instead:
            // "notify when you publish entry nextAvail". To suppress it leaves the old
            // value, which the driver has already passed.
            if !suppress { try? memory.store(nextAvail.littleEndian, at: usedRing.adding(4 + 8 * UInt64(size))) }
        } else {
            try? memory.store((suppress ? SplitVirtqueue.usedNoNotify : 0).littleEndian, at: usedRing)
        }
        atomicMemoryFence(ordering: .sequentiallyConsistent)
    }
}
