/* MEAN (int8), bit-exact with TFLite-Micro's reduce.cc -> reference_ops::QuantizedMeanOrSum:
 * an int32 sum per output, minus zero point x count, then one MultiplyByQuantizedMultiplier
 * whose multiplier already holds 1/count (folded offline as the reference folds it). */
#include "espt_aot.h"
#include "espt_aot_math.h"

void espt_aot_mean_s8(const espt_aot_mean_t *p, const int8_t *in, int8_t *out)
{
    uint32_t out_n[4], red_n[4], stride[4];
    uint32_t o0, o1, o2, o3, r0, r1, r2, r3;
    int d;
    stride[3] = 1;
    for (d = 2; d >= 0; --d) {
        stride[d] = stride[d + 1] * p->dims[d + 1];
    }
    for (d = 0; d < 4; ++d) {
        out_n[d] = p->reduce[d] ? 1u : p->dims[d];
        red_n[d] = p->reduce[d] ? p->dims[d] : 1u;
    }
    for (o0 = 0; o0 < out_n[0]; ++o0) {
        for (o1 = 0; o1 < out_n[1]; ++o1) {
            for (o2 = 0; o2 < out_n[2]; ++o2) {
                for (o3 = 0; o3 < out_n[3]; ++o3) {
                    const int8_t *base = in + o0 * stride[0] + o1 * stride[1] + o2 * stride[2] + o3;
                    int32_t sum = 0, y;
                    for (r0 = 0; r0 < red_n[0]; ++r0) {
                        for (r1 = 0; r1 < red_n[1]; ++r1) {
                            for (r2 = 0; r2 < red_n[2]; ++r2) {
                                const int8_t *row = base + r0 * stride[0] + r1 * stride[1] + r2 * stride[2];
                                for (r3 = 0; r3 < red_n[3]; ++r3) {
                                    sum += row[r3];
                                }
                            }
                        }
                    }
                    sum -= p->input_zero_point * (int32_t)p->count;
                    y = espt_mbqm(sum, p->multiplier, p->shift) + p->output_zero_point;
                    *out++ = (int8_t)espt_clamp(y, -128, 127);
                }
            }
        }
    }
}
