/*
 * check-softfloat.c: compares the kernel's soft-float routines
 * (Sources/ToroKernel/Runtime/SoftFloat.c and Math.c, built for the host under
 * other names) with the host FPU, bit for bit, on random and special operands:
 * zeros, subnormals, infinities, NaNs, values near overflow, small integers.
 * Run through scripts/check-softfloat.sh.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef uint64_t f64;
#define SIGN 0x8000000000000000ULL

f64 host___adddf3(f64, f64);
f64 host___subdf3(f64, f64);
f64 host___muldf3(f64, f64);
f64 host___divdf3(f64, f64);
int host___eqdf2(f64, f64);
int host___ltdf2(f64, f64);
int host___ledf2(f64, f64);
int host___gtdf2(f64, f64);
int host___gedf2(f64, f64);
int host___unorddf2(f64, f64);
f64 host___floatdidf(int64_t);
f64 host___floatundidf(uint64_t);
int64_t host___fixdfdi(f64);
uint64_t host___fixunsdfdi(f64);
int32_t host___fixdfsi(f64);
f64 host_ceil(f64) __asm__("host_ceil");

static f64 bits(double d) { f64 u; memcpy(&u, &d, 8); return u; }
static double value(f64 u) { double d; memcpy(&d, &u, 8); return d; }

static uint64_t state = 88172645463325252ULL;
static uint64_t next(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

static f64 operand(void) {
    uint64_t r = next();
    switch (r % 10) {
    case 0: return (r >> 1) & 0x800FFFFFFFFFFFFFULL;                            /* subnormal */
    case 1: return (r & SIGN) | 0x7FF0000000000000ULL;                          /* infinity */
    case 2: return r & SIGN;                                                    /* zero */
    case 3: return (r & 0x800FFFFFFFFFFFFFULL) | ((1023 + next() % 120 - 60) << 52); /* moderate */
    case 4: return bits((double)(int64_t)(next() % 2000) - 1000);               /* integers */
    case 5: return bits((double)(int64_t)(next() % 2000) / 8.0 - 100);          /* fractions */
    case 6: return (r & 0x800FFFFFFFFFFFFFULL) | ((1 + next() % 5) << 52);      /* tiny normal */
    case 7: return (r & 0x800FFFFFFFFFFFFFULL) | ((0x7FE - next() % 5) << 52);  /* huge */
    default: return r;                                                          /* anything, NaNs too */
    }
}

static long failures;

static void expect(const char *what, f64 a, f64 b, f64 got, f64 want) {
    if (got == want || (isnan(value(got)) && isnan(value(want)))) return;
    if (failures++ < 20) {
        printf("%s(%016llx, %016llx) = %016llx, expected %016llx\n", what, (unsigned long long)a,
               (unsigned long long)b, (unsigned long long)got, (unsigned long long)want);
    }
}

int main(void) {
    const long cases = 5000000;
    for (long i = 0; i < cases; i++) {
        f64 a = operand(), b = operand();
        double x = value(a), y = value(b);
        expect("add", a, b, host___adddf3(a, b), bits(x + y));
        expect("sub", a, b, host___subdf3(a, b), bits(x - y));
        expect("mul", a, b, host___muldf3(a, b), bits(x * y));
        expect("div", a, b, host___divdf3(a, b), bits(x / y));
        expect("eq", a, b, host___eqdf2(a, b) == 0, x == y);
        expect("lt", a, b, host___ltdf2(a, b) < 0, x < y);
        expect("le", a, b, host___ledf2(a, b) <= 0, x <= y);
        expect("gt", a, b, host___gtdf2(a, b) > 0, x > y);
        expect("ge", a, b, host___gedf2(a, b) >= 0, x >= y);
        expect("unord", a, b, host___unorddf2(a, b) != 0, isnan(x) || isnan(y));
        expect("ceil", a, 0, host_ceil(a), bits(ceil(x)));

        int64_t s = (int64_t)next() >> (next() % 64);
        expect("floatdidf", (f64)s, 0, host___floatdidf(s), bits((double)s));
        uint64_t u = next() >> (next() % 64);
        expect("floatundidf", u, 0, host___floatundidf(u), bits((double)u));
        if (!isnan(x) && x > -9.2e18 && x < 9.2e18) expect("fixdfdi", a, 0, host___fixdfdi(a), (f64)(int64_t)x);
        if (!isnan(x) && x > -1 && x < 1.8e19) expect("fixunsdfdi", a, 0, host___fixunsdfdi(a), (uint64_t)x);
        if (!isnan(x) && x > -2.1e9 && x < 2.1e9) expect("fixdfsi", a, 0, host___fixdfsi(a), (f64)(int64_t)(int32_t)x);
    }
    /* Out of range saturates. */
    expect("fixdfdi", bits(1e30), 0, host___fixdfdi(bits(1e30)), INT64_MAX);
    expect("fixdfdi", bits(-1e30), 0, host___fixdfdi(bits(-1e30)), (f64)INT64_MIN);
    printf("soft-float: %ld cases, %ld mismatches\n", cases, failures);
    return failures != 0;
}
