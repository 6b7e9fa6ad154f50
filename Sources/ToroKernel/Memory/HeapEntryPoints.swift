// The heap's entry points for the C allocation functions in
// Runtime/Allocation.c (posix_memalign, malloc, free, realloc).

/// Allocates `size` bytes aligned to `alignment`; panics when out of memory.
@_cdecl("kernel_heap_allocate")
public func kernelHeapAllocate(_ size: Int, _ alignment: Int) -> UnsafeMutableRawPointer {
    Heap.allocate(size: size, alignment: alignment)
}

/// Frees `pointer`; panics if it is not a live allocation.
@_cdecl("kernel_heap_free")
public func kernelHeapFree(_ pointer: UnsafeMutableRawPointer) {
    Heap.free(pointer)
}

/// `realloc` semantics. Always moves (allocate, copy, free): simple, and
/// nothing in the kernel reallocates often enough for growing in place to pay.
@_cdecl("kernel_heap_reallocate")
public func kernelHeapReallocate(_ pointer: UnsafeMutableRawPointer?, _ size: Int) -> UnsafeMutableRawPointer? {
    guard let pointer else {
        return Heap.allocate(size: size, alignment: 16)
    }
    if size == 0 {
        Heap.free(pointer)
        return nil
    }
    let moved = Heap.allocate(size: size, alignment: 16)
    moved.copyMemory(from: pointer, byteCount: min(size, Heap.usableSize(of: pointer)))
    Heap.free(pointer)
    return moved
}
