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
    """PopulateConvolutionQuantizationParams (and FC's per-channel path): one
    QuantizeMultiplier(double(in) * double(filter[c]) / double(out)) per channel; a single
    filter scale is broadcast."""
    scales = [float(np.float32(s)) for s in filter_scales]
    mults, shifts = [], []
    for c in range(channels):
        s = scales[c] if len(scales) > 1 else scales[0]
        m, sh = quantize_multiplier(float(np.float32(input_scale)) * s / float(np.float32(output_scale)))
        mults.append(m)
        shifts.append(sh)
    return mults, shifts


def fc_per_tensor_multiplier(input_scale: float, filter_scale: float, output_scale: float) -> tuple[int, int]:
    """GetQuantizedConvolutionMultipler: the product of the two scales is taken in float."""
    product = np.float32(input_scale) * np.float32(filter_scale)
    return quantize_multiplier(float(product) / float(np.float32(output_scale)))


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
    radius = math.floor(1.0 * ((1 << integer_bits) - 1) * (1 << (31 - integer_bits)) / (1 << left_shift))
    return {"input_multiplier": mult, "input_left_shift": left_shift, "diff_min": -int(radius)}


def requantize_params(input_scale: float, output_scale: float) -> tuple[int, int]:
    """PrepareQuantizeReference for int8 -> int8."""
    return quantize_multiplier(float(np.float32(input_scale)) / float(np.float32(output_scale)))


def compute_padding(stride: int, dilation: int, in_size: int, filter_size: int,
                    same: bool) -> tuple[int, int]:
    """ComputeOutSize + ComputePaddingWithOffset (padding.h): (output size, padding)."""
    effective = (filter_size - 1) * dilation + 1
    out = (in_size + stride - 1) // stride if same else (in_size + stride - effective) // stride
    total = max((out - 1) * stride + effective - in_size, 0)
    return out, total // 2
