/* The AOT engine's kernel library: int8 layers, bit-exact with TFLite-Micro's reference
 * kernels (tensorflow/lite/kernels/internal/reference/integer_ops/).
 *
 * `esptiny export --engine aot` turns a .tflite model into model_aot.c: const weights and
 * requantization constants (computed offline exactly as TFLite-Micro's Prepare does), one
 * parameter struct per layer, and one call per layer into these functions, on one static
 * arena whose offsets were planned offline. No heap, no interpreter, no flatbuffer.
 *
 * Tensors are NHWC int8 (float32 only at a float model's edges: QUANTIZE in, DEQUANTIZE
 * out). Weights are [out_c][k_h][k_w][in_c] (conv), [1][k_h][k_w][out_c]
 * (depthwise) and [out_c][in] (fully connected), as in the .tflite file, or packed k-bit
 * indices into a per-channel codebook (clustered models; see espt_aot_packed_t). */
#ifndef ESPT_AOT_H
#define ESPT_AOT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Weights stored as k-bit indices into a per-output-channel codebook: row `oc` holds the
 * indices of output channel oc's weights, least significant bits first, starting on a
 * byte boundary (row_bytes each); codebook row oc has `codebook_len` int8 values. */
typedef struct {
    const uint8_t *indices;
    const int8_t *codebook;
    uint16_t row_bytes;
    uint8_t bits;          /* 1..7 */
    uint8_t codebook_len;  /* entries per channel, at most 1 << bits */
} espt_aot_packed_t;

/* Output stage shared by conv, depthwise and fully connected: per-channel multiplier and
 * shift (QuantizeMultiplier's), output zero point and the fused activation's range. */
typedef struct {
    const int32_t *multiplier;
    const int8_t *shift;
    int32_t output_offset;
    int32_t act_min, act_max;
} espt_aot_requant_t;

typedef struct {
    uint16_t in_h, in_w, in_c;
    uint16_t out_h, out_w, out_c;
    uint8_t k_h, k_w, stride_h, stride_w, dilation_h, dilation_w;
    uint16_t pad_h, pad_w;
    int32_t input_offset;         /* minus the input zero point */
    const int8_t *weights;        /* NULL when packed */
    const espt_aot_packed_t *packed;
    /* Per channel: bias + input_offset * sum of the channel's weights, folded at export. */
    const int32_t *folded_bias;
    espt_aot_requant_t rq;
} espt_aot_conv_t;

typedef struct {
    uint16_t in_h, in_w, in_c;
    uint16_t out_h, out_w, out_c;  /* out_c = in_c * depth_multiplier */
    uint8_t k_h, k_w, stride_h, stride_w, dilation_h, dilation_w;
    uint16_t pad_h, pad_w;
    uint16_t depth_multiplier;
    int32_t input_offset;
    const int8_t *weights;
    const int32_t *bias;
    espt_aot_requant_t rq;
} espt_aot_depthwise_t;

typedef struct {
    uint32_t batches, in_depth, out_c;
    const int8_t *weights;
    const espt_aot_packed_t *packed;
    const int32_t *folded_bias;   /* bias + input_offset * sum of the weights, per output */
    espt_aot_requant_t rq;
} espt_aot_fc_t;

typedef struct {
    uint16_t in_h, in_w, channels;
    uint16_t out_h, out_w;
    uint8_t k_h, k_w, stride_h, stride_w;
    uint16_t pad_h, pad_w;
    int32_t act_min, act_max;
} espt_aot_pool_t;

typedef struct {
    uint32_t rows, depth;
    int32_t input_multiplier;
    int32_t input_left_shift;
    int32_t diff_min;
} espt_aot_softmax_t;

/* Broadcasting of a binary op over 4-D shapes: the output dims and each input's strides
 * (0 along a dimension it broadcasts); NULL strides: both inputs have the output's shape. */
typedef struct {
    uint16_t dims[4];
    const uint32_t *strides1, *strides2;
} espt_aot_broadcast_t;

typedef struct {
    uint32_t size;
    int32_t input1_offset, input2_offset, output_offset;
    int32_t input1_multiplier, input2_multiplier, output_multiplier;
    int32_t input1_shift, input2_shift, output_shift;  /* <= 0, right shifts */
    int32_t left_shift;
    int32_t act_min, act_max;
    espt_aot_broadcast_t bcast;
} espt_aot_add_t;

typedef struct {
    uint32_t size;
    int32_t input1_offset, input2_offset, output_offset;
    int32_t output_multiplier, output_shift;
    int32_t act_min, act_max;
    espt_aot_broadcast_t bcast;
} espt_aot_mul_t;

/* out = clamp(output_zero_point + MultiplyByQuantizedMultiplier(in - input_zero_point)):
 * QUANTIZE int8 -> int8 (range -128..127) and RELU (range zero point..127). */
typedef struct {
    uint32_t size;
    int32_t input_zero_point, output_zero_point;
    int32_t multiplier, shift;
    int32_t act_min, act_max;
} espt_aot_requantize_t;

/* RELU6: clamp to [lo, hi], the input's quantized 0 and 6 (no rescaling). */
typedef struct {
    uint32_t size;
    int32_t lo, hi;
} espt_aot_clamp_t;

typedef struct {
    uint32_t size;
    int32_t input_zero_point, output_zero_point;
    int32_t identity_multiplier, identity_shift;  /* x >= 0 */
    int32_t alpha_multiplier, alpha_shift;        /* x < 0 */
} espt_aot_leaky_relu_t;

/* HARD_SWISH: 16-bit fixed-point multipliers (Q0.15) and their exponents. */
typedef struct {
    uint32_t size;
    int32_t input_zero_point, output_zero_point;
    int16_t output_multiplier, reluish_multiplier;
    int32_t output_exponent, reluish_exponent;
} espt_aot_hard_swish_t;

/* LOGISTIC and TANH: the input rescaled to Q4.27; outside the radius the output saturates. */
typedef struct {
    uint32_t size;
    int32_t input_zero_point, input_range_radius;
    int32_t input_multiplier, input_left_shift;
} espt_aot_sigmoid_t;

/* QUANTIZE float32 -> int8 and DEQUANTIZE int8 -> float32 at the model's edges. */
typedef struct {
    uint32_t size;
    float scale;
    int32_t zero_point;
} espt_aot_quantize_t;

typedef struct {
    uint32_t size;
    double scale;   /* the tensor's float scale, promoted as TFLite-Micro promotes it */
    int32_t zero_point;
} espt_aot_dequantize_t;

/* MEAN over the axes flagged in `reduce` of a 4-D int8 tensor (rank padded with leading
 * 1s); multiplier and shift already fold 1/count as TFLite-Micro's Eval does. */
typedef struct {
    uint16_t dims[4];
    uint8_t reduce[4];
    uint32_t count;                 /* elements averaged into each output */
    int32_t input_zero_point, output_zero_point;
    int32_t multiplier, shift;
} espt_aot_mean_t;

/* PAD / PADV2: out has dims out_dims; the input lands at offset `before` in each dim. */
typedef struct {
    uint16_t in_dims[4], out_dims[4];
    uint16_t before[4];
    int8_t value;
} espt_aot_pad_t;

#define ESPT_AOT_MAX_CONCAT 10  /* kMaxInputNum in TFLite-Micro's concatenation.cc */

/* CONCATENATION: `outer` blocks; in each, input i contributes inner_bytes[i] bytes. */
typedef struct {
    uint32_t outer;
    uint32_t inputs;
    uint32_t inner_bytes[ESPT_AOT_MAX_CONCAT];
} espt_aot_concat_t;

/* STRIDED_SLICE on a 4-D view: count[d] elements along d, step[d] input elements apart
 * (negative for a reversed slice), starting at input element `start`. */
typedef struct {
    uint32_t start;
    uint16_t count[4];
    int32_t step[4];
} espt_aot_strided_slice_t;

/* Conv 2D. Output rows [row_begin, row_end) go to out (row row_begin first). scratch holds
 * espt_aot_conv_scratch_bytes(): one window (k_h * k_w * in_c bytes), or with packed
 * weights out_w + 1 of them (a row of windows and one decoded filter). */
void espt_aot_conv_s8(const espt_aot_conv_t *p, const int8_t *in, int8_t *out,
                      int row_begin, int row_end, int8_t *scratch);
size_t espt_aot_conv_scratch_bytes(const espt_aot_conv_t *p);

/* Conv 2D then max pool, without the conv output: it computes only the conv rows a pool
 * window needs, into `rows` (pool->k_h conv rows of out_w * out_c bytes) followed by the
 * conv's own scratch: espt_aot_conv_maxpool_scratch_bytes() in all. */
void espt_aot_conv_maxpool_s8(const espt_aot_conv_t *conv, const espt_aot_pool_t *pool,
                              const int8_t *in, int8_t *out, int8_t *rows);
size_t espt_aot_conv_maxpool_scratch_bytes(const espt_aot_conv_t *conv,
                                           const espt_aot_pool_t *pool);

void espt_aot_depthwise_conv_s8(const espt_aot_depthwise_t *p, const int8_t *in, int8_t *out);

/* Fully connected; scratch holds in_depth bytes when the weights are packed. */
void espt_aot_fully_connected_s8(const espt_aot_fc_t *p, const int8_t *in, int8_t *out,
                                 int8_t *scratch);

void espt_aot_max_pool_s8(const espt_aot_pool_t *p, const int8_t *in, int8_t *out);
void espt_aot_avg_pool_s8(const espt_aot_pool_t *p, const int8_t *in, int8_t *out);
void espt_aot_softmax_s8(const espt_aot_softmax_t *p, const int8_t *in, int8_t *out);
void espt_aot_add_s8(const espt_aot_add_t *p, const int8_t *in1, const int8_t *in2, int8_t *out);
void espt_aot_mul_s8(const espt_aot_mul_t *p, const int8_t *in1, const int8_t *in2, int8_t *out);

void espt_aot_requantize_s8(const espt_aot_requantize_t *p, const int8_t *in, int8_t *out);
void espt_aot_clamp_s8(const espt_aot_clamp_t *p, const int8_t *in, int8_t *out);
void espt_aot_leaky_relu_s8(const espt_aot_leaky_relu_t *p, const int8_t *in, int8_t *out);
void espt_aot_hard_swish_s8(const espt_aot_hard_swish_t *p, const int8_t *in, int8_t *out);
void espt_aot_logistic_s8(const espt_aot_sigmoid_t *p, const int8_t *in, int8_t *out);
void espt_aot_tanh_s8(const espt_aot_sigmoid_t *p, const int8_t *in, int8_t *out);

void espt_aot_quantize_f32_s8(const espt_aot_quantize_t *p, const float *in, int8_t *out);
void espt_aot_dequantize_s8_f32(const espt_aot_dequantize_t *p, const int8_t *in, float *out);

void espt_aot_mean_s8(const espt_aot_mean_t *p, const int8_t *in, int8_t *out);
void espt_aot_pad_s8(const espt_aot_pad_t *p, const int8_t *in, int8_t *out);
/* in[i] for i < p->inputs; the output must not overlap any input. */
void espt_aot_concat_s8(const espt_aot_concat_t *p, const int8_t *const *in, int8_t *out);
void espt_aot_strided_slice_s8(const espt_aot_strided_slice_t *p, const int8_t *in, int8_t *out);

/* Decode output channel oc's row of packed weights (n values) into out. */
void espt_aot_unpack_row(const espt_aot_packed_t *w, uint32_t oc, uint32_t n, int8_t *out);

#ifdef __cplusplus
}
#endif
#endif
