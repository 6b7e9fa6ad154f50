/*
 * Allocation.c: the C allocation functions, over the Swift kernel heap.
 *
 * The Swift runtime allocates with posix_memalign and free; C code may use
 * malloc and realloc. Swift reserves the names malloc and free for its runtime
 * and will not define them with @_cdecl, so the C names live here and forward
 * to the heap's entry points in Memory/HeapEntryPoints.swift. Each symbol is
 * defined here and nowhere else.
 */
#include <stddef.h>
#include <stdint.h>

/* Memory/HeapEntryPoints.swift. Allocation never returns NULL: out of memory panics. */
void *kernel_heap_allocate(size_t size, size_t alignment);
void kernel_heap_free(void *pointer);
void *kernel_heap_reallocate(void *pointer, size_t size);

#define KERNEL_EINVAL 22

int posix_memalign(void **result, size_t alignment, size_t size) {
    if (alignment == 0 || (alignment & (alignment - 1)) != 0 || alignment % sizeof(void *) != 0) {
        return KERNEL_EINVAL;
    }
    *result = kernel_heap_allocate(size, alignment);
    return 0;
}

/* 16-byte aligned, as the System V ABI promises for malloc. */
void *malloc(size_t size) {
    return kernel_heap_allocate(size, 16);
}

void free(void *pointer) {
    if (pointer != NULL) {
        kernel_heap_free(pointer);
    }
}

void *realloc(void *pointer, size_t size) {
    return kernel_heap_reallocate(pointer, size);
}
