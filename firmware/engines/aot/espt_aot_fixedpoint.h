/* gemmlowp's fixed-point transcendentals (fixedpoint/fixedpoint.h) as TFLite-Micro's int8
 * softmax, logistic and tanh use them, step by step on raw int32 values. A value in
 * "Qi" has i integer bits and 31 - i fractional bits. Internal to the kernels. */
#ifndef ESPT_AOT_FIXEDPOINT_H
#define ESPT_AOT_FIXEDPOINT_H

#include <stdint.h>

#include "espt_aot_math.h"

/* exp_on_interval_between_negative_one_quarter_and_0_excl: exp(a), a in [-1/4, 0), Q0. */
static inline int32_t espt_fp_exp_quarter(int32_t a)
{
    const int32_t constant_term = 1895147668;     /* exp(-1/8) */
    const int32_t constant_1_over_3 = 715827883;
    const int32_t x = a + (1 << 28);              /* a + 1/8 */
    const int32_t x2 = espt_srdhm(x, x);
    const int32_t x3 = espt_srdhm(x2, x);
    const int32_t x4 = espt_srdhm(x2, x2);
    const int32_t x4_over_4 = espt_rdbp(x4, 2);
    const int32_t poly = espt_rdbp(espt_srdhm(x4_over_4 + x3, constant_1_over_3) + x2, 1);
    return constant_term + espt_srdhm(constant_term, x + poly);
}

/* exp_on_negative_values: exp(a) for a <= 0 in Q(integer_bits), 1..5; result Q0. */
static inline int32_t espt_fp_exp_on_negative(int32_t a, int integer_bits)
{
    static const int32_t multipliers[7] = {1672461947, 1302514674, 790015084, 290630308,
                                           39332535, 720401, 242};
    const int fractional_bits = 31 - integer_bits;
    const int32_t one_quarter = (int32_t)1 << (fractional_bits - 2);
    const int32_t a_mod = (a & (one_quarter - 1)) - one_quarter;
    const int32_t remainder = a_mod - a;
    int32_t result = espt_fp_exp_quarter(espt_sat_shl(a_mod, integer_bits)); /* Rescale<0> */
    int e;
    for (e = -2; e <= 4 && e < integer_bits; ++e) {
        if (remainder & ((int32_t)1 << (fractional_bits + e))) {
            result = espt_srdhm(result, multipliers[e + 2]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* RoundingHalfSum(a, One) and the Newton-Raphson steps both reciprocals share: x ~ 1 / d
 * for d = (1 + a) / 2, Q2. */
static inline int32_t espt_fp_reciprocal_steps(int32_t a, int32_t *half_denominator_out)
{
    const int64_t sum = (int64_t)a + INT32_MAX;
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    const int32_t constant_48_over_17 = 1515870810;      /* Q2 */
    const int32_t constant_neg_32_over_17 = -1010580540; /* Q2 */
    int32_t x = constant_48_over_17 + espt_srdhm(half_denominator, constant_neg_32_over_17);
    int i;
    for (i = 0; i < 3; ++i) {
        const int32_t half_denominator_times_x = espt_srdhm(half_denominator, x);
        const int32_t one_minus = (1 << 29) - half_denominator_times_x;
        x = x + espt_sat_shl(espt_srdhm(x, one_minus), 2);
    }
    *half_denominator_out = half_denominator;
    return x;
}

/* one_over_one_plus_x_for_x_in_0_1: 1 / (1 + a), Q0 in and out. */
static inline int32_t espt_fp_one_over_one_plus_x(int32_t a)
{
    int32_t half_denominator;
    const int32_t x = espt_fp_reciprocal_steps(a, &half_denominator);
    return espt_sat_shl(x, 1);  /* Rescale<0>(ExactMulByPot<-1>(x)) */
}

/* one_minus_x_over_one_plus_x_for_x_in_0_1: (1 - a) / (1 + a), Q0 in and out. */
static inline int32_t espt_fp_one_minus_x_over_one_plus_x(int32_t a)
{
    int32_t half_denominator;
    const int32_t x = espt_fp_reciprocal_steps(a, &half_denominator);
    return espt_sat_shl(x - (1 << 29), 2);  /* Rescale<0>(x - F2::One()) */
}

/* gemmlowp::logistic for a Q4 input; result Q0. */
static inline int32_t espt_fp_logistic_q4(int32_t a)
{
    int32_t positive;
    if (a == 0) {
        return 1 << 30;
    }
    positive = espt_fp_one_over_one_plus_x(espt_fp_exp_on_negative(a > 0 ? -a : a, 4));
    return a > 0 ? positive : INT32_MAX - positive;
}

/* gemmlowp::tanh for a Q4 input; result Q0. exp(2n) for n = -|a|: the same raw value read
 * as Q5 (ExactMulByPot<1>). */
static inline int32_t espt_fp_tanh_q4(int32_t a)
{
    int32_t t;
    if (a == 0) {
        return 0;
    }
    t = espt_fp_one_minus_x_over_one_plus_x(espt_fp_exp_on_negative(a < 0 ? a : -a, 5));
    return a < 0 ? -t : t;
}

#endif
