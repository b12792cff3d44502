"""Activations on int8: SOFTMAX (SoftmaxPrepare), RELU (CalculateReluOpData), RELU6
(Relu6Prepare), LEAKY_RELU (CalculateOpDataLeakyRelu), HARD_SWISH (HardSwishPrepare),
LOGISTIC and TANH (their CalculateArithmeticOpData); constants in quant.py."""
from __future__ import annotations

import numpy as np

from .. import quant
from ..steps import c_struct
from .registry import lowers


@lowers("SOFTMAX")
def softmax(low, k: int):
    op = low.g.ops[k]
    x, y = low.act(k, op.inputs[0]), low.act(k, op.outputs[0])
    if y.zero_point != -128 or np.float32(y.scale) != np.float32(1.0 / 256):
        low.refuse(k, "int8 softmax output must have scale 1/256 and zero point -128 (as TFLite-Micro requires)")
    if x.shape != y.shape:
        low.refuse(k, f"input {x.shape} and output {y.shape} differ")
    beta = float(op.options.beta) if op.options is not None else 1.0
    if not beta * x.scale * (1 << 26) > 1.0:
        low.refuse(k, f"beta {beta:g} x input scale {x.scale:g} is too small (TFLite-Micro aborts on it)")
    depth = x.shape[-1]
    struct = c_struct("espt_aot_softmax_t", f"l{k}_softmax", [
        ("rows", x.numel // depth), ("depth", depth), *quant.softmax_params(beta, x.scale).items()])
    low.step([k], "espt_aot_softmax_s8", f"SOFTMAX {x.shape_str()}, beta {beta:g}",
             [x.index], [y.index], f"espt_aot_softmax_s8(&l{k}_softmax, {{in0}}, {{out0}});", [], struct)


@lowers("RELU")
def relu(low, k: int):
    x, y = low.unary(k)
    p = quant.relu_params(x.scale, y.scale, y.zero_point)
    low.elementwise(k, "espt_aot_requantize_s8", "espt_aot_requantize_t", [
        ("input_zero_point", x.zero_point), ("output_zero_point", y.zero_point),
        ("multiplier", p["multiplier"]), ("shift", p["shift"]),
        ("act_min", p["act_min"]), ("act_max", p["act_max"])],
        f"RELU {x.shape_str()} (requantize, clamp at the output zero point)", x, y)


@lowers("RELU6")
def relu6(low, k: int):
    x, y = low.unary(k)
    lo, hi = quant.relu6_range(x.scale, x.zero_point)
    low.elementwise(k, "espt_aot_clamp_s8", "espt_aot_clamp_t", [("lo", lo), ("hi", hi)],
                    f"RELU6 {x.shape_str()} (clamp to [{lo}, {hi}], the input's 0 and 6)", x, y)


@lowers("LEAKY_RELU")
def leaky_relu(low, k: int):
    x, y = low.unary(k)
    alpha = float(np.float32(low.g.ops[k].options.alpha))
    if not alpha >= 0.0:
        # TFLite-Micro's kernels disagree across versions on a negative alpha's sign handling.
        low.refuse(k, f"alpha {alpha:g} (the AOT engine compiles alpha >= 0)")
    p = quant.leaky_relu_params(x.scale, alpha, y.scale)
    low.elementwise(k, "espt_aot_leaky_relu_s8", "espt_aot_leaky_relu_t", [
        ("input_zero_point", x.zero_point), ("output_zero_point", y.zero_point), *p.items()],
        f"LEAKY_RELU {x.shape_str()}, alpha {alpha:g}", x, y)


@lowers("HARD_SWISH")
def hard_swish(low, k: int):
    x, y = low.unary(k)
    p = quant.hard_swish_params(x.scale, y.scale)
    if p["output_exponent"] > 0:
        low.refuse(k, "output scale below input scale / 128 (TFLite-Micro refuses it too)")
    # The kernel's 16-bit RoundingDivideByPOT takes exponents 0..15.
    if p["output_exponent"] < -15 or p["reluish_exponent"] < -15:
        low.refuse(k, f"input scale {x.scale:g} and output scale {y.scale:g} need a shift beyond 15 bits")
    low.elementwise(k, "espt_aot_hard_swish_s8", "espt_aot_hard_swish_t", [
        ("input_zero_point", x.zero_point), ("output_zero_point", y.zero_point), *p.items()],
        f"HARD_SWISH {x.shape_str()}", x, y)


@lowers("LOGISTIC", "TANH")
def sigmoid(low, k: int):
    name = low.g.ops[k].name
    x, y = low.unary(k)
    p = quant.sigmoid_params(x.scale)
    if p["input_multiplier"] >= 1 << 31 or p["input_left_shift"] < 0:
        low.refuse(k, f"input scale {x.scale:g} is outside what TFLite-Micro's int8 {name} handles")
    if name == "LOGISTIC" and y.zero_point != -128:
        low.refuse(k, "int8 LOGISTIC output must have zero point -128 (as TFLite-Micro requires)")
    low.elementwise(k, f"espt_aot_{name.lower()}_s8", "espt_aot_sigmoid_t", [
        ("input_zero_point", x.zero_point), *p.items()], f"{name} {x.shape_str()}", x, y)
