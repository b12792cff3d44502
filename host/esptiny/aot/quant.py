"""Quantization constants computed exactly as TFLite-Micro's Prepare computes them.

Each function names the C++ it mirrors (tensorflow/lite/kernels/internal/quantization_util.cc,
tensorflow/lite/kernels/kernel_util.cc, tensorflow/lite/micro/kernels/*_common.cc). Python
floats are IEEE doubles like C++'s double; float32 steps go through numpy.float32.
"""
from __future__ import annotations

import math

import numpy as np

INT8_MIN, INT8_MAX = -128, 127
ACT_NONE, ACT_RELU, ACT_RELU_N1_TO_1, ACT_RELU6 = 0, 1, 2, 3
ACTIVATION_NAMES = {ACT_NONE: "none", ACT_RELU: "relu", ACT_RELU_N1_TO_1: "relu_n1_to_1",
                    ACT_RELU6: "relu6"}


def tflite_round(x: float) -> float:
    """std::round: half away from zero."""
    return math.copysign(math.floor(abs(x) + 0.5), x)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """QuantizeMultiplier (double-rounding build): real = q * 2^(shift - 31)."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = int(tflite_round(q * (1 << 31)))
    assert q_fixed <= (1 << 31)
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    return q_fixed, shift


def quantize_multiplier_smaller_than_one(real: float) -> tuple[int, int]:
    """QuantizeMultiplierSmallerThanOneExp: shift <= 0."""
    assert 0.0 < real < 1.0, real
    q, shift = quantize_multiplier(real)
    assert shift <= 0
    return q, shift


def _quantize_f32(scale: float, zero_point: int, f: float) -> int:
    """kernel_util.cc Quantize(): TfLiteRound(f / scale) in float, plus the zero point."""
    tmp = np.float32(f) / np.float32(scale)
    return zero_point + int(tflite_round(float(tmp)))


def activation_range(activation: int, scale: float, zero_point: int,
                     qmin: int = INT8_MIN, qmax: int = INT8_MAX) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for an int8 output."""
    if activation == ACT_RELU:
        return max(qmin, _quantize_f32(scale, zero_point, 0.0)), qmax
    if activation == ACT_RELU6:
        return (max(qmin, _quantize_f32(scale, zero_point, 0.0)),
                min(qmax, _quantize_f32(scale, zero_point, 6.0)))
    if activation == ACT_RELU_N1_TO_1:
        return (max(qmin, _quantize_f32(scale, zero_point, -1.0)),
                min(qmax, _quantize_f32(scale, zero_point, 1.0)))
    return qmin, qmax


def per_channel_multipliers(input_scale: float, filter_scales, output_scale: float,
                            channels: int) -> tuple[list, list]:
    """PopulateConvolutionQuantizationParams (conv, depthwise) and
    CalculateOpDataFullyConnected: one QuantizeMultiplier(double(in) * double(filter[c]) /
    double(out)) per channel; a single filter scale is broadcast.

    Per-tensor fully connected goes through GetQuantizedConvolutionMultipler, whose source
    at upstream 90b983c takes the product of the two scales in float; the tflite-micro
    wheel's machine code (objdump of _runtime.so: cvtss2sd both scales, mulsd, divsd)
    takes it in double, which is this same formula. The wheel is what runs the tests and
    what a board's build of the current sources computes."""
    scales = [float(np.float32(s)) for s in filter_scales]
    mults, shifts = [], []
    for c in range(channels):
        s = scales[c] if len(scales) > 1 else scales[0]
        m, sh = quantize_multiplier(float(np.float32(input_scale)) * s / float(np.float32(output_scale)))
        mults.append(m)
        shifts.append(sh)
    return mults, shifts


def fc_bias_scale_ok(input_scale: float, filter_scale: float, bias_scale: float,
                     output_scale: float) -> bool:
    """The check GetQuantizedConvolutionMultipler makes when there is a bias."""
    product = float(np.float32(input_scale)) * float(np.float32(filter_scale))
    return abs(product - float(np.float32(bias_scale))) / float(np.float32(output_scale)) <= 0.02


def add_params(scale1: float, scale2: float, scale_out: float) -> dict:
    """CalculateOpDataAdd for int8: inputs rescaled to a common scale at left_shift 20."""
    s1, s2, so = (float(np.float32(s)) for s in (scale1, scale2, scale_out))
    left_shift = 20
    twice_max = 2 * max(s1, s2)
    m1, sh1 = quantize_multiplier_smaller_than_one(s1 / twice_max)
    m2, sh2 = quantize_multiplier_smaller_than_one(s2 / twice_max)
    mo, sho = quantize_multiplier_smaller_than_one(twice_max / ((1 << left_shift) * so))
    return {"left_shift": left_shift, "input1_multiplier": m1, "input1_shift": sh1,
            "input2_multiplier": m2, "input2_shift": sh2,
            "output_multiplier": mo, "output_shift": sho}


def softmax_params(beta: float, input_scale: float) -> dict:
    """SoftmaxPrepare for int8: PreprocessSoftmaxScaling (5 integer bits) and
    CalculateInputRadius."""
    integer_bits = 5
    real = min(float(np.float32(beta)) * float(np.float32(input_scale)) * (1 << (31 - integer_bits)),
               (1 << 31) - 1.0)
    assert real > 1.0, real
    mult, left_shift = quantize_multiplier(real)
    assert left_shift >= 0
    return {"input_multiplier": mult, "input_left_shift": left_shift,
            "diff_min": -input_radius(integer_bits, left_shift)}


def _d(x: float) -> float:
    """A tensor's float32 scale as the double C++ promotes it to."""
    return float(np.float32(x))


def requantize_params(input_scale: float, output_scale: float) -> tuple[int, int]:
    """PrepareQuantizeReference for int8 -> int8: double(in) / double(out)."""
    return quantize_multiplier(_d(input_scale) / _d(output_scale))


def relu_params(input_scale: float, output_scale: float, output_zero_point: int) -> dict:
    """CalculateReluOpData<int8_t> (activations_common.cc). The source divides the scales
    in float; the wheel's ReluPrepare divides them in double (cvtss2sd, divsd), as here.
    act_min = max(-128, zp + roundf(0 / scale)) = max(-128, zp); act_max = 127."""
    m, s = quantize_multiplier(_d(input_scale) / _d(output_scale))
    return {"multiplier": m, "shift": s, "act_min": max(INT8_MIN, output_zero_point),
            "act_max": INT8_MAX}


def float_to_quantized(value: float, scale: float, zero_point: int) -> int:
    """FloatToQuantizedType<int8_t> (micro_utils.h): round(value / scale) in float, plus
    the zero point, clamped to int8."""
    q = int(tflite_round(float(np.float32(value) / np.float32(scale)))) + zero_point
    return min(INT8_MAX, max(INT8_MIN, q))


def relu6_range(input_scale: float, input_zero_point: int) -> tuple[int, int]:
    """Relu6Prepare for int8: the clamp bounds 0 and 6 on the *input's* scale (TFLite-Micro
    ignores the output's quantization here)."""
    return input_zero_point, float_to_quantized(6.0, input_scale, input_zero_point)


def leaky_relu_params(input_scale: float, alpha: float, output_scale: float) -> dict:
    """CalculateOpDataLeakyRelu. The source multiplies in float; the wheel's machine code
    takes double(in) * double(alpha) / double(out) and double(in) / double(out)."""
    ma, sa = quantize_multiplier(_d(input_scale) * _d(alpha) / _d(output_scale))
    mi, si = quantize_multiplier(_d(input_scale) / _d(output_scale))
    return {"alpha_multiplier": ma, "alpha_shift": sa,
            "identity_multiplier": mi, "identity_shift": si}


def downscale_multiplier_int16(m: int) -> int:
    """DownScaleInt32ToInt16Multiplier (quantization_util.cc)."""
    assert m >= 0
    if m >= (1 << 31) - 1 - (1 << 15):
        return (1 << 15) - 1
    return (m + (1 << 15)) >> 16


def hard_swish_params(input_scale: float, output_scale: float) -> dict:
    """HardSwishPrepare (hard_swish_common.cc): hires_input_scale = (1/128) * input_scale
    in float; the wheel then divides in double (divsd) by the output scale and by
    reluish_scale = 3/32768 (both as in the source up to that promotion)."""
    hires = float(np.float32(1.0 / 128.0) * np.float32(input_scale))
    reluish_scale = float(np.float32(3.0) / np.float32(32768.0))
    mo, eo = quantize_multiplier(hires / _d(output_scale))
    mr, er = quantize_multiplier(hires / reluish_scale)
    return {"output_multiplier": downscale_multiplier_int16(mo), "output_exponent": eo,
            "reluish_multiplier": downscale_multiplier_int16(mr), "reluish_exponent": er}


def sigmoid_params(input_scale: float) -> dict:
    """CalculateArithmeticOpDataLogistic and tanh's CalculateArithmeticOpData for int8:
    4 integer bits; the multiplier from frexp and TfLiteRound without QuantizeMultiplier's
    carry (a 2^31 there would overflow the C++ cast: sigmoid_params_ok checks it)."""
    integer_bits = 4
    real = _d(input_scale) * float(1 << (31 - integer_bits))
    q, left_shift = math.frexp(real)
    mult = int(tflite_round(q * (1 << 31)))
    return {"input_multiplier": mult, "input_left_shift": left_shift,
            "input_range_radius": input_radius(integer_bits, left_shift)}


def input_radius(integer_bits: int, left_shift: int, total_signed_bits: int = 31) -> int:
    """CalculateInputRadius (quantization_util.cc)."""
    assert left_shift >= 0, left_shift
    return math.floor(1.0 * ((1 << integer_bits) - 1) * (1 << (total_signed_bits - integer_bits))
                      / (1 << left_shift))


def mul_params(scale1: float, scale2: float, scale_out: float) -> tuple[int, int]:
    """CalculateOpDataMul: double(in1) * double(in2) / double(out)."""
    return quantize_multiplier(_d(scale1) * _d(scale2) / _d(scale_out))


def mean_params(input_scale: float, output_scale: float, count: int) -> tuple[int, int]:
    """PrepareMeanOrSumHelper's QuantizeMultiplier(double(in) / double(out)), then the
    1/count folding QuantizedMeanOrSum (reference/reduce.h) does at each Eval:
    shift = min(floor(log2(count)), 32, 31 + output_shift); multiplier = (multiplier <<
    shift) / count in int64, truncated; output_shift -= shift."""
    m, s = quantize_multiplier(_d(input_scale) / _d(output_scale))
    assert count >= 1
    shift = min(count.bit_length() - 1, 32, 31 + s)
    m = (m << shift) // count  # both non-negative: floor is the C++ truncation
    return m, s - shift


def compute_padding(stride: int, dilation: int, in_size: int, filter_size: int,
                    same: bool) -> tuple[int, int]:
    """ComputeOutSize + ComputePaddingWithOffset (padding.h): (output size, padding)."""
    effective = (filter_size - 1) * dilation + 1
    out = (in_size + stride - 1) // stride if same else (in_size + stride - effective) // stride
    total = max((out - 1) * stride + effective - in_size, 0)
    return out, total // 2
