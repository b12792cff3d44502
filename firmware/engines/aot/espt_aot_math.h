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

/* (a * b * 2) >> 32, rounded to nearest, saturating INT32_MIN * INT32_MIN. gemmlowp adds
 * 2^30 (1 - 2^30 when a * b < 0) and divides by 2^31 truncating toward zero; for every
 * product that equals floor((a * b + 2^30) / 2^31), an add and a shift (no 64-bit division
 * on a 32-bit core). tests/test_aot_kernels.py checks the identity on edge products. */
static inline int32_t espt_srdhm(int32_t a, int32_t b)
{
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    return (int32_t)(((int64_t)a * (int64_t)b + (1 << 30)) >> 31);
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

/* MultiplyByQuantizedMultiplier for QuantizeMultiplier's shifts (-31..31): the final
 * RoundingDivideByPOT with a 32-bit mask. */
static inline int32_t espt_mbqm(int32_t x, int32_t multiplier, int shift)
{
    const int left = shift > 0 ? shift : 0;
    const int right = shift > 0 ? 0 : -shift;
    const int32_t v = espt_srdhm(espt_shl(x, left), multiplier);
    const int32_t mask = (int32_t)((1u << right) - 1u);
    const int32_t threshold = (mask >> 1) + (v < 0 ? 1 : 0);
    return (v >> right) + ((v & mask) > threshold ? 1 : 0);
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

/* Output channels per pass of the conv and fully connected kernels over blocked weights
 * (host/esptiny/aot/pack.py, blocked): the n taps are runs of contiguous input (a conv's
 * filter rows, a fully connected layer's whole input); for each block of 8 channels and
 * each run, each 16-tap chunk holds the 8 channels' 16 weights one after the other, and
 * the run's taps left over hold the 8 channels' weights tap by tap. */
#define ESPT_AOT_BLOCK 8
#define ESPT_AOT_CHUNK 16

/* Cores without vectors (RISC-V, Xtensa) get the chunk unrolled: every load then has a
 * constant offset, so the loop body is one load, one multiply and one add per MAC. On
 * x86-64 gcc vectorizes the chunk instead, which unrolling would get in the way of. */
#if defined(__riscv) || defined(__XTENSA__)
#define ESPT_UNROLL_CHUNK _Pragma("GCC unroll 16")
#else
#define ESPT_UNROLL_CHUNK
#endif

/* Eight dot products of `runs` runs of run_len bytes of a, a_stride bytes apart, against
 * one block of blocked weights: each input byte is loaded once for eight multiply-
 * accumulates, each weight once. */
static inline void espt_dot8_s8(const int8_t *a, uint32_t runs, uint32_t run_len, uint32_t a_stride,
                                const int8_t *w, int32_t acc[8])
{
    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    uint32_t r, i;
    for (r = 0; r < runs; ++r, a += a_stride) {
        for (i = 0; i + ESPT_AOT_CHUNK <= run_len; i += ESPT_AOT_CHUNK, w += ESPT_AOT_BLOCK * ESPT_AOT_CHUNK) {
            const int8_t *x = a + i;
            int j;
            ESPT_UNROLL_CHUNK
            for (j = 0; j < ESPT_AOT_CHUNK; ++j) {
                const int32_t v = x[j];
                s0 += v * w[j];
                s1 += v * w[16 + j];
                s2 += v * w[32 + j];
                s3 += v * w[48 + j];
                s4 += v * w[64 + j];
                s5 += v * w[80 + j];
                s6 += v * w[96 + j];
                s7 += v * w[112 + j];
            }
        }
        for (; i < run_len; ++i, w += ESPT_AOT_BLOCK) {
            const int32_t v = a[i];
            s0 += v * w[0];
            s1 += v * w[1];
            s2 += v * w[2];
            s3 += v * w[3];
            s4 += v * w[4];
            s5 += v * w[5];
            s6 += v * w[6];
            s7 += v * w[7];
        }
    }
    acc[0] = s0;
    acc[1] = s1;
    acc[2] = s2;
    acc[3] = s3;
    acc[4] = s4;
    acc[5] = s5;
    acc[6] = s6;
    acc[7] = s7;
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
