/// A first-fit allocator over one contiguous range of memory.
///
/// Every block, free or in use, starts with a 16-byte header (``BlockHeader``):
/// its size (header included, a multiple of 16) and a second word that is the
/// address of the next free block for a free block, or the in-use tag naming
/// ``owner`` for a block in use. Free blocks form a list sorted by address, so
/// that freeing can merge a block with both neighbours in one pass and the heap
/// does not fragment into slivers.
///
/// The memory need not be one range: ``add(start:end:)`` hands the allocator
/// more (each CPU's heap grows by 2 MiB chunks), and ranges that touch merge.
///
/// Plain Swift over raw addresses with no kernel dependencies: it builds for the
/// host too, where it can be tested against an ordinary buffer.
struct FreeListAllocator {
    /// Block sizes and payload addresses are multiples of this.
    static let granule: UInt = 16
    static let headerSize: UInt = BlockHeader.size
    /// The smallest block worth keeping: a header and one granule of payload.
    static let minimumBlock: UInt = 32

    /// Why ``free(_:)`` refused a pointer.
    enum FreeError: Error {
        /// The pointer is not inside the heap, or not aligned like a payload.
        case notInHeap
        /// The pointer's header does not describe a block in use: freed twice,
        /// never allocated, or the header was overwritten.
        case notInUse
    }

    /// The lowest and one past the highest address managed: every block lies
    /// in between (with gaps, when ranges were added that do not touch).
    private(set) var start: UInt = 0
    private(set) var end: UInt = 0
    /// Address of the lowest free block, 0 if none.
    private var firstFree: UInt = 0
    /// Bytes in blocks in use, headers included.
    private(set) var bytesInUse: UInt = 0
    /// Blocks in use.
    private(set) var allocationCount = 0
    /// Bytes the allocator manages, in all its ranges.
    private(set) var capacity: UInt = 0
    /// The core whose heap this is, written into every block it hands out.
    let owner: Int

    /// Quick lists (off until ``enableQuickLists()``): freed blocks of up to
    /// ``quickLimit`` bytes wait, unmerged, on a LIFO list per size, and an
    /// allocation of exactly that size takes one back without walking the
    /// address-ordered list. A network stack frees and allocates the same few
    /// sizes (frames, segments) thousands of times a second, and the walk was
    /// a fifth of its guest time. The table lives in the allocator's own memory.
    private var quickHeads: UnsafeMutablePointer<UInt>? = nil
    /// Bytes waiting on the quick lists; at most ``quickCapacity``.
    private(set) var quickBytes: UInt = 0
    /// The largest block (header included) kept on a quick list.
    static let quickLimit: UInt = 4096
    /// The most bytes the quick lists hold before freed blocks go back to the list.
    static let quickCapacity: UInt = 256 << 10
    static let quickClassCount = Int(quickLimit / granule) + 1

    /// An allocator with no memory (every allocation fails until ``add(start:end:)``).
    init(owner: Int = 0) {
        self.owner = owner
    }

    /// An allocator owning `[start, end)`, which it takes to be free.
    init(start: UInt, end: UInt, owner: Int = 0) {
        self.owner = owner
        add(start: start, end: end)
    }

    /// Adds `[start, end)`, which must be free and not overlap memory the
    /// allocator has; merges it with a free block it touches. Too small a
    /// range (under ``minimumBlock`` once aligned) is ignored.
    mutating func add(start rangeStart: UInt, end rangeEnd: UInt) {
        let first = Self.alignUp(rangeStart, Self.granule)
        let last = rangeEnd & ~(Self.granule - 1)
        guard last > first, last - first >= Self.minimumBlock else { return }
        if capacity == 0 {
            start = first
            end = last
        } else {
            start = min(start, first)
            end = max(end, last)
        }
        capacity += last - first
        insertFree(first, size: last - first)
    }

    // MARK: - Allocation

    /// Returns `size` bytes aligned to `alignment` (a power of two), or nil when
    /// no free block can hold them.
    mutating func allocate(size: Int, alignment: Int) -> UnsafeMutableRawPointer? {
        guard size >= 0, UInt(size) <= capacity,
            alignment > 0, alignment & (alignment - 1) == 0, UInt(alignment) <= capacity
        else {
            return nil
        }
        let align = max(UInt(alignment), Self.granule)
        let need = Self.headerSize + Self.alignUp(max(UInt(size), 1), Self.granule)
        if let heads = quickHeads, align == Self.granule, need <= Self.quickLimit {
            let block = heads[Int(need / Self.granule)]
            if block != 0 {
                heads[Int(need / Self.granule)] = Self.link(block)
                Self.setLink(block, BlockHeader.inUse(owner: owner))
                quickBytes -= need
                bytesInUse += need
                allocationCount += 1
                return UnsafeMutableRawPointer(bitPattern: block + Self.headerSize)
            }
        }
        if let pointer = firstFit(need: need, align: align) { return pointer }
        guard quickBytes > 0 else { return nil }
        // Blocks parked on the quick lists may be what is missing: merge them back and look again.
        flushQuickLists()
        return firstFit(need: need, align: align)
    }

    /// Turns the quick lists on; false if there is no memory for their table
    /// (which is then not counted in ``bytesInUse`` or ``allocationCount``).
    @discardableResult
    mutating func enableQuickLists() -> Bool {
        guard quickHeads == nil,
            let table = allocate(size: Self.quickClassCount * MemoryLayout<UInt>.stride, alignment: 8)
        else { return quickHeads != nil }
        // The table is the allocator's own: not counted as an allocation.
        bytesInUse -= Self.size(UInt(bitPattern: table) - Self.headerSize)
        allocationCount -= 1
        let heads = table.bindMemory(to: UInt.self, capacity: Self.quickClassCount)
        heads.initialize(repeating: 0, count: Self.quickClassCount)
        quickHeads = heads
        return true
    }

    /// Returns every block on the quick lists to the address-ordered list.
    mutating func flushQuickLists() {
        guard let heads = quickHeads else { return }
        for index in 0..<Self.quickClassCount {
            var block = heads[index]
            heads[index] = 0
            while block != 0 {
                let next = Self.link(block)
                insertFree(block, size: Self.size(block))
                block = next
            }
        }
        quickBytes = 0
    }

    /// The first free block that can hold `need` bytes at alignment `align`.
    private mutating func firstFit(need: UInt, align: UInt) -> UnsafeMutableRawPointer? {
        var previous: UInt = 0
        var block = firstFree
        while block != 0 {
            let blockEnd = block + Self.size(block)
            // Where the payload lands in this block. A gap in front of it must
            // be either nothing or big enough to stay behind as a free block.
            var payload = Self.alignUp(block + Self.headerSize, align)
            if payload - Self.headerSize != block && payload - Self.headerSize - block < Self.minimumBlock {
                payload = Self.alignUp(block + Self.headerSize + Self.minimumBlock, align)
            }
            let used = payload - Self.headerSize
            if used < blockEnd && blockEnd - used >= need {
                take(block, previous: previous, from: used, need: need, blockEnd: blockEnd)
                return UnsafeMutableRawPointer(bitPattern: payload)
            }
            previous = block
            block = Self.link(block)
        }
        return nil
    }

    /// Carves `[used, used + need)` out of free block `block`, leaving what is
    /// in front and behind it (if big enough to be a block) on the free list.
    private mutating func take(_ block: UInt, previous: UInt, from used: UInt, need: UInt, blockEnd: UInt) {
        var size = need
        var next = Self.link(block)
        let tail = blockEnd - (used + need)
        if tail >= Self.minimumBlock {
            let tailBlock = used + need
            Self.setSize(tailBlock, tail)
            Self.setLink(tailBlock, next)
            next = tailBlock
        } else {
            size += tail  // too small to stand alone: the allocation keeps it
        }
        if used == block {
            if previous == 0 { firstFree = next } else { Self.setLink(previous, next) }
        } else {
            Self.setSize(block, used - block)  // the gap in front stays free
            Self.setLink(block, next)
        }
        Self.setSize(used, size)
        Self.setLink(used, BlockHeader.inUse(owner: owner))
        bytesInUse += size
        allocationCount += 1
    }

    // MARK: - Freeing

    /// Returns the block holding `pointer` to the free list, merged with any
    /// free neighbour.
    mutating func free(_ pointer: UnsafeMutableRawPointer) throws(FreeError) {
        let payload = UInt(bitPattern: pointer)
        guard payload % Self.granule == 0, payload >= start + Self.headerSize, payload < end else {
            throw .notInHeap
        }
        let block = payload - Self.headerSize
        let size = Self.size(block)
        guard Self.link(block) == BlockHeader.inUse(owner: owner), size >= Self.minimumBlock, size <= end - block
        else {
            throw .notInUse
        }
        bytesInUse -= size
        allocationCount -= 1
        if let heads = quickHeads, size <= Self.quickLimit, quickBytes + size <= Self.quickCapacity {
            // Overwrites the tag, so freeing the same pointer again is caught.
            Self.setLink(block, heads[Int(size / Self.granule)])
            heads[Int(size / Self.granule)] = block
            quickBytes += size
            return
        }
        insertFree(block, size: size)
    }

    /// Puts `[block, block + size)` on the free list, merged with the free
    /// blocks right below and above it.
    private mutating func insertFree(_ block: UInt, size blockSize: UInt) {
        var size = blockSize
        // Find the free neighbours: the last free block below and the first above.
        var previous: UInt = 0
        var next = firstFree
        while next != 0 && next < block {
            previous = next
            next = Self.link(next)
        }
        if next != 0 && block + size == next {
            size += Self.size(next)
            next = Self.link(next)
        }
        // Overwrites the tag, so freeing the same pointer again is caught.
        Self.setSize(block, size)
        Self.setLink(block, next)
        if previous == 0 {
            firstFree = block
        } else if previous + Self.size(previous) == block {
            Self.setSize(previous, Self.size(previous) + size)
            Self.setLink(previous, next)
        } else {
            Self.setLink(previous, block)
        }
    }

    /// The bytes usable at `pointer`, an allocation from this allocator.
    func usableSize(of pointer: UnsafeMutableRawPointer) -> Int {
        Int(Self.size(UInt(bitPattern: pointer) - Self.headerSize) - Self.headerSize)
    }

    // MARK: - Headers

    private static func alignUp(_ value: UInt, _ alignment: UInt) -> UInt {
        (value + alignment - 1) & ~(alignment - 1)
    }

    private static func word(_ address: UInt) -> UnsafeMutablePointer<UInt> {
        UnsafeMutablePointer<UInt>(bitPattern: address)!
    }

    private static func size(_ block: UInt) -> UInt { word(block).pointee }
    private static func setSize(_ block: UInt, _ size: UInt) { word(block).pointee = size }
    private static func link(_ block: UInt) -> UInt { word(block + 8).pointee }
    private static func setLink(_ block: UInt, _ link: UInt) { word(block + 8).pointee = link }
}
