/* Add (int8, with TFLite's input rescaling at left_shift 20) and requantize (QUANTIZE
 * int8 -> int8), bit-exact with tflite::reference_integer_ops::Add / BroadcastAdd6DSlow
 * and tflite::reference_ops::Requantize. */
#include "espt_aot.h"
#include "espt_aot_math.h"

static int8_t add_one(const espt_aot_add_t *p, int8_t x, int8_t y)
{
    const int32_t a = espt_shl(p->input1_offset + x, p->left_shift);
    const int32_t b = espt_shl(p->input2_offset + y, p->left_shift);
    const int32_t sa = espt_rdbp(espt_srdhm(a, p->input1_multiplier), -p->input1_shift);
    const int32_t sb = espt_rdbp(espt_srdhm(b, p->input2_multiplier), -p->input2_shift);
    const int32_t raw = espt_rdbp(espt_srdhm(sa + sb, p->output_multiplier), -p->output_shift) +
                        p->output_offset;
    return (int8_t)espt_clamp(raw, p->act_min, p->act_max);
}

void espt_aot_add_s8(const espt_aot_add_t *p, const int8_t *in1, const int8_t *in2, int8_t *out)
{
    uint32_t i;
    if (!p->strides1) {
        for (i = 0; i < p->size; ++i) {
            out[i] = add_one(p, in1[i], in2[i]);
        }
        return;
    }
    {
        uint32_t d0, d1, d2, d3;
        const uint32_t *s1 = p->strides1, *s2 = p->strides2;
        for (d0 = 0; d0 < p->dims[0]; ++d0) {
            for (d1 = 0; d1 < p->dims[1]; ++d1) {
                for (d2 = 0; d2 < p->dims[2]; ++d2) {
                    const int8_t *a = in1 + d0 * s1[0] + d1 * s1[1] + d2 * s1[2];
                    const int8_t *b = in2 + d0 * s2[0] + d1 * s2[1] + d2 * s2[2];
                    for (d3 = 0; d3 < p->dims[3]; ++d3) {
                        *out++ = add_one(p, a[d3 * s1[3]], b[d3 * s2[3]]);
                    }
                }
            }
        }
    }
}

void espt_aot_requantize_s8(const espt_aot_requantize_t *p, const int8_t *in, int8_t *out)
{
    uint32_t i;
    for (i = 0; i < p->size; ++i) {
        const int32_t v = espt_mbqm(in[i] - p->input_zero_point, p->multiplier, p->shift) +
                          p->output_zero_point;
        out[i] = (int8_t)espt_clamp(v, -128, 127);
    }
}
