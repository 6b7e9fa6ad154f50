import Synchronization

/// One core's heap, as in Toro: each core allocates from memory of its own,
/// without a lock.
///
/// A ``FreeListAllocator`` that only its core touches, fed 2 MiB chunks by a
/// `grow` function (the kernel's page allocator, which has a lock but is off
/// the hot path), and a ``RemoteFreeList`` through which other cores give back
/// the blocks of this heap they free:
///
/// - a block's header names its owning core (``BlockHeader``), so a free on
///   any core knows where the block belongs without a lookup;
/// - a free on the owning core goes straight to its free list;
/// - a free on another core claims the block with one compare-exchange on its
///   header (in-use tag → remote-free tag; a second free of the same block
///   fails right there, on whichever core it happens) and pushes it on the
///   owner's remote-free list;
/// - the owner takes that whole list back at its next allocation, before it
///   looks for a free block.
///
/// Plain Swift over raw memory with no kernel imports: the host tests run it
/// with threads standing in for cores.
struct CoreHeap: ~Copyable {
    /// Why a free was refused.
    enum FreeError: Error, Equatable {
        /// Not an address the heap could have handed out (misaligned, in page 0).
        case notInHeap
        /// No block in use there: freed already, never allocated, or its header
        /// was overwritten.
        case notInUse
        /// The header names a core that has no heap.
        case unknownOwner(Int)
    }

    /// A block freed by another core whose header was overwritten before its
    /// owner took it back: something wrote to it after freeing it.
    struct DamagedBlock: Error, Equatable {
        /// The block's payload address.
        let payload: UInt
    }

    /// Heaps grow by chunks of this many bytes, aligned to as many, where
    /// memory allows, so that a chunk is exactly one large page of the
    /// identity map; a small machine's last memory may come in smaller pieces.
    static let chunkSize: UInt = 2 << 20

    private(set) var allocator: FreeListAllocator
    /// Blocks of this heap freed by other cores.
    let remoteFrees = RemoteFreeList()
    /// Blocks taken back from ``remoteFrees`` so far.
    private(set) var remoteFreesReceived = 0

    /// The core whose heap this is.
    var core: Int { allocator.owner }

    /// An empty heap for core `core`: it takes its first chunk at its first allocation.
    init(core: Int) {
        allocator = FreeListAllocator(owner: core)
    }

    // MARK: - Allocation

    /// `size` bytes aligned to `alignment`, or nil when the heap is full and
    /// `grow` has no more memory. On the owning core only. Takes back what
    /// other cores freed first, and throws if one of those blocks was damaged.
    ///
    /// `grow(minimum)` returns `[start, end)`, at least `minimum` more bytes
    /// (whole pages) for the heap to keep, or nil.
    mutating func allocate(
        size: Int, alignment: Int, grow: (UInt) -> (start: UInt, end: UInt)?
    ) throws(DamagedBlock) -> UnsafeMutableRawPointer? {
        if !remoteFrees.isEmpty {
            try reclaimRemoteFrees()
        }
        if let pointer = allocator.allocate(size: size, alignment: alignment) {
            return pointer
        }
        guard let minimum = Self.growth(size: size, alignment: alignment), let range = grow(minimum) else {
            return nil
        }
        allocator.add(start: range.start, end: range.end)
        let pointer = allocator.allocate(size: size, alignment: alignment)
        allocator.enableQuickLists()  // once there is room for its table
        return pointer
    }

    /// The fewest bytes (whole pages) to grow by so that `size` bytes aligned
    /// to `alignment` surely fit in the new memory alone. Nil for absurd requests.
    static func growth(size: Int, alignment: Int) -> UInt? {
        // Nothing near 2^46 bytes can exist in a guest of at most 64 GiB;
        // refusing early also keeps the sums below from overflowing.
        let limit = 1 << 46
        guard size >= 0, size < limit, alignment > 0, alignment < limit else { return nil }
        // Header, the largest gap alignment can leave in front, and room for
        // that gap to stand alone as a free block.
        let worst = UInt(size) + UInt(alignment) + BlockHeader.size + FreeListAllocator.minimumBlock
        return PageRun.alignUp(worst, PageRun.pageSize)
    }

    /// Frees every block other cores have pushed on ``remoteFrees``. On the
    /// owning core only. Stops at a block whose header was damaged meanwhile.
    mutating func reclaimRemoteFrees() throws(DamagedBlock) {
        var payload = remoteFrees.takeAll()
        while payload != 0 {
            let next = RemoteFreeList.next(after: payload)
            // Back to in-use for the allocator's own check, which then frees it.
            let tag = BlockHeader.tagWord(ofPayload: payload)
            guard tag.pointee.load(ordering: .relaxed) == BlockHeader.remoteFree(owner: core) else {
                throw DamagedBlock(payload: payload)
            }
            tag.pointee.store(BlockHeader.inUse(owner: core), ordering: .relaxed)
            do throws(FreeListAllocator.FreeError) {
                try allocator.free(UnsafeMutableRawPointer(bitPattern: payload)!)
            } catch {
                throw DamagedBlock(payload: payload)
            }
            remoteFreesReceived += 1
            payload = next
        }
    }

    // MARK: - Freeing

    /// Frees `pointer`, a block from any core's heap, on the core whose heap
    /// `current` is; `heap(of:)` finds another core's heap.
    static func free(
        _ pointer: UnsafeMutableRawPointer,
        on current: UnsafeMutablePointer<CoreHeap>,
        heapOf heap: (Int) -> UnsafeMutablePointer<CoreHeap>?
    ) throws(FreeError) {
        let owner = try owner(of: pointer)
        if owner == current.pointee.core {
            do throws(FreeListAllocator.FreeError) {
                try current.pointee.allocator.free(pointer)
            } catch {
                throw error == .notInHeap ? .notInHeap : .notInUse
            }
            return
        }
        guard let home = heap(owner) else { throw .unknownOwner(owner) }
        let payload = UInt(bitPattern: pointer)
        // Claim the block first: of two frees of the same block, on any cores,
        // exactly one gets past this exchange.
        let (claimed, _) = BlockHeader.tagWord(ofPayload: payload).pointee.compareExchange(
            expected: BlockHeader.inUse(owner: owner), desired: BlockHeader.remoteFree(owner: owner),
            ordering: .relaxed)
        guard claimed else { throw .notInUse }
        home.pointee.remoteFrees.push(payload)
    }

    /// The core owning the block at `pointer`, read from its header.
    static func owner(of pointer: UnsafeMutableRawPointer) throws(FreeError) -> Int {
        let payload = UInt(bitPattern: pointer)
        // The header is read before anything else checks the pointer: make
        // sure it is at least not in page 0 (unmapped) and payload-aligned.
        guard payload % FreeListAllocator.granule == 0, payload >= PageRun.pageSize + BlockHeader.size else {
            throw .notInHeap
        }
        guard let owner = BlockHeader.owner(ofInUse: BlockHeader.tagWord(ofPayload: payload).pointee.load(ordering: .relaxed))
        else {
            throw .notInUse
        }
        return owner
    }

    /// Bytes usable at `pointer`, a block in use from any core's heap.
    static func usableSize(of pointer: UnsafeMutableRawPointer) -> Int {
        Int(BlockHeader.sizeWord(ofPayload: UInt(bitPattern: pointer)).pointee - BlockHeader.size)
    }

    // MARK: - Statistics

    var statistics: HeapStatistics {
        HeapStatistics(
            bytesInUse: Int(allocator.bytesInUse), allocations: allocator.allocationCount,
            capacity: Int(allocator.capacity), remoteFreesReceived: remoteFreesReceived)
    }
}

/// What one core's heap holds.
///
/// Blocks freed by another core stay counted as in use until their owner
/// takes them back (at its next allocation, or ``Heap/reclaimRemoteFrees()``).
public struct HeapStatistics: Equatable {
    /// Bytes in blocks in use, headers included.
    public var bytesInUse: Int
    /// Blocks in use.
    public var allocations: Int
    /// Bytes the heap has taken from the page allocator.
    public var capacity: Int
    /// Blocks other cores freed and this core took back, since boot.
    public var remoteFreesReceived: Int
}
