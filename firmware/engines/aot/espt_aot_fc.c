/* Fully connected (per-channel or per-tensor int8), bit-exact with
 * tflite::reference_integer_ops::FullyConnectedPerChannel / FullyConnected (weights'
 * zero point 0). The accumulator is regrouped as (bias + input_offset * sum(w)) + sum(w * x),
 * the first term one constant per output (folded at export). */
#include "espt_aot.h"
#include "espt_aot_math.h"

static int8_t requant(const espt_aot_fc_t *p, int32_t acc, uint32_t oc)
{
    acc = espt_mbqm(p->folded_bias[oc] + acc, p->rq.multiplier[oc], p->rq.shift[oc]) + p->rq.output_offset;
    return (int8_t)espt_clamp(acc, p->rq.act_min, p->rq.act_max);
}

void espt_aot_fully_connected_s8(const espt_aot_fc_t *p, const int8_t *in, int8_t *out,
                                 int8_t *scratch)
{
    const uint32_t n = p->in_depth;
    uint32_t b, j, oc = 0;
    if (!p->packed) { /* eight outputs at a time over the blocked weights, then four */
        for (; oc + ESPT_AOT_BLOCK <= p->out_c; oc += ESPT_AOT_BLOCK) {
            const int8_t *w = p->weights + (size_t)oc * n;
            for (b = 0; b < p->batches; ++b) {
                int32_t acc[ESPT_AOT_BLOCK];
                int8_t *o = out + (size_t)b * p->out_c + oc;
                espt_dot8_s8(in + (size_t)b * n, 1, n, 0, w, acc);
                for (j = 0; j < ESPT_AOT_BLOCK; ++j) {
                    o[j] = requant(p, acc[j], oc + j);
                }
            }
        }
        for (; oc + 4 <= p->out_c; oc += 4) {
            const int8_t *w = p->weights + (size_t)oc * n;
            for (b = 0; b < p->batches; ++b) {
                int32_t acc[4];
                int8_t *o = out + (size_t)b * p->out_c + oc;
                espt_dot4_s8(in + (size_t)b * n, w, w + n, w + 2 * (size_t)n, w + 3 * (size_t)n, n, acc);
                for (j = 0; j < 4; ++j) {
                    o[j] = requant(p, acc[j], oc + j);
                }
            }
        }
    }
    for (; oc < p->out_c; ++oc) {
        const int8_t *w = p->weights + (size_t)oc * n;
        if (p->packed) {
            espt_aot_unpack_row(p->packed, oc, n, scratch);
            w = scratch;
        }
        for (b = 0; b < p->batches; ++b) {
            out[(size_t)b * p->out_c + oc] = requant(p, espt_dot_s8(in + (size_t)b * n, w, n), oc);
        }
    }
}
