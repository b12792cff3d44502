/* Elementwise int8 activations, bit-exact with TFLite-Micro's int8 kernels:
 * RELU (ReluQuantized: requantize, clamp at the output zero point; see espt_aot_quantize.c),
 * RELU6 (Relu6Quantized: a clamp on the input's scale), LEAKY_RELU (QuantizeLeakyRelu),
 * HARD_SWISH (reference_ops::HardSwish, 16-bit fixed point), LOGISTIC and TANH
 * (reference_integer_ops::Logistic / Tanh over gemmlowp's fixed point). */
#include "espt_aot.h"
#include "espt_aot_fixedpoint.h"

void espt_aot_clamp_s8(const espt_aot_clamp_t *p, const int8_t *in, int8_t *out)
{
    uint32_t i;
    for (i = 0; i < p->size; ++i) {
        out[i] = (int8_t)espt_clamp(in[i], p->lo, p->hi);
    }
}

void espt_aot_leaky_relu_s8(const espt_aot_leaky_relu_t *p, const int8_t *in, int8_t *out)
{
    uint32_t i;
    for (i = 0; i < p->size; ++i) {
        const int32_t x = in[i] - p->input_zero_point;
        const int32_t y = x >= 0 ? espt_mbqm(x, p->identity_multiplier, p->identity_shift)
                                 : espt_mbqm(x, p->alpha_multiplier, p->alpha_shift);
        out[i] = (int8_t)espt_clamp(p->output_zero_point + y, -128, 127);
    }
}

/* ---- 16-bit fixed point (gemmlowp's int16 specializations and hard_swish.h) ---------- */

static int16_t srdhm16(int16_t a, int16_t b)
{
    const int32_t ab = (int32_t)a * b;
    const int16_t nudge = (int16_t)(ab >= 0 ? (1 << 14) : (1 - (1 << 14)));
    if (a == b && a == INT16_MIN) {
        return INT16_MAX;
    }
    return (int16_t)((ab + nudge) / (1 << 15));
}

/* SaturatingDoublingHighMul: like srdhm16, rounding toward zero. */
static int16_t sdhm16(int16_t a, int16_t b)
{
    if (a == b && a == INT16_MIN) {
        return INT16_MAX;
    }
    return (int16_t)(((int32_t)a * b) / (1 << 15));
}

/* RoundingDivideByPOT on int16 values, exponent 0..15 (the compiler checks the range). */
static int16_t rdbp16(int16_t x, int exponent)
{
    const int16_t mask = (int16_t)((1 << exponent) - 1);
    const int16_t remainder = (int16_t)(x & mask);
    const int16_t threshold = (int16_t)((mask >> 1) + (x < 0 ? 1 : 0));
    return (int16_t)((x >> exponent) + (remainder > threshold ? 1 : 0));
}

static int16_t sat_shl16(int16_t v, int amount)
{
    const int64_t r = (int64_t)v * ((int64_t)1 << amount);
    return (int16_t)(r > INT16_MAX ? INT16_MAX : (r < INT16_MIN ? INT16_MIN : r));
}

void espt_aot_hard_swish_s8(const espt_aot_hard_swish_t *p, const int8_t *in, int8_t *out)
{
    uint32_t i;
    for (i = 0; i < p->size; ++i) {
        const int16_t x = (int16_t)(in[i] - p->input_zero_point);
        const int16_t hires = (int16_t)(x * (1 << 7));
        const int16_t preshift_out = srdhm16(hires, p->output_multiplier);
        int16_t reluish = hires;
        int16_t y;
        if (p->reluish_exponent > 0) {
            reluish = sat_shl16(reluish, p->reluish_exponent - 1);
        }
        reluish = srdhm16(reluish, p->reluish_multiplier);
        if (p->reluish_exponent > 0) {
            reluish = sat_shl16(reluish, 1);
        }
        if (p->reluish_exponent < 0) {
            reluish = rdbp16(reluish, -p->reluish_exponent);
        }
        reluish = (int16_t)((reluish + (1 << 15)) >> 1);  /* [-1, 1] -> [0, 1] */
        y = rdbp16(sdhm16(reluish, preshift_out), -p->output_exponent);
        y = (int16_t)(y + p->output_zero_point);
        out[i] = (int8_t)espt_clamp(y, -128, 127);
    }
}

/* ---- logistic and tanh --------------------------------------------------------------- */

/* Both saturate outside the input radius; inside, the input in Q4.27 through gemmlowp's
 * function, then rounded to the output's fixed scale (1/256 and zero point -128 for the
 * logistic, 1/128 for tanh). */
static void sigmoid_like(const espt_aot_sigmoid_t *p, const int8_t *in, int8_t *out, int is_tanh)
{
    uint32_t i;
    for (i = 0; i < p->size; ++i) {
        const int32_t x = in[i] - p->input_zero_point;
        if (x <= -p->input_range_radius) {
            out[i] = INT8_MIN;
        } else if (x >= p->input_range_radius) {
            out[i] = INT8_MAX;
        } else {
            const int32_t q4 = espt_mbqm(x, p->input_multiplier, p->input_left_shift);
            const int32_t y = is_tanh ? espt_rdbp(espt_fp_tanh_q4(q4), 31 - 7)
                                      : espt_rdbp(espt_fp_logistic_q4(q4), 31 - 8) - 128;
            out[i] = (int8_t)espt_clamp(y, -128, 127);
        }
    }
}

void espt_aot_logistic_s8(const espt_aot_sigmoid_t *p, const int8_t *in, int8_t *out)
{
    sigmoid_like(p, in, out, 0);
}

void espt_aot_tanh_s8(const espt_aot_sigmoid_t *p, const int8_t *in, int8_t *out)
{
    sigmoid_like(p, in, out, 1);
}
