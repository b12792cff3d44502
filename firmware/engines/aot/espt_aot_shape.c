/* Ops that move int8 bytes without arithmetic, as TFLite-Micro's reference kernels do:
 * PAD / PADV2 (reference_ops::Pad: the pad value is the output zero point or the
 * constant), CONCATENATION (reference_ops::Concatenation) and STRIDED_SLICE
 * (reference_ops::StridedSlice). All shapes are 4-D, leading dims padded with 1. */
#include <string.h>

#include "espt_aot.h"

void espt_aot_pad_s8(const espt_aot_pad_t *p, const int8_t *in, int8_t *out)
{
    const uint32_t ow = p->out_dims[3], oh = p->out_dims[2], oc = p->out_dims[1];
    uint32_t d0, d1, d2;
    memset(out, p->value, (size_t)p->out_dims[0] * oc * oh * ow);
    for (d0 = 0; d0 < p->in_dims[0]; ++d0) {
        for (d1 = 0; d1 < p->in_dims[1]; ++d1) {
            for (d2 = 0; d2 < p->in_dims[2]; ++d2) {
                const size_t src = (((size_t)d0 * p->in_dims[1] + d1) * p->in_dims[2] + d2) * p->in_dims[3];
                const size_t dst = ((((size_t)d0 + p->before[0]) * oc + d1 + p->before[1]) * oh +
                                    d2 + p->before[2]) * ow + p->before[3];
                memcpy(out + dst, in + src, p->in_dims[3]);
            }
        }
    }
}

void espt_aot_concat_s8(const espt_aot_concat_t *p, const int8_t *const *in, int8_t *out)
{
    uint32_t o, i;
    for (o = 0; o < p->outer; ++o) {
        for (i = 0; i < p->inputs && i < ESPT_AOT_MAX_CONCAT; ++i) {
            memcpy(out, in[i] + (size_t)o * p->inner_bytes[i], p->inner_bytes[i]);
            out += p->inner_bytes[i];
        }
    }
}

void espt_aot_strided_slice_s8(const espt_aot_strided_slice_t *p, const int8_t *in, int8_t *out)
{
    /* Offsets, not pointers: a reversed slice steps below its start between rows. */
    uint32_t a, b, c, d;
    int32_t oa = (int32_t)p->start;
    for (a = 0; a < p->count[0]; ++a, oa += p->step[0]) {
        int32_t ob = oa;
        for (b = 0; b < p->count[1]; ++b, ob += p->step[1]) {
            int32_t oc = ob;
            for (c = 0; c < p->count[2]; ++c, oc += p->step[2]) {
                int32_t od = oc;
                for (d = 0; d < p->count[3]; ++d, od += p->step[3]) {
                    *out++ = in[od];
                }
            }
        }
    }
}
