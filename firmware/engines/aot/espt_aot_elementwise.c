/* Binary int8 ops with broadcasting, bit-exact with TFLite-Micro's reference kernels:
 * ADD (tflite::reference_integer_ops::Add / BroadcastAdd6DSlow: both inputs rescaled to a
 * common scale at left_shift 20) and MUL (reference_integer_ops::Mul / BroadcastMul6DSlow).
 * Each output depends on one element of each input, so the visiting order is free. */
#include "espt_aot.h"
#include "espt_aot_math.h"

static int8_t add_one(const void *params, int8_t x, int8_t y)
{
    const espt_aot_add_t *p = (const espt_aot_add_t *)params;
    const int32_t a = espt_shl(p->input1_offset + x, p->left_shift);
    const int32_t b = espt_shl(p->input2_offset + y, p->left_shift);
    const int32_t sa = espt_rdbp(espt_srdhm(a, p->input1_multiplier), -p->input1_shift);
    const int32_t sb = espt_rdbp(espt_srdhm(b, p->input2_multiplier), -p->input2_shift);
    const int32_t raw = espt_rdbp(espt_srdhm(sa + sb, p->output_multiplier), -p->output_shift) +
                        p->output_offset;
    return (int8_t)espt_clamp(raw, p->act_min, p->act_max);
}

static int8_t mul_one(const void *params, int8_t x, int8_t y)
{
    const espt_aot_mul_t *p = (const espt_aot_mul_t *)params;
    const int32_t product = (p->input1_offset + x) * (p->input2_offset + y);
    const int32_t raw = p->output_offset + espt_mbqm(product, p->output_multiplier, p->output_shift);
    return (int8_t)espt_clamp(raw, p->act_min, p->act_max);
}

typedef int8_t (*binary_fn)(const void *params, int8_t x, int8_t y);

static void broadcast(const espt_aot_broadcast_t *b, uint32_t size, binary_fn f, const void *params,
                      const int8_t *in1, const int8_t *in2, int8_t *out)
{
    uint32_t d0, d1, d2, d3;
    const uint32_t *s1 = b->strides1, *s2 = b->strides2;
    if (!s1) {
        for (d0 = 0; d0 < size; ++d0) {
            out[d0] = f(params, in1[d0], in2[d0]);
        }
        return;
    }
    for (d0 = 0; d0 < b->dims[0]; ++d0) {
        for (d1 = 0; d1 < b->dims[1]; ++d1) {
            for (d2 = 0; d2 < b->dims[2]; ++d2) {
                const int8_t *x = in1 + d0 * s1[0] + d1 * s1[1] + d2 * s1[2];
                const int8_t *y = in2 + d0 * s2[0] + d1 * s2[1] + d2 * s2[2];
                for (d3 = 0; d3 < b->dims[3]; ++d3) {
                    *out++ = f(params, x[d3 * s1[3]], y[d3 * s2[3]]);
                }
            }
        }
    }
}

void espt_aot_add_s8(const espt_aot_add_t *p, const int8_t *in1, const int8_t *in2, int8_t *out)
{
    broadcast(&p->bcast, p->size, add_one, p, in1, in2, out);
}

void espt_aot_mul_s8(const espt_aot_mul_t *p, const int8_t *in1, const int8_t *in2, int8_t *out)
{
    broadcast(&p->bcast, p->size, mul_one, p, in1, in2, out);
}
