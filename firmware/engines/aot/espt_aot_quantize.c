/* Quantization steps, bit-exact with TFLite-Micro: QUANTIZE int8 -> int8 and RELU
 * (reference_ops::Requantize, ReluQuantized), QUANTIZE float32 -> int8
 * (reference_ops::AffineQuantize) and DEQUANTIZE int8 -> float32
 * (reference_ops::Dequantize). The float steps use only IEEE arithmetic (no libm): a
 * board without an FPU gets the compiler's soft-float helpers, which round the same way. */
#include "espt_aot.h"
#include "espt_aot_math.h"

void espt_aot_requantize_s8(const espt_aot_requantize_t *p, const int8_t *in, int8_t *out)
{
    uint32_t i;
    for (i = 0; i < p->size; ++i) {
        const int32_t v = espt_mbqm(in[i] - p->input_zero_point, p->multiplier, p->shift) +
                          p->output_zero_point;
        out[i] = (int8_t)espt_clamp(v, p->act_min, p->act_max);
    }
}

/* std::round on a float, half away from zero, without libm: below 2^23 the fraction is
 * v - trunc(v), exact in float; above it every float is an integer. */
static float round_half_away(float v)
{
    float t, d;
    if (!(v > -8388608.0f && v < 8388608.0f)) {
        return v;
    }
    t = (float)(int32_t)v;
    d = v - t;
    if (d >= 0.5f) {
        t += 1.0f;
    } else if (d <= -0.5f) {
        t -= 1.0f;
    }
    return t;
}

void espt_aot_quantize_f32_s8(const espt_aot_quantize_t *p, const float *in, int8_t *out)
{
    uint32_t i;
    for (i = 0; i < p->size; ++i) {
        const float r = round_half_away(in[i] / p->scale);
        /* Far outside int8 either way (NaN too: the C++ cast is undefined there). */
        const int32_t q = r >= 1024.0f ? 1024 : (r >= -1024.0f ? (int32_t)r : -1024);
        out[i] = (int8_t)espt_clamp(q + p->zero_point, -128, 127);
    }
}

void espt_aot_dequantize_s8_f32(const espt_aot_dequantize_t *p, const int8_t *in, float *out)
{
    uint32_t i;
    for (i = 0; i < p->size; ++i) {
        out[i] = (float)(p->scale * (double)(in[i] - p->zero_point));
    }
}
