/* Max and average pooling (int8), bit-exact with tflite::reference_integer_ops::MaxPool
 * and AveragePool: the window is clipped to the image, padding is never counted. */
#include "espt_aot.h"
#include "espt_aot_math.h"

static void clip(int origin, int taps, int extent, int *first, int *end)
{
    *first = origin < 0 ? -origin : 0;
    *end = extent - origin < taps ? extent - origin : taps;
}

void espt_aot_max_pool_s8(const espt_aot_pool_t *p, const int8_t *in, int8_t *out)
{
    const int ch = p->channels;
    int y, x, c, fy, fx;
    for (y = 0; y < p->out_h; ++y) {
        const int iy0 = y * p->stride_h - p->pad_h;
        int fy0, fy1;
        clip(iy0, p->k_h, p->in_h, &fy0, &fy1);
        for (x = 0; x < p->out_w; ++x) {
            const int ix0 = x * p->stride_w - p->pad_w;
            int fx0, fx1;
            int8_t *o = out + ((int32_t)y * p->out_w + x) * ch;
            clip(ix0, p->k_w, p->in_w, &fx0, &fx1);
            for (c = 0; c < ch; ++c) {
                int8_t m = INT8_MIN;
                for (fy = fy0; fy < fy1; ++fy) {
                    const int8_t *row = in + ((int32_t)(iy0 + fy) * p->in_w + ix0) * ch + c;
                    for (fx = fx0; fx < fx1; ++fx) {
                        m = row[fx * ch] > m ? row[fx * ch] : m;
                    }
                }
                o[c] = (int8_t)espt_clamp(m, p->act_min, p->act_max);
            }
        }
    }
}

void espt_aot_avg_pool_s8(const espt_aot_pool_t *p, const int8_t *in, int8_t *out)
{
    const int ch = p->channels;
    int y, x, c, fy, fx;
    for (y = 0; y < p->out_h; ++y) {
        const int iy0 = y * p->stride_h - p->pad_h;
        int fy0, fy1;
        clip(iy0, p->k_h, p->in_h, &fy0, &fy1);
        for (x = 0; x < p->out_w; ++x) {
            const int ix0 = x * p->stride_w - p->pad_w;
            int fx0, fx1;
            int8_t *o = out + ((int32_t)y * p->out_w + x) * ch;
            clip(ix0, p->k_w, p->in_w, &fx0, &fx1);
            for (c = 0; c < ch; ++c) {
                int32_t acc = 0;
                int count = 0;
                for (fy = fy0; fy < fy1; ++fy) {
                    const int8_t *row = in + ((int32_t)(iy0 + fy) * p->in_w + ix0) * ch + c;
                    for (fx = fx0; fx < fx1; ++fx) {
                        acc += row[fx * ch];
                        ++count;
                    }
                }
                if (count > 0) { /* round half away from zero, as the reference does */
                    acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                }
                o[c] = (int8_t)espt_clamp(acc, p->act_min, p->act_max);
            }
        }
    }
}
