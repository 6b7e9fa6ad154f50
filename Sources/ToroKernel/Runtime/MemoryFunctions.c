/*
 * MemoryFunctions.c: memset, memcpy, memmove and memcmp for the kernel.
 *
 * The Swift runtime and clang's own code generation (struct copies, zeroing)
 * call these by name, and there is no libc. `rep movsb`/`rep stosb` are fast on
 * every CPU with ERMSB, which is any a KVM host runs on, and they keep the
 * compiler from turning these loops back into calls to themselves.
 */
#include <stddef.h>
#include <stdint.h>

void *memset(void *destination, int value, size_t count) {
    void *d = destination;
    __asm__ volatile("rep stosb" : "+D"(d), "+c"(count) : "a"(value) : "memory");
    return destination;
}

void *memcpy(void *restrict destination, const void *restrict source, size_t count) {
    void *d = destination;
    __asm__ volatile("rep movsb" : "+D"(d), "+S"(source), "+c"(count) : : "memory");
    return destination;
}

void *memmove(void *destination, const void *source, size_t count) {
    uint8_t *d = destination;
    const uint8_t *s = source;
    if (d <= s || d >= s + count) {
        /* No overlap that a forward copy would trample. */
        return memcpy(destination, source, count);
    }
    /* The destination overlaps the source's tail: copy from the end down. */
    while (count > 0) {
        count -= 1;
        d[count] = s[count];
    }
    return destination;
}

int memcmp(const void *left, const void *right, size_t count) {
    const uint8_t *l = left;
    const uint8_t *r = right;
    for (size_t i = 0; i < count; i++) {
        if (l[i] != r[i]) {
            return (int)l[i] - (int)r[i];
        }
    }
    return 0;
}
