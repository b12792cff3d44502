/* Conv 2D (per-channel int8), alone or fused with the max pool that follows it.
 * Bit-exact with tflite::reference_integer_ops::ConvPerChannel. Each output pixel's window
 * is first copied into a patch (im2col), the taps outside the image filled with the input
 * zero point; the int32 accumulator is then regrouped as
 *     (bias + input_offset * sum(w)) + sum(w * patch)
 * where the filled taps contribute w * (zp + input_offset) = 0, exactly as the reference's
 * skipped taps do, and the first term is one constant per channel (folded at export).
 *
 * Fused with a max pool whose windows do not overlap, the maximum is taken over the int32
 * accumulators and only the maximum is requantized: with no left shift the requantization
 * (add, SaturatingRoundingDoublingHighMul by a multiplier >= 0, RoundingDivideByPOT, add,
 * clamp) is non-decreasing in the accumulator, so the max commutes with it. */
#include <string.h>

#include "espt_aot.h"
#include "espt_aot_math.h"

#define ESPT_AOT_MAX_POOL_ROWS 16

static void valid_taps(int origin, int extent, int taps, int *first, int *end)
{
    /* taps t with 0 <= origin + t < extent */
    *first = origin < 0 ? -origin : 0;
    *end = extent - origin < taps ? extent - origin : taps;
    if (*end < *first) {
        *end = *first;
    }
}

static uint32_t patch_bytes(const espt_aot_conv_t *p)
{
    return (uint32_t)p->k_h * p->k_w * p->in_c;
}

/* The window of output pixel (y, x) as k_h * k_w * in_c bytes, in the weights' order. */
static void im2col(const espt_aot_conv_t *p, const int8_t *in, int y, int x, int8_t *patch)
{
    const int cin = p->in_c;
    const int8_t zp = (int8_t)(-p->input_offset);
    const int in_y0 = y * p->stride_h - p->pad_h;
    const int in_x0 = x * p->stride_w - p->pad_w;
    int fy, fx;
    for (fy = 0; fy < p->k_h; ++fy) {
        const int iy = in_y0 + fy * p->dilation_h;
        int8_t *dst = patch + fy * p->k_w * cin;
        const int8_t *row = in + (int32_t)iy * p->in_w * cin;
        if (iy < 0 || iy >= p->in_h) {
            memset(dst, zp, (size_t)p->k_w * (size_t)cin);
            continue;
        }
        if (p->dilation_w == 1 && in_x0 >= 0 && in_x0 + p->k_w <= p->in_w) {
            memcpy(dst, row + in_x0 * cin, (size_t)p->k_w * (size_t)cin);
            continue;
        }
        for (fx = 0; fx < p->k_w; ++fx) {
            const int ix = in_x0 + fx * p->dilation_w;
            if (ix < 0 || ix >= p->in_w) {
                memset(dst + fx * cin, zp, (size_t)cin);
            } else {
                memcpy(dst + fx * cin, row + ix * cin, (size_t)cin);
            }
        }
    }
}

static int8_t requant(const espt_aot_conv_t *p, int32_t acc, int oc)
{
    const espt_aot_requant_t *rq = &p->rq;
    acc = espt_mbqm(p->folded_bias[oc] + acc, rq->multiplier[oc], rq->shift[oc]) + rq->output_offset;
    return (int8_t)espt_clamp(acc, rq->act_min, rq->act_max);
}

/* Where a pixel's window is read from: k_h runs of k_w * in_c bytes, stride apart. Inside
 * the image (and without dilation along the width) straight from the input, else from its
 * im2col patch. */
typedef struct {
    const int8_t *a;
    uint32_t stride;
} window_t;

static window_t window(const espt_aot_conv_t *p, const int8_t *in, int y, int x, int8_t *patch)
{
    const int in_y0 = y * p->stride_h - p->pad_h;
    const int in_x0 = x * p->stride_w - p->pad_w;
    window_t win;
    if (p->dilation_w == 1 && in_y0 >= 0 && in_y0 + (p->k_h - 1) * p->dilation_h < p->in_h &&
        in_x0 >= 0 && in_x0 + p->k_w <= p->in_w) {
        win.a = in + ((int32_t)in_y0 * p->in_w + in_x0) * p->in_c;
        win.stride = (uint32_t)p->dilation_h * p->in_w * p->in_c;
    } else {
        im2col(p, in, y, x, patch);
        win.a = patch;
        win.stride = (uint32_t)p->k_w * p->in_c;
    }
    return win;
}

/* The accumulators of channels oc.. of one pixel: eight at a time over the blocked
 * weights, then the channels left (rows of n weights) four and one at a time. Returns how
 * many it computed. */
static int dots(const espt_aot_conv_t *p, window_t win, int oc, int32_t acc[ESPT_AOT_BLOCK])
{
    const uint32_t run = (uint32_t)p->k_w * p->in_c, n = run * p->k_h;
    const int8_t *w = p->weights + (size_t)oc * n;
    int r, j, count = 1;
    if (oc + ESPT_AOT_BLOCK <= p->out_c) {
        espt_dot8_s8(win.a, p->k_h, run, win.stride, w, acc);
        return ESPT_AOT_BLOCK;
    }
    if (oc + 4 <= p->out_c) {
        count = 4;
    }
    for (j = 0; j < count; ++j) {
        acc[j] = 0;
    }
    for (r = 0; r < p->k_h; ++r) {
        const int8_t *a = win.a + (size_t)r * win.stride, *wr = w + (size_t)r * run;
        if (count == 4) {
            int32_t t[4];
            espt_dot4_s8(a, wr, wr + n, wr + 2 * (size_t)n, wr + 3 * (size_t)n, run, t);
            for (j = 0; j < 4; ++j) {
                acc[j] += t[j];
            }
        } else {
            acc[0] += espt_dot_s8(a, wr, run);
        }
    }
    return count;
}

/* All output channels of pixel (y, x). */
static void pixel(const espt_aot_conv_t *p, window_t win, int8_t *out)
{
    int32_t acc[ESPT_AOT_BLOCK];
    int oc, j, count;
    for (oc = 0; oc < p->out_c; oc += count) {
        count = dots(p, win, oc, acc);
        for (j = 0; j < count; ++j) {
            out[oc + j] = requant(p, acc[j], oc + j);
        }
    }
}

/* Scratch: one patch; packed weights: a row of patches and one decoded filter. */
static size_t row_scratch_bytes(const espt_aot_conv_t *p)
{
    return p->packed ? ((size_t)p->out_w + 1) * patch_bytes(p) : patch_bytes(p);
}

static void conv_row(const espt_aot_conv_t *p, const int8_t *in, int y, int8_t *out_row,
                     int8_t *scratch)
{
    const uint32_t n = patch_bytes(p);
    int x, oc;
    if (p->packed) {
        /* Channel-major: each filter is decoded once per row. */
        int8_t *w = scratch + (size_t)p->out_w * n;
        for (x = 0; x < p->out_w; ++x) {
            im2col(p, in, y, x, scratch + (size_t)x * n);
        }
        for (oc = 0; oc < p->out_c; ++oc) {
            espt_aot_unpack_row(p->packed, (uint32_t)oc, n, w);
            for (x = 0; x < p->out_w; ++x) {
                out_row[x * p->out_c + oc] = requant(p, espt_dot_s8(scratch + (size_t)x * n, w, n), oc);
            }
        }
        return;
    }
    for (x = 0; x < p->out_w; ++x) {
        pixel(p, window(p, in, y, x, scratch), out_row + x * p->out_c);
    }
}

void espt_aot_conv_s8(const espt_aot_conv_t *p, const int8_t *in, int8_t *out,
                      int row_begin, int row_end, int8_t *scratch)
{
    const int32_t row_bytes = (int32_t)p->out_w * p->out_c;
    int y;
    for (y = row_begin; y < row_end; ++y) {
        conv_row(p, in, y, out + (y - row_begin) * row_bytes, scratch);
    }
}

size_t espt_aot_conv_scratch_bytes(const espt_aot_conv_t *conv)
{
    return row_scratch_bytes(conv);
}

size_t espt_aot_conv_maxpool_scratch_bytes(const espt_aot_conv_t *conv,
                                           const espt_aot_pool_t *pool)
{
    return (size_t)pool->k_h * conv->out_w * conv->out_c + row_scratch_bytes(conv);
}

/* Whether max-then-requantize gives the same bytes (see the top of the file), and the ring
 * of rows (now unused) can hold one int32 per channel. */
static int max_before_requant(const espt_aot_conv_t *conv, const espt_aot_pool_t *pool,
                              size_t ring_bytes)
{
    int oc;
    if (conv->packed || pool->stride_h < pool->k_h || pool->stride_w < pool->k_w ||
        ring_bytes < (size_t)conv->out_c * sizeof(int32_t)) {
        return 0;
    }
    for (oc = 0; oc < conv->out_c; ++oc) {
        if (conv->rq.shift[oc] > 0) {
            return 0;
        }
    }
    return 1;
}

/* m[oc] = max(m[oc], accumulator of channel oc at this pixel) (or = when first). */
static void pixel_max(const espt_aot_conv_t *p, window_t win, int32_t *m, int first)
{
    int32_t acc[ESPT_AOT_BLOCK];
    int oc, j, count;
    for (oc = 0; oc < p->out_c; oc += count) {
        count = dots(p, win, oc, acc);
        for (j = 0; j < count; ++j) {
            if (first || acc[j] > m[oc + j]) {
                m[oc + j] = acc[j];
            }
        }
    }
}

/* Each pool window's conv pixels, max over their accumulators, one requantization. */
static void conv_maxpool_acc(const espt_aot_conv_t *conv, const espt_aot_pool_t *pool,
                             const int8_t *in, int8_t *out, int32_t *m, int8_t *patch)
{
    const int channels = pool->channels;
    int py, px, fy, fx, c;
    for (py = 0; py < pool->out_h; ++py) {
        const int iy0 = py * pool->stride_h - pool->pad_h;
        int fy0, fy1;
        valid_taps(iy0, pool->in_h, pool->k_h, &fy0, &fy1);
        for (px = 0; px < pool->out_w; ++px) {
            const int ix0 = px * pool->stride_w - pool->pad_w;
            int8_t *o = out + ((int32_t)py * pool->out_w + px) * channels;
            int fx0, fx1, first = 1;
            valid_taps(ix0, pool->in_w, pool->k_w, &fx0, &fx1);
            for (fy = fy0; fy < fy1; ++fy) {
                for (fx = fx0; fx < fx1; ++fx) {
                    pixel_max(conv, window(conv, in, iy0 + fy, ix0 + fx, patch), m, first);
                    first = 0;
                }
            }
            for (c = 0; c < channels; ++c) {
                const int32_t v = first ? INT8_MIN : requant(conv, m[c], c);
                o[c] = (int8_t)espt_clamp(v, pool->act_min, pool->act_max);
            }
        }
    }
}

void espt_aot_conv_maxpool_s8(const espt_aot_conv_t *conv, const espt_aot_pool_t *pool,
                              const int8_t *in, int8_t *out, int8_t *rows)
{
    const int32_t row_bytes = (int32_t)conv->out_w * conv->out_c;
    const int slots = pool->k_h < ESPT_AOT_MAX_POOL_ROWS ? pool->k_h : ESPT_AOT_MAX_POOL_ROWS;
    int8_t *scratch = rows + slots * row_bytes;
    int cached[ESPT_AOT_MAX_POOL_ROWS];
    const int channels = pool->channels;
    int py, px, s, c;
    if (max_before_requant(conv, pool, (size_t)slots * (size_t)row_bytes)) {
        conv_maxpool_acc(conv, pool, in, out, (int32_t *)(void *)rows, scratch);
        return;
    }
    for (s = 0; s < ESPT_AOT_MAX_POOL_ROWS; ++s) {
        cached[s] = -1;
    }
    for (py = 0; py < pool->out_h; ++py) {
        const int iy0 = py * pool->stride_h - pool->pad_h;
        int fy0, fy1, fy;
        valid_taps(iy0, pool->in_h, pool->k_h, &fy0, &fy1);
        /* The conv rows this window needs; consecutive rows land in distinct slots. */
        for (fy = fy0; fy < fy1; ++fy) {
            const int r = iy0 + fy;
            const int slot = r % slots;
            if (cached[slot] != r) {
                conv_row(conv, in, r, rows + slot * row_bytes, scratch);
                cached[slot] = r;
            }
        }
        for (px = 0; px < pool->out_w; ++px) {
            const int ix0 = px * pool->stride_w - pool->pad_w;
            int fx0, fx1, fx;
            int8_t *o = out + ((int32_t)py * pool->out_w + px) * channels;
            valid_taps(ix0, pool->in_w, pool->k_w, &fx0, &fx1);
            for (c = 0; c < channels; ++c) {
                int8_t m = INT8_MIN;
                for (fy = fy0; fy < fy1; ++fy) {
                    const int8_t *row = rows + ((iy0 + fy) % slots) * row_bytes;
                    for (fx = fx0; fx < fx1; ++fx) {
                        const int8_t v = row[(ix0 + fx) * channels + c];
                        m = v > m ? v : m;
                    }
                }
                o[c] = (int8_t)espt_clamp(m, pool->act_min, pool->act_max);
            }
        }
    }
}

void espt_aot_unpack_row(const espt_aot_packed_t *w, uint32_t oc, uint32_t n, int8_t *out)
{
    const uint8_t *src = w->indices + (size_t)oc * w->row_bytes;
    const int8_t *cb = w->codebook + (size_t)oc * w->codebook_len;
    uint32_t i;
    if (w->bits == 4) {
        for (i = 0; i + 2 <= n; i += 2) {
            const uint8_t b = *src++;
            out[i] = cb[b & 15u];
            out[i + 1] = cb[b >> 4];
        }
        if (i < n) {
            out[i] = cb[*src & 15u];
        }
    } else {
        const uint32_t mask = (1u << w->bits) - 1u;
        uint32_t bitbuf = 0;
        int have = 0;
        for (i = 0; i < n; ++i) {
            if (have < w->bits) {
                bitbuf |= (uint32_t)(*src++) << have;
                have += 8;
            }
            out[i] = cb[bitbuf & mask];
            bitbuf >>= w->bits;
            have -= w->bits;
        }
    }
}
