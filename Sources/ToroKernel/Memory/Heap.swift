import KernelSupport

/// The kernel heap: everything Swift allocates (arrays, strings, class
/// instances) comes from here through `posix_memalign`/`free`.
///
/// One ``FreeListAllocator`` over the largest usable RAM region of the memory
/// map, behind a spin lock so that every CPU can allocate.
public enum Heap {
    /// Bytes currently allocated, block headers included.
    public static var bytesInUse: Int {
        heap.withLock { Int($0.bytesInUse) }
    }

    /// Allocations not yet freed.
    public static var allocationCount: Int {
        heap.withLock { $0.allocationCount }
    }

    /// Bytes the heap manages in all.
    public static var capacity: Int {
        heap.withLock { Int($0.capacity) }
    }

    /// Gives the heap the largest usable region of the memory map, minus
    /// anything the kernel image occupies.
    static func start(bootInfo: BootInfo) {
        var best: (start: UInt, end: UInt) = (0, 0)
        for index in 0..<bootInfo.memoryRegionCount {
            let region = bootInfo.memoryRegion(index)
            guard region.type == TORO_MEMORY_USABLE else { continue }
            // The VMM reports the image as TORO_MEMORY_KERNEL, but .bss is not
            // in the file; never trust a region to start past it, just check.
            let start = max(UInt(region.base), kernel_image_end())
            let end = UInt(region.base + region.length)
            if end > start && end - start > best.end - best.start {
                best = (start, end)
            }
        }
        heap.withLock { $0 = FreeListAllocator(start: best.start, end: best.end) }
    }

    /// Allocates, or panics when the heap cannot satisfy the request: the
    /// Swift runtime has no way to recover from a failed allocation anyway.
    static func allocate(size: Int, alignment: Int) -> UnsafeMutableRawPointer {
        if let pointer = heap.withLock({ $0.allocate(size: size, alignment: alignment) }) {
            return pointer
        }
        let (inUse, capacity) = heap.withLock { ($0.bytesInUse, $0.capacity) }
        Kernel.panic { message in
            message.write("out of memory: cannot allocate ")
            message.write(decimal: UInt64(size))
            message.write(" bytes aligned to ")
            message.write(decimal: UInt64(alignment))
            message.write(" (")
            message.write(decimal: UInt64(inUse))
            message.write(" of ")
            message.write(decimal: UInt64(capacity))
            message.write(" heap bytes in use)")
        }
    }

    /// Frees `pointer`, or panics if it is not a live allocation.
    static func free(_ pointer: UnsafeMutableRawPointer) {
        do {
            try heap.withLock { allocator throws(FreeListAllocator.FreeError) in try allocator.free(pointer) }
        } catch {
            Kernel.panic { message in
                message.write("free of ")
                message.write(hex: UInt64(UInt(bitPattern: pointer)))
                message.write(error == .notInHeap ? ", which is not in the heap" : ", which is not allocated")
            }
        }
    }

    /// The usable size of `pointer`, an allocation from ``allocate(size:alignment:)``.
    static func usableSize(of pointer: UnsafeMutableRawPointer) -> Int {
        heap.withLock { $0.usableSize(of: pointer) }
    }
}

/// The heap's allocator; empty (every allocation fails) until ``Heap/start(bootInfo:)``.
let heap = SpinLock(FreeListAllocator())
