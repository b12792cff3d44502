/* The arithmetic the kernels share: TFLite-Micro's fixed-point primitives and an int8
 * dot product. Internal to the kernels.
 *
 * Fixed point:
 * Mirrors gemmlowp's fixedpoint.h (SaturatingRoundingDoublingHighMul, RoundingDivideByPOT)
 * and tflite::MultiplyByQuantizedMultiplier in its default double-rounding form (the
 * TFLITE_SINGLE_ROUNDING=0 build that TFLite-Micro ships). Shifts of negative values are
 * arithmetic, as on every compiler TFLite-Micro supports. */
#ifndef ESPT_AOT_MATH_H
#define ESPT_AOT_MATH_H

#include <stdint.h>

/* (a * b * 2) >> 32, rounded to nearest, saturating INT32_MIN * INT32_MIN. */
static inline int32_t espt_srdhm(int32_t a, int32_t b)
{
    const int64_t ab = (int64_t)a * (int64_t)b;
    const int32_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    /* Division, not a shift: it truncates toward zero, like gemmlowp. */
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

/* x / 2^exponent, rounded to nearest, ties away from zero. */
static inline int32_t espt_rdbp(int32_t x, int exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* Left shift that wraps like TFLite-Micro's `x * (1 << shift)` without signed overflow. */
static inline int32_t espt_shl(int32_t x, int shift)
{
    return (int32_t)((uint32_t)x << shift);
}

static inline int32_t espt_mbqm(int32_t x, int32_t multiplier, int shift)
{
    const int left = shift > 0 ? shift : 0;
    const int right = shift > 0 ? 0 : -shift;
    return espt_rdbp(espt_srdhm(espt_shl(x, left), multiplier), right);
}

static inline int32_t espt_clamp(int32_t x, int32_t lo, int32_t hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

/* gemmlowp's SaturatingRoundingMultiplyByPOT for a positive exponent. */
static inline int32_t espt_sat_shl(int32_t x, int exponent)
{
    const int32_t threshold = (int32_t)((1u << (31 - exponent)) - 1u);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return espt_shl(x, exponent);
}

/* sum(a[i] * b[i]) in int32. The fixed 16-wide inner loop lets compilers vectorize it
 * (gcc -O2 does on x86-64) and unroll it where there are no vectors (Xtensa, RISC-V). */
static inline int32_t espt_dot_s8(const int8_t *a, const int8_t *b, uint32_t n)
{
    int32_t acc = 0;
    uint32_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const int8_t *x = a + i, *y = b + i; /* no index arithmetic that may wrap */
        int32_t s = 0;
        int j;
        for (j = 0; j < 16; ++j) {
            s += x[j] * y[j];
        }
        acc += s;
    }
    for (; i < n; ++i) {
        acc += a[i] * b[i];
    }
    return acc;
}

/* Four dot products of a against b0..b3 at once: each a[i] is loaded once for four
 * multiply-accumulates (what matters on cores without vectors), same 16-wide chunks. */
static inline void espt_dot4_s8(const int8_t *a, const int8_t *b0, const int8_t *b1,
                                const int8_t *b2, const int8_t *b3, uint32_t n, int32_t acc[4])
{
    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    uint32_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const int8_t *x = a + i, *y0 = b0 + i, *y1 = b1 + i, *y2 = b2 + i, *y3 = b3 + i;
        int32_t t0 = 0, t1 = 0, t2 = 0, t3 = 0;
        int j;
        for (j = 0; j < 16; ++j) {
            const int32_t v = x[j];
            t0 += v * y0[j];
            t1 += v * y1[j];
            t2 += v * y2[j];
            t3 += v * y3[j];
        }
        s0 += t0;
        s1 += t1;
        s2 += t2;
        s3 += t3;
    }
    for (; i < n; ++i) {
        const int32_t v = a[i];
        s0 += v * b0[i];
        s1 += v * b1[i];
        s2 += v * b2[i];
        s3 += v * b3[i];
    }
    acc[0] = s0;
    acc[1] = s1;
    acc[2] = s2;
    acc[3] = s3;
}

#endif
