import KernelSupport
import Synchronization

/// The kernel heap: everything Swift allocates (arrays, strings, class
/// instances) comes from here through `posix_memalign`/`free`.
///
/// One ``CoreHeap`` per CPU, as in Toro: a CPU allocates only from its own,
/// with no lock and no atomic operation on the way (one load to see whether
/// other CPUs gave blocks back). A heap takes 2 MiB chunks from the
/// ``PageAllocator`` as it grows, starting at its CPU's first allocation, so a
/// CPU that never allocates costs no memory. A block freed on another CPU goes
/// back to its owner through the owner's lock-free remote-free list (see
/// ``CoreHeap``). Chunks are not given back to the page allocator.
///
/// Interrupt handlers may allocate too: the kernel takes interrupts only while
/// a CPU waits in `Interrupts.enableAndHalt()`, never in the middle of a heap
/// operation. Code that runs with interrupts enabled must wrap its
/// allocations in `Interrupts.withDisabled`, since a CPU's heap has no lock.
public enum Heap {
    /// The statistics of CPU `core`'s heap (0 ..< the CPU count); all zero
    /// for a CPU that has not allocated yet. Read without stopping its owner,
    /// so exact only while that CPU is not allocating or freeing.
    public static func statistics(of core: Int) -> HeapStatistics {
        guard let heap = heap(of: core) else {
            return HeapStatistics(bytesInUse: 0, allocations: 0, capacity: 0, remoteFreesReceived: 0)
        }
        return heap.pointee.statistics
    }

    /// This CPU's heap statistics.
    public static var statistics: HeapStatistics {
        statistics(of: CPULocal.index)
    }

    /// Frees, now, the blocks of this CPU's heap that other CPUs have freed
    /// (otherwise that happens at its next allocation), so that
    /// ``statistics`` counts them as free.
    public static func reclaimRemoteFrees() {
        reclaim(on: currentHeap())
    }

    /// Bytes in use in all heaps, headers included.
    public static var bytesInUse: Int { total { $0.bytesInUse } }

    /// Allocations not yet freed, in all heaps.
    public static var allocationCount: Int { total { $0.allocations } }

    /// Bytes all heaps have taken from the page allocator.
    public static var capacity: Int { total { $0.capacity } }

    private static func total(_ field: (HeapStatistics) -> Int) -> Int {
        var sum = 0
        for core in 0..<coreCount.load(ordering: .relaxed) {
            sum += field(statistics(of: core))
        }
        return sum
    }

    // MARK: - Bring-up

    /// Makes a heap for each of `cpuCount` CPUs. On CPU 0, after
    /// ``PageAllocator/start(bootInfo:)`` and before any allocation or any
    /// other CPU runs. Costs a page and a few stores per CPU; the heaps get
    /// their memory when they first allocate.
    static func start(cpuCount: Int) {
        let count = max(1, min(cpuCount, Int(TORO_MAX_CPUS)))
        let bytes = count * slotStride
        let pages = (bytes + PageAllocator.pageSize - 1) / PageAllocator.pageSize
        guard let slots = PageAllocator.allocate(pages: pages) else {
            Kernel.panic("out of memory: no page for the heaps")
        }
        for core in 0..<count {
            UnsafeMutablePointer<CoreHeap>(bitPattern: slots + UInt(core * slotStride))!.initialize(to: CoreHeap(core: core))
        }
        heapSlots.store(slots, ordering: .releasing)
        coreCount.store(count, ordering: .releasing)
    }

    /// Heaps sit a whole number of cache lines apart: one CPU allocating
    /// never invalidates the line another CPU's heap state is in.
    private static let slotStride = (MemoryLayout<CoreHeap>.stride + 63) & ~63

    /// CPU `core`'s heap, or nil before ``start(cpuCount:)`` or for a CPU that does not exist.
    private static func heap(of core: Int) -> UnsafeMutablePointer<CoreHeap>? {
        // Relaxed loads suffice: both were stored before the other CPUs were
        // released (a release/acquire pair), and never change afterwards.
        let slots = heapSlots.load(ordering: .relaxed)
        guard slots != 0, core >= 0, core < coreCount.load(ordering: .relaxed) else { return nil }
        return UnsafeMutablePointer<CoreHeap>(bitPattern: slots + UInt(core * slotStride))
    }

    private static func currentHeap() -> UnsafeMutablePointer<CoreHeap> {
        guard let heap = heap(of: CPULocal.index) else {
            Kernel.panic("allocation before the heap was started")
        }
        return heap
    }

    // MARK: - Allocation

    /// Allocates, or panics when memory runs out: the Swift runtime has no
    /// way to recover from a failed allocation anyway.
    static func allocate(size: Int, alignment: Int) -> UnsafeMutableRawPointer {
        let heap = currentHeap()
        let pointer: UnsafeMutableRawPointer?
        do throws(CoreHeap.DamagedBlock) {
            pointer = try heap.pointee.allocate(size: size, alignment: alignment, grow: takeChunk)
        } catch {
            damaged(error)
        }
        guard let pointer else { outOfMemory(heap, size: size, alignment: alignment) }
        return pointer
    }

    /// Memory for a heap to grow by, at least `minimum` bytes: whole 2 MiB
    /// chunks, 2 MiB aligned if there is such a run, else anywhere; else just
    /// `minimum` (a small machine's last free pages).
    private static func takeChunk(_ minimum: UInt) -> (start: UInt, end: UInt)? {
        let chunk = (minimum + CoreHeap.chunkSize - 1) / CoreHeap.chunkSize * CoreHeap.chunkSize
        let chunkPages = Int(chunk / PageRun.pageSize)
        if let start = PageAllocator.allocate(pages: chunkPages, alignment: Int(CoreHeap.chunkSize))
            ?? PageAllocator.allocate(pages: chunkPages)
        {
            return (start, start + chunk)
        }
        guard let start = PageAllocator.allocate(pages: Int(minimum / PageRun.pageSize)) else { return nil }
        return (start, start + minimum)
    }

    private static func outOfMemory(_ heap: UnsafeMutablePointer<CoreHeap>, size: Int, alignment: Int) -> Never {
        let statistics = heap.pointee.statistics
        let freePages = PageAllocator.freePages
        let largestRun = PageAllocator.largestFreeRun
        Kernel.panic { message in
            message.write("out of memory: cannot allocate ")
            message.write(decimal: UInt64(bitPattern: Int64(size)))
            message.write(" bytes aligned to ")
            message.write(decimal: UInt64(bitPattern: Int64(alignment)))
            message.write(" (this CPU's heap: ")
            message.write(decimal: UInt64(statistics.bytesInUse))
            message.write(" of ")
            message.write(decimal: UInt64(statistics.capacity))
            message.write(" bytes in use; ")
            message.write(decimal: UInt64(freePages))
            message.write(" pages free, the longest run ")
            message.write(decimal: UInt64(largestRun))
            message.write(")")
        }
    }

    // MARK: - Freeing

    /// Frees `pointer`, allocated on any CPU, or panics if it is not a live allocation.
    static func free(_ pointer: UnsafeMutableRawPointer) {
        do throws(CoreHeap.FreeError) {
            try CoreHeap.free(pointer, on: currentHeap(), heapOf: heap(of:))
        } catch {
            Kernel.panic { message in
                message.write("free of ")
                message.write(hex: UInt64(UInt(bitPattern: pointer)))
                switch error {
                case .notInHeap:
                    message.write(", which is not in the heap")
                case .notInUse:
                    message.write(", which is not allocated (a double free, or its header was overwritten)")
                case .unknownOwner(let owner):
                    message.write(", whose header names cpu ")
                    message.write(decimal: UInt64(owner))
                    message.write(", which has no heap (overwritten?)")
                }
            }
        }
    }

    private static func reclaim(on heap: UnsafeMutablePointer<CoreHeap>) {
        do throws(CoreHeap.DamagedBlock) {
            try heap.pointee.reclaimRemoteFrees()
        } catch {
            damaged(error)
        }
    }

    private static func damaged(_ block: CoreHeap.DamagedBlock) -> Never {
        Kernel.panic { message in
            message.write("heap corruption: the block at ")
            message.write(hex: UInt64(block.payload))
            message.write(", freed by another cpu, was written to after its free")
        }
    }

    /// The usable size of `pointer`, an allocation from ``allocate(size:alignment:)`` on any CPU.
    static func usableSize(of pointer: UnsafeMutableRawPointer) -> Int {
        CoreHeap.usableSize(of: pointer)
    }
}

/// Address of the array of per-CPU heaps; 0 until ``Heap/start(cpuCount:)``.
private let heapSlots = Atomic<UInt>(0)
/// How many heaps there are.
private let coreCount = Atomic<Int>(0)
