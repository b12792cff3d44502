/* Depthwise conv 2D (per-channel int8), bit-exact with
 * tflite::reference_integer_ops::DepthwiseConvPerChannel. */
#include "espt_aot.h"
#include "espt_aot_math.h"

void espt_aot_depthwise_conv_s8(const espt_aot_depthwise_t *p, const int8_t *in, int8_t *out)
{
    const int in_c = p->in_c, out_c = p->out_c, m = p->depth_multiplier;
    int y, x, ic, j, fy, fx;
    for (y = 0; y < p->out_h; ++y) {
        const int in_y0 = y * p->stride_h - p->pad_h;
        for (x = 0; x < p->out_w; ++x) {
            const int in_x0 = x * p->stride_w - p->pad_w;
            int8_t *o = out + ((int32_t)y * p->out_w + x) * out_c;
            for (ic = 0; ic < in_c; ++ic) {
                for (j = 0; j < m; ++j) {
                    const int oc = ic * m + j;
                    int32_t acc = 0;
                    for (fy = 0; fy < p->k_h; ++fy) {
                        const int iy = in_y0 + fy * p->dilation_h;
                        if (iy < 0 || iy >= p->in_h) {
                            continue;
                        }
                        for (fx = 0; fx < p->k_w; ++fx) {
                            const int ix = in_x0 + fx * p->dilation_w;
                            if (ix < 0 || ix >= p->in_w) {
                                continue;
                            }
                            acc += p->weights[(fy * p->k_w + fx) * out_c + oc] *
                                   (in[((int32_t)iy * p->in_w + ix) * in_c + ic] + p->input_offset);
                        }
                    }
                    if (p->bias) {
                        acc += p->bias[oc];
                    }
                    acc = espt_mbqm(acc, p->rq.multiplier[oc], p->rq.shift[oc]) + p->rq.output_offset;
                    o[oc] = (int8_t)espt_clamp(acc, p->rq.act_min, p->rq.act_max);
                }
            }
        }
    }
}
