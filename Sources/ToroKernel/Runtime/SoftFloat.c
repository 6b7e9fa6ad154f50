/*
 * SoftFloat.c: IEEE 754 double arithmetic in integer instructions.
 *
 * The kernel and its applications are built without SSE or x87 code (see
 * scripts/build-image.sh for why), so LLVM turns every Double operation into a
 * call to one of these compiler-runtime functions, passing each double as its
 * 64-bit pattern in a general register. They are written here, from the IEEE
 * 754 rules, because the toolchain has no compiler-rt built for this ABI.
 * Results are correctly rounded (round to nearest, ties to even), with
 * subnormals, infinities and NaNs; no floating-point exception flags.
 *
 * Only double precision, and only what Swift code has been seen to need
 * (the standard library sizes Dictionary and Set storage with Double).
 * A missing routine shows up as an undefined symbol at link time.
 */
#include <stdbool.h>
#include <stdint.h>

/* Lets a host-side test build these under other names and compare with the FPU. */
#ifndef SOFTFLOAT_NAME
#define SOFTFLOAT_NAME(name) name
#endif

typedef uint64_t f64; /* a double's bit pattern */

#define SIGN_BIT 0x8000000000000000ULL
#define EXPONENT_MASK 0x7FF0000000000000ULL
#define FRACTION_MASK 0x000FFFFFFFFFFFFFULL
#define IMPLICIT_BIT 0x0010000000000000ULL
#define QUIET_BIT 0x0008000000000000ULL
#define DEFAULT_NAN 0x7FF8000000000000ULL
#define INFINITY_BITS 0x7FF0000000000000ULL

static inline int exponent_field(f64 a) { return (int)((a >> 52) & 0x7FF); }
static inline bool is_nan(f64 a) { return (a & ~SIGN_BIT) > INFINITY_BITS; }
static inline bool is_infinite(f64 a) { return (a & ~SIGN_BIT) == INFINITY_BITS; }
static inline bool is_zero(f64 a) { return (a & ~SIGN_BIT) == 0; }

/* The quiet form of whichever operand is a NaN. */
static inline f64 propagate_nan(f64 a, f64 b) { return (is_nan(a) ? a : b) | QUIET_BIT; }

/* Shifts right, ORing every bit shifted out into bit 0 ("sticky"), so that
 * rounding still knows the discarded part was not zero. */
static inline uint64_t shift_right_jam(uint64_t x, int count) {
    if (count <= 0) return x;
    if (count >= 64) return x != 0;
    return (x >> count) | ((x << (64 - count)) != 0);
}

/*
 * A finite non-zero operand as exponent and significand: value =
 * significand * 2^(exponent - 1023 - 52) with bit 52 of the significand set.
 * Subnormals are normalised, so their exponent comes out zero or negative.
 */
static inline void unpack(f64 a, int *exponent, uint64_t *significand) {
    int e = exponent_field(a);
    uint64_t s = a & FRACTION_MASK;
    if (e == 0) {
        int shift = __builtin_clzll(s) - 11;
        s <<= shift;
        e = 1 - shift;
    } else {
        s |= IMPLICIT_BIT;
    }
    *exponent = e;
    *significand = s;
}

/*
 * Rounds and packs sign * significand * 2^(exponent - 1023 - 62), where the
 * significand has bit 62 set. Its low 10 bits are what rounding removes (bit 9
 * is the half), bit 0 possibly a sticky bit from an earlier shift.
 */
static f64 round_pack(bool negative, int exponent, uint64_t significand) {
    f64 sign = negative ? SIGN_BIT : 0;
    if (exponent >= 0x7FF) {
        return sign | INFINITY_BITS;
    }
    if (exponent <= 0) {
        /* Subnormal: denormalise first so that rounding happens only once. */
        significand = shift_right_jam(significand, 1 - exponent);
        exponent = 1;
    }
    uint64_t round_bits = significand & 0x3FF;
    significand = (significand + 0x200) >> 10;
    if (round_bits == 0x200) {
        significand &= ~1ULL; /* a tie: to even */
    }
    /* The implicit bit (bit 52) adds one to the exponent field, which is why
     * exponent - 1 goes in; a carry out of rounding adds one more, and at the
     * top of the range turns the result into infinity, as it should. A
     * subnormal has no implicit bit, so its field stays 0. */
    return sign | (((f64)(exponent - 1) << 52) + significand);
}

/* MARK: - Arithmetic */

static f64 add_magnitudes_or_subtract(f64 a, f64 b) {
    if (is_nan(a) || is_nan(b)) return propagate_nan(a, b);
    bool negative_a = a >> 63, negative_b = b >> 63;
    if (is_infinite(a)) {
        return (is_infinite(b) && negative_a != negative_b) ? DEFAULT_NAN : a;
    }
    if (is_infinite(b)) return b;
    if (is_zero(a)) {
        /* -0 + -0 is -0; +0 + -0 is +0 when rounding to nearest. */
        return is_zero(b) ? (a & b) : b;
    }
    if (is_zero(b)) return a;

    /* Make a the operand of larger magnitude. */
    if ((b & ~SIGN_BIT) > (a & ~SIGN_BIT)) {
        f64 t = a;
        a = b;
        b = t;
        bool n = negative_a;
        negative_a = negative_b;
        negative_b = n;
    }
    int exponent_a, exponent_b;
    uint64_t sig_a, sig_b;
    unpack(a, &exponent_a, &sig_a);
    unpack(b, &exponent_b, &sig_b);
    /* Leading bit at 61: room for a carry into bit 62, nine guard bits below. */
    sig_a <<= 9;
    sig_b = shift_right_jam(sig_b << 9, exponent_a - exponent_b);

    uint64_t sum = (negative_a == negative_b) ? sig_a + sig_b : sig_a - sig_b;
    if (sum == 0) return 0; /* x - x is +0 */
    int shift = __builtin_clzll(sum) - 1; /* bring the leading bit to 62 */
    return round_pack(negative_a, exponent_a + 1 - shift, sum << shift);
}

f64 SOFTFLOAT_NAME(__adddf3)(f64 a, f64 b) { return add_magnitudes_or_subtract(a, b); }

f64 SOFTFLOAT_NAME(__subdf3)(f64 a, f64 b) {
    return add_magnitudes_or_subtract(a, is_nan(b) ? b : b ^ SIGN_BIT);
}

f64 SOFTFLOAT_NAME(__negdf2)(f64 a) { return a ^ SIGN_BIT; }

f64 SOFTFLOAT_NAME(__muldf3)(f64 a, f64 b) {
    if (is_nan(a) || is_nan(b)) return propagate_nan(a, b);
    f64 sign = (a ^ b) & SIGN_BIT;
    if (is_infinite(a) || is_infinite(b)) {
        return (is_zero(a) || is_zero(b)) ? DEFAULT_NAN : sign | INFINITY_BITS;
    }
    if (is_zero(a) || is_zero(b)) return sign;

    int exponent_a, exponent_b;
    uint64_t sig_a, sig_b;
    unpack(a, &exponent_a, &sig_a);
    unpack(b, &exponent_b, &sig_b);
    /* Two 53-bit significands: a 105- or 106-bit product (bit 104 or 105). */
    unsigned __int128 product = (unsigned __int128)sig_a * sig_b;
    int exponent = exponent_a + exponent_b - 1023;
    int shift = 42;
    if (product >> 105) {
        shift = 43;
        exponent += 1;
    }
    uint64_t significand = (uint64_t)(product >> shift);
    if ((uint64_t)product & ((1ULL << shift) - 1)) significand |= 1;
    return round_pack(sign != 0, exponent, significand);
}

f64 SOFTFLOAT_NAME(__divdf3)(f64 a, f64 b) {
    if (is_nan(a) || is_nan(b)) return propagate_nan(a, b);
    f64 sign = (a ^ b) & SIGN_BIT;
    if (is_infinite(a)) return is_infinite(b) ? DEFAULT_NAN : sign | INFINITY_BITS;
    if (is_infinite(b)) return sign;
    if (is_zero(b)) return is_zero(a) ? DEFAULT_NAN : sign | INFINITY_BITS;
    if (is_zero(a)) return sign;

    int exponent_a, exponent_b;
    uint64_t sig_a, sig_b;
    unpack(a, &exponent_a, &sig_a);
    unpack(b, &exponent_b, &sig_b);
    int exponent = exponent_a - exponent_b + 1023;
    if (sig_a < sig_b) {
        sig_a <<= 1; /* make the quotient at least 1 */
        exponent -= 1;
    }
    /* (sig_a << 62) / sig_b, a quotient in [2^62, 2^63): one 128-by-64-bit divq. */
    uint64_t high = sig_a >> 2, low = sig_a << 62, quotient, remainder;
    __asm__("divq %4" : "=a"(quotient), "=d"(remainder) : "a"(low), "d"(high), "rm"(sig_b) : "cc");
    return round_pack(sign != 0, exponent, quotient | (remainder != 0));
}

/* MARK: - Comparison */

/* -1, 0 or 1 for ordered operands; 2 when either is a NaN. */
static int compare(f64 a, f64 b) {
    if (is_nan(a) || is_nan(b)) return 2;
    if (is_zero(a) && is_zero(b)) return 0; /* +0 == -0 */
    int64_t x = (int64_t)a, y = (int64_t)b;
    if ((x & y) < 0) {
        /* Both negative: a larger pattern is a more negative number. */
        return x > y ? -1 : x < y ? 1 : 0;
    }
    return x < y ? -1 : x > y ? 1 : 0;
}

/* The compiler-rt contract: __eqdf2/__nedf2 return 0 iff equal; __ltdf2 and
 * __ledf2 return a positive value when unordered, __gtdf2 and __gedf2 a
 * negative one, so that every ordered test is false for NaN. */
int SOFTFLOAT_NAME(__eqdf2)(f64 a, f64 b) { return compare(a, b) != 0; }
int SOFTFLOAT_NAME(__nedf2)(f64 a, f64 b) { return compare(a, b) != 0; }
int SOFTFLOAT_NAME(__ltdf2)(f64 a, f64 b) { int c = compare(a, b); return c == 2 ? 1 : c; }
int SOFTFLOAT_NAME(__ledf2)(f64 a, f64 b) { int c = compare(a, b); return c == 2 ? 1 : c; }
int SOFTFLOAT_NAME(__gtdf2)(f64 a, f64 b) { int c = compare(a, b); return c == 2 ? -1 : c; }
int SOFTFLOAT_NAME(__gedf2)(f64 a, f64 b) { int c = compare(a, b); return c == 2 ? -1 : c; }
int SOFTFLOAT_NAME(__unorddf2)(f64 a, f64 b) { return is_nan(a) || is_nan(b); }

/* MARK: - Conversion */

static f64 from_magnitude(bool negative, uint64_t magnitude) {
    if (magnitude == 0) return 0;
    int leading = 63 - __builtin_clzll(magnitude); /* value is 1.x * 2^leading */
    uint64_t significand = shift_right_jam(magnitude << (63 - leading), 1);
    return round_pack(negative, 1023 + leading, significand);
}

f64 SOFTFLOAT_NAME(__floatdidf)(int64_t a) {
    return from_magnitude(a < 0, a < 0 ? 0 - (uint64_t)a : (uint64_t)a);
}
f64 SOFTFLOAT_NAME(__floatundidf)(uint64_t a) { return from_magnitude(false, a); }
f64 SOFTFLOAT_NAME(__floatsidf)(int32_t a) { return SOFTFLOAT_NAME(__floatdidf)(a); }
f64 SOFTFLOAT_NAME(__floatunsidf)(uint32_t a) { return from_magnitude(false, a); }

/* The magnitude of a truncated toward zero, saturated at `limit`; NaN gives 0. */
static uint64_t truncated_magnitude(f64 a, uint64_t limit) {
    if (is_nan(a)) return 0;
    int exponent = exponent_field(a) - 1023;
    if (exponent < 0) return 0;
    if (exponent >= 64) return limit;
    uint64_t significand = (a & FRACTION_MASK) | IMPLICIT_BIT;
    uint64_t magnitude = exponent >= 52 ? significand << (exponent - 52) : significand >> (52 - exponent);
    return magnitude > limit ? limit : magnitude;
}

/* Out-of-range values saturate (Swift traps before converting those anyway). */
int64_t SOFTFLOAT_NAME(__fixdfdi)(f64 a) {
    if (a >> 63) return (int64_t)(0 - truncated_magnitude(a, 1ULL << 63));
    return (int64_t)truncated_magnitude(a, INT64_MAX);
}
uint64_t SOFTFLOAT_NAME(__fixunsdfdi)(f64 a) { return (a >> 63) ? 0 : truncated_magnitude(a, UINT64_MAX); }
int32_t SOFTFLOAT_NAME(__fixdfsi)(f64 a) {
    if (a >> 63) return (int32_t)(0 - truncated_magnitude(a, 1ULL << 31));
    return (int32_t)truncated_magnitude(a, INT32_MAX);
}
uint32_t SOFTFLOAT_NAME(__fixunsdfsi)(f64 a) {
    return (a >> 63) ? 0 : (uint32_t)truncated_magnitude(a, UINT32_MAX);
}
