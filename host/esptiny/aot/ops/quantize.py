"""QUANTIZE (int8 -> int8 requantize; float32 -> int8 at the model's input) and
DEQUANTIZE (int8 -> float32 at the model's output): PrepareQuantizeReference and
DequantizePrepare. A float-I/O model's engine then takes and returns float32."""
from __future__ import annotations

from .. import quant
from ..steps import float_literal
from .registry import lowers


@lowers("QUANTIZE")
def quantize(low, k: int):
    op = low.g.ops[k]
    y = low.act(k, op.outputs[0])
    if low.tensors[op.inputs[0]].dtype != y.dtype:   # float32 model input
        x = low.float_act(k, op.inputs[0])
        if x.numel != y.numel:
            low.refuse(k, f"input {x.shape} and output {y.shape} differ in size")
        low.elementwise(k, "espt_aot_quantize_f32_s8", "espt_aot_quantize_t", [
            ("scale", float_literal(y.scale)), ("zero_point", y.zero_point)],
            f"QUANTIZE float32 -> int8 {x.shape_str()}", x, y)
        return
    x, y = low.unary(k)
    m, s = quant.requantize_params(x.scale, y.scale)
    low.elementwise(k, "espt_aot_requantize_s8", "espt_aot_requantize_t", [
        ("input_zero_point", x.zero_point), ("output_zero_point", y.zero_point),
        ("multiplier", m), ("shift", s), ("act_min", quant.INT8_MIN), ("act_max", quant.INT8_MAX)],
        f"QUANTIZE (requantize) {x.shape_str()}", x, y)


@lowers("DEQUANTIZE")
def dequantize(low, k: int):
    op = low.g.ops[k]
    x, y = low.act(k, op.inputs[0]), low.float_act(k, op.outputs[0])
    if x.numel != y.numel:
        low.refuse(k, f"input {x.shape} and output {y.shape} differ in size")
    low.elementwise(k, "espt_aot_dequantize_s8_f32", "espt_aot_dequantize_t", [
        ("scale", repr(float(x.scale))), ("zero_point", x.zero_point)],
        f"DEQUANTIZE int8 -> float32 {x.shape_str()}", x, y)
