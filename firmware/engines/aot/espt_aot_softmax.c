/* Softmax int8 -> int8 (output scale 1/256, zero point -128), bit-exact with
 * tflite::reference_ops::Softmax<int8_t, int8_t>: gemmlowp's fixed-point exp on Q5.26
 * differences, a Q12.19 sum, and its reciprocal by Newton-Raphson. */
#include "espt_aot.h"
#include "espt_aot_fixedpoint.h"

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
                sum_of_exps += espt_rdbp(espt_fp_exp_on_negative(rescaled, 5), 12);
            }
        }
        headroom_plus_one = count_leading_zeros((uint32_t)sum_of_exps);
        num_bits_over_unit = 12 - headroom_plus_one;
        shifted_scale = espt_fp_one_over_one_plus_x(
            (int32_t)(((uint32_t)sum_of_exps << headroom_plus_one) - (1u << 31)));
        exponent = num_bits_over_unit + 31 - 8;
        for (c = 0; c < p->depth; ++c) {
            const int32_t diff = (int32_t)x[c] - max_in_row;
            if (diff >= p->diff_min) {
                const int32_t rescaled =
                    espt_srdhm(espt_shl(diff, p->input_left_shift), p->input_multiplier);
                const int32_t e = espt_fp_exp_on_negative(rescaled, 5);
                const int32_t unsat = espt_rdbp(espt_srdhm(shifted_scale, e), exponent);
                y[c] = (int8_t)espt_clamp(unsat - 128, -128, 127);
            } else {
                y[c] = INT8_MIN;
            }
        }
    }
}
