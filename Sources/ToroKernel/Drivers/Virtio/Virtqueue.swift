import KernelSupport

/// The driver's side of a split virtqueue (virtio 1.2 §2.7), in one page of
/// identity-mapped memory: the descriptor table (16 bytes an entry) at 0, the
/// available ring at 16·size, the used ring at 16·size + 512 (4-byte aligned).
/// Each descriptor owns one page-sized buffer for the queue's life.
///
/// Memory the device reads or writes is touched only through volatile
/// accesses, ordered by a full fence where the specification requires it.
struct Virtqueue {
    static let maxSize = 16
    /// §2.7.5: the device writes into the buffer.
    static let writeFlag: UInt16 = 2
    /// §2.7.6: VIRTQ_AVAIL_F_NO_INTERRUPT, the driver's flag in the available ring.
    static let availNoInterrupt: UInt16 = 1
    /// §2.7.8: VIRTQ_USED_F_NO_NOTIFY, the device's flag in the used ring.
    static let usedNoNotify: UInt16 = 1

    let size: Int
    let descriptors: UInt
    var available: UInt { descriptors + UInt(16 * size) }
    var used: UInt { descriptors + UInt(16 * size) + 512 }
    /// One page per descriptor.
    let buffers: UInt

    /// The available ring's idx as published to the device (free-running, mod 2^16).
    private var availableIndex: UInt16 = 0
    /// The next free entry of the available ring: entries from ``availableIndex`` up
    /// to here are placed but not yet published.
    private var placedIndex: UInt16 = 0
    /// The first used-ring entry not yet taken (free-running).
    private var usedIndex: UInt16 = 0

    /// A queue of `size` (a power of two, at most ``maxSize``) entries, or nil without memory.
    init?(size: Int) {
        guard let ring = PageAllocator.allocate(pages: 1),
            let buffers = PageAllocator.allocate(pages: size)
        else { return nil }
        self.size = size
        self.descriptors = ring
        self.buffers = buffers
        // The device starts from zeroed rings (flags 0, idx 0).
        for offset in stride(from: UInt(0), to: UInt(PageAllocator.pageSize), by: 4) {
            kernel_mmio_write32(ring + offset, 0)
        }
        for id in 0..<size {
            kernel_mmio_write32(descriptor(id), UInt32(truncatingIfNeeded: buffer(id)))
            kernel_mmio_write32(descriptor(id) + 4, UInt32(truncatingIfNeeded: UInt64(buffer(id)) >> 32))
        }
    }

    func buffer(_ id: Int) -> UInt { buffers + UInt(id) * UInt(PageAllocator.pageSize) }
    private func descriptor(_ id: Int) -> UInt { descriptors + UInt(16 * id) }

    /// Offers descriptor `id` (its buffer, `length` bytes, device-writable or
    /// not) to the device: ``place(_:length:deviceWrites:)`` and ``publish()``.
    /// The caller notifies the device afterwards, if ``deviceWantsNotification``.
    mutating func post(_ id: Int, length: Int, deviceWrites: Bool) {
        place(id, length: length, deviceWrites: deviceWrites)
        publish()
    }

    /// Fills descriptor `id` (its buffer, `length` bytes, device-writable or
    /// not) and puts it in the next available-ring entry, which the device
    /// does not see until ``publish()``: a batch costs one publication.
    mutating func place(_ id: Int, length: Int, deviceWrites: Bool) {
        kernel_mmio_write32(descriptor(id) + 8, UInt32(length))
        kernel_mmio_write16(descriptor(id) + 12, deviceWrites ? Self.writeFlag : 0)
        kernel_mmio_write16(descriptor(id) + 14, 0)
        let slot = Int(placedIndex) & (size - 1)
        kernel_mmio_write16(available + 4 + UInt(2 * slot), UInt16(id))
        placedIndex &+= 1
    }

    /// Publishes every placed entry with one write of the available ring's
    /// idx. Returns false if there was none.
    @discardableResult
    mutating func publish() -> Bool {
        guard placedIndex != availableIndex else { return false }
        // §2.7.13 (Supplying Buffers to The Device): the driver "performs a
        // suitable memory barrier to ensure the device sees the updated
        // descriptor table and available ring before the next step", which
        // is the write of the available ring's idx.
        kernel_memory_fence()
        availableIndex = placedIndex
        kernel_mmio_write16(available + 2, availableIndex)
        // §2.7.13.4: the idx must be visible before the notification, and
        // before the read of the used ring's flags that decides whether to
        // notify (a full fence: a store then a load, §2.7.10).
        kernel_memory_fence()
        return true
    }

    /// §2.7.10 driver side: whether the device asks to be notified of the
    /// entries just published (the used ring's flags lack
    /// VIRTQ_USED_F_NO_NOTIFY). Read after ``publish()``: its fence orders
    /// the idx before this load, and the device writes the flag, fences,
    /// then reads idx, so when it stops suppressing notifications one of the
    /// two sides sees the other and no buffer goes unnoticed.
    var deviceWantsNotification: Bool {
        kernel_mmio_read16(used) & Self.usedNoNotify == 0
    }

    /// §2.7.7: asks the device not to interrupt when it returns buffers of
    /// this queue (the driver looks at the used ring itself).
    func suppressInterrupts() {
        setInterrupts(false)
    }

    /// §2.7.7: whether the device interrupts when it returns buffers of this
    /// queue. The fence orders the flag before the caller's next look at the
    /// used ring (``hasUsed``): the device pushes a used entry, fences, then
    /// reads the flag, so a buffer returned while interrupts were off is
    /// either seen by that look or interrupts.
    func setInterrupts(_ enabled: Bool) {
        kernel_mmio_write16(available, enabled ? 0 : Self.availNoInterrupt)
        kernel_memory_fence()
    }

    /// Whether the device has returned buffers not taken yet.
    var hasUsed: Bool {
        kernel_mmio_read16(used + 2) != usedIndex
    }

    /// The next buffer the device has finished with: its descriptor and the
    /// bytes it wrote; nil when there is none.
    mutating func takeUsed() -> (id: Int, length: Int)? {
        let deviceIndex = kernel_mmio_read16(used + 2)
        guard deviceIndex != usedIndex else { return nil }
        // Read the entry only after seeing the idx that covers it (§2.7.14).
        kernel_memory_fence()
        let entry = used + 4 + UInt(8 * (Int(usedIndex) & (size - 1)))
        let id = Int(kernel_mmio_read32(entry))
        let length = Int(kernel_mmio_read32(entry + 4))
        usedIndex &+= 1
        return (id, length)
    }
}
