/* Softmax int8 -> int8 (output scale 1/256, zero point -128), bit-exact with
 * tflite::reference_ops::Softmax<int8_t, int8_t>: gemmlowp's fixed-point exp on Q5.26
 * differences, a Q12.19 sum, and its reciprocal by Newton-Raphson. */
#include "espt_aot.h"
#include "espt_aot_math.h"

/* exp(x) for x in [-1/4, 0), Q0.31 in and out. */
static int32_t exp_quarter(int32_t a)
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

/* exp(a) for a <= 0 given in Q5.26; result Q0.31. gemmlowp's exp_on_negative_values. */
static int32_t exp_on_negative_q5(int32_t a)
{
    static const int32_t multipliers[7] = {1672461947, 1302514674, 790015084, 290630308,
                                           39332535, 720401, 242};
    const int32_t one_quarter = 1 << 24;
    const int32_t a_mod = (a & (one_quarter - 1)) - one_quarter;
    const int32_t remainder = a_mod - a;
    int32_t result = exp_quarter(espt_sat_shl(a_mod, 5)); /* Rescale Q5.26 -> Q0.31 */
    int e;
    for (e = -2; e <= 4; ++e) {
        if (remainder & (1 << (26 + e))) {
            result = espt_srdhm(result, multipliers[e + 2]);
        }
    }
    return a == 0 ? INT32_MAX : result;
}

/* 1 / (1 + x) for x in [0, 1), Q0.31 in and out. */
static int32_t one_over_one_plus_x(int32_t a)
{
    const int64_t sum = (int64_t)a + INT32_MAX;  /* RoundingHalfSum(a, 1.0) */
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    const int32_t constant_48_over_17 = 1515870810;      /* Q2.29 */
    const int32_t constant_neg_32_over_17 = -1010580540; /* Q2.29 */
    int32_t x = constant_48_over_17 + espt_srdhm(half_denominator, constant_neg_32_over_17);
    int i;
    for (i = 0; i < 3; ++i) {
        const int32_t half_denominator_times_x = espt_srdhm(half_denominator, x);
        const int32_t one_minus = (1 << 29) - half_denominator_times_x;
        x = x + espt_sat_shl(espt_srdhm(x, one_minus), 2);
    }
    return espt_sat_shl(x, 1);
}

static int count_leading_zeros(uint32_t x)
{
    int n = 0;
    if (x == 0) {
        return 32;
    }
    while (!(x & 0x80000000u)) {
        x <<= 1;
        ++n;
    }
    return n;
}

void espt_aot_softmax_s8(const espt_aot_softmax_t *p, const int8_t *in, int8_t *out)
{
    uint32_t r, c;
    for (r = 0; r < p->rows; ++r) {
        const int8_t *x = in + (size_t)r * p->depth;
        int8_t *y = out + (size_t)r * p->depth;
        int8_t max_in_row = INT8_MIN;
        int32_t sum_of_exps = 0; /* Q12.19 */
        int headroom_plus_one, num_bits_over_unit, exponent;
        int32_t shifted_scale;
        for (c = 0; c < p->depth; ++c) {
            max_in_row = x[c] > max_in_row ? x[c] : max_in_row;
        }
        for (c = 0; c < p->depth; ++c) {
            const int32_t diff = (int32_t)x[c] - max_in_row;
            if (diff >= p->diff_min) {
                const int32_t rescaled =
                    espt_srdhm(espt_shl(diff, p->input_left_shift), p->input_multiplier);
                sum_of_exps += espt_rdbp(exp_on_negative_q5(rescaled), 12);
            }
        }
        headroom_plus_one = count_leading_zeros((uint32_t)sum_of_exps);
        num_bits_over_unit = 12 - headroom_plus_one;
        shifted_scale = one_over_one_plus_x(
            (int32_t)(((uint32_t)sum_of_exps << headroom_plus_one) - (1u << 31)));
        exponent = num_bits_over_unit + 31 - 8;
        for (c = 0; c < p->depth; ++c) {
            const int32_t diff = (int32_t)x[c] - max_in_row;
            if (diff >= p->diff_min) {
                const int32_t rescaled =
                    espt_srdhm(espt_shl(diff, p->input_left_shift), p->input_multiplier);
                const int32_t e = exp_on_negative_q5(rescaled);
                const int32_t unsat = espt_rdbp(espt_srdhm(shifted_scale, e), exponent);
                y[c] = (int8_t)espt_clamp(unsat - 128, -128, 127);
            } else {
                y[c] = INT8_MIN;
            }
        }
    }
}
