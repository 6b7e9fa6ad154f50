/*
 * Math.c: ceil, the one libm function the Swift standard library needs
 * (Dictionary and Set size their storage with it).
 *
 * Works on the bit pattern with integer instructions only: the kernel is built
 * without floating-point registers, so a double arrives and leaves as its 64
 * bits in a general register (see SoftFloat.c). The asm label gives the C
 * function the symbol name `ceil` without clashing with the builtin's type.
 */
#include <stdint.h>

#ifndef MATH_NAME
#define MATH_NAME "ceil"
#endif

uint64_t kernel_ceil(uint64_t bits) __asm__(MATH_NAME);

uint64_t kernel_ceil(uint64_t bits) {
    const uint64_t sign = 0x8000000000000000ULL;
    int exponent = (int)((bits >> 52) & 0x7FF) - 1023;
    if (exponent >= 52) {
        return bits; /* already integral, or infinite, or NaN */
    }
    if (exponent < 0) {
        /* |x| < 1: ±0 stays, other negatives become -0, positives 1. */
        if ((bits & ~sign) == 0) return bits;
        return (bits & sign) ? sign : 0x3FF0000000000000ULL;
    }
    uint64_t fraction = 0x000FFFFFFFFFFFFFULL >> exponent; /* the bits below the units place */
    if ((bits & fraction) == 0) {
        return bits; /* integral */
    }
    if (!(bits & sign)) {
        /* Round the magnitude up; a carry out of the fraction bumps the exponent, as it should. */
        bits += fraction + 1;
    }
    return bits & ~fraction; /* negatives: truncating the magnitude rounds toward +inf */
}
