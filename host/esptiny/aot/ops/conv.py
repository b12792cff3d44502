"""CONV_2D (alone or fused with the MAX_POOL_2D that reads it), DEPTHWISE_CONV_2D and
FULLY_CONNECTED: per-channel or per-tensor int8 weights, constants as
PopulateConvolutionQuantizationParams and CalculateOpDataFullyConnected compute them."""
from __future__ import annotations

import numpy as np

from .. import quant
from ..steps import Const, c_struct
from .pool import pool_params
from .registry import lowers


def padding(low, k, o, in_hw, k_hw, out_hw) -> tuple:
    """(pad top, pad left) of a conv or depthwise conv, checked against its output size."""
    if o.padding not in (0, 1):
        low.refuse(k, f"padding {o.padding}")
    same = o.padding == 0
    eh, ph = quant.compute_padding(o.strideH, o.dilationHFactor, in_hw[0], k_hw[0], same)
    ew, pw = quant.compute_padding(o.strideW, o.dilationWFactor, in_hw[1], k_hw[1], same)
    if (eh, ew) != tuple(out_hw):
        low.refuse(k, f"output {out_hw[0]}x{out_hw[1]} does not match the {eh}x{ew} its padding gives")
    return ph, pw


def padding_name(p: int) -> str:
    return "SAME" if p == 0 else "VALID"


def _window_comment(name, x, y, kh, kw, o) -> str:
    return (f"{name} {x.shape_str()} -> {y.shape_str()}, {kh}x{kw} filters, stride "
            f"{o.strideH}x{o.strideW}, {padding_name(o.padding)}, "
            f"{quant.ACTIVATION_NAMES[o.fusedActivationFunction]}")


def _window_op(low, k: int, quant_dim: int, weight_dims: str):
    """(options, input, output, input HWC, output HWC, weights) of a conv or depthwise conv,
    its weights 4-D with the output channels where weight_dims ("OHWI" or "1HWO") says."""
    op = low.g.ops[k]
    x, y = low.act(k, op.inputs[0]), low.act(k, op.outputs[0])
    (ih, iw, ic), (oh, ow, oc) = low.nhwc(k, x), low.nhwc(k, y)
    w = low.filter(k, op.inputs[1], quant_dim, oc)
    lead = 1 if weight_dims == "1HWO" else oc
    if len(w.shape) != 4 or w.shape[0] != lead or w.shape[weight_dims.index("O")] != oc:
        low.refuse(k, f"weights of shape {w.shape} for {oc} output channels")
    return op.options, x, y, (ih, iw, ic), (oh, ow, oc), w


def _window_constants(low, k: int, o, x, y, w, kh: int, kw: int) -> tuple:
    """The checks and constants conv and depthwise share: (pad_h, pad_w, activation range,
    multipliers, shifts)."""
    low.small(k, filter_height=kh, filter_width=kw, stride=o.strideH, stride_width=o.strideW,
              dilation=o.dilationHFactor, dilation_width=o.dilationWFactor)
    ph, pw = padding(low, k, o, x.shape[1:3], (kh, kw), y.shape[1:3])
    act = low.activation(k, o.fusedActivationFunction, y)
    mults, shifts = quant.per_channel_multipliers(x.scale, w.scales, y.scale, y.shape[3])
    return ph, pw, act, mults, shifts


@lowers("CONV_2D")
def conv_2d(low, k: int):
    o, x, y, (ih, iw, ic), (oh, ow, oc), w = _window_op(low, k, 0, "OHWI")
    kh, kw, wc = w.shape[1:]
    if wc != ic:
        low.refuse(k, f"grouped convolution ({ic} input channels, filters of depth {wc})")
    ph, pw, act, mults, shifts = _window_constants(low, k, o, x, y, w, kh, kw)
    p = f"l{k}"
    consts, wexpr, pexpr, pstruct = low.weights(p, w.data, oc, kw * ic)
    rq_consts, rq = low.requant_struct(p, mults, shifts, y, act)
    consts += [low.folded_bias(k, p, w.data, oc, x)] + rq_consts
    struct = pstruct + c_struct("espt_aot_conv_t", f"{p}_conv", [
        ("in_h", ih), ("in_w", iw), ("in_c", ic), ("out_h", oh), ("out_w", ow), ("out_c", oc),
        ("k_h", kh), ("k_w", kw), ("stride_h", o.strideH), ("stride_w", o.strideW),
        ("dilation_h", o.dilationHFactor), ("dilation_w", o.dilationWFactor),
        ("pad_h", ph), ("pad_w", pw), ("input_offset", -x.zero_point), ("weights", wexpr),
        ("packed", pexpr), ("folded_bias", f"{p}_folded_bias"), ("rq", rq)])
    comment = _window_comment("CONV_2D", x, y, kh, kw, o) + (", packed weights" if pstruct else "")
    packed = bool(pstruct)
    window = kh * kw * ic   # espt_aot_conv_scratch_bytes(): im2col patches
    w_scratch = (ow + 1) * window if packed else window
    pool = low.fusable_pool(k)
    if pool is None:
        low.step([k], "espt_aot_conv_s8", comment, [x.index], [y.index],
                 f"espt_aot_conv_s8(&{p}_conv, {{in0}}, {{out0}}, 0, {oh}, {{scratch}});",
                 consts, struct, w_scratch, packed, w.numel)
        return
    pool_struct, pool_comment, z, rows = pool_params(low, pool, y)
    low.step([k, pool], "espt_aot_conv_maxpool_s8", comment + "; then " + pool_comment,
             [x.index], [z.index],
             f"espt_aot_conv_maxpool_s8(&{p}_conv, &l{pool}_pool, {{in0}}, {{out0}}, {{scratch}});",
             consts, struct + pool_struct, rows * ow * oc + w_scratch, packed, w.numel)
    return (pool,)


@lowers("DEPTHWISE_CONV_2D")
def depthwise_conv_2d(low, k: int):
    o, x, y, (ih, iw, ic), (oh, ow, oc), w = _window_op(low, k, 3, "1HWO")
    kh, kw = w.shape[1:3]
    if oc % ic:
        low.refuse(k, f"{oc} output channels for {ic} input channels")
    mult = oc // ic
    if o.depthMultiplier not in (0, mult):
        low.refuse(k, f"depth multiplier {o.depthMultiplier} with {ic} -> {oc} channels")
    ph, pw, act, mults, shifts = _window_constants(low, k, o, x, y, w, kh, kw)
    p = f"l{k}"
    consts = [Const("int8_t", f"{p}_weights", w.data.reshape(-1).astype(np.int64), "weights")]
    bconsts, bexpr = low.bias(k, oc, p)
    rq_consts, rq = low.requant_struct(p, mults, shifts, y, act)
    consts += bconsts + rq_consts
    struct = c_struct("espt_aot_depthwise_t", f"{p}_dw", [
        ("in_h", ih), ("in_w", iw), ("in_c", ic), ("out_h", oh), ("out_w", ow), ("out_c", oc),
        ("k_h", kh), ("k_w", kw), ("stride_h", o.strideH), ("stride_w", o.strideW),
        ("dilation_h", o.dilationHFactor), ("dilation_w", o.dilationWFactor),
        ("pad_h", ph), ("pad_w", pw), ("depth_multiplier", mult), ("input_offset", -x.zero_point),
        ("weights", f"{p}_weights"), ("bias", bexpr), ("rq", rq)])
    low.step([k], "espt_aot_depthwise_conv_s8", _window_comment("DEPTHWISE_CONV_2D", x, y, kh, kw, o),
             [x.index], [y.index], f"espt_aot_depthwise_conv_s8(&{p}_dw, {{in0}}, {{out0}});",
             consts, struct, w_int8=w.numel)


@lowers("FULLY_CONNECTED")
def fully_connected(low, k: int):
    op = low.g.ops[k]
    o = op.options
    x, y = low.act(k, op.inputs[0]), low.act(k, op.outputs[0])
    if o is not None and o.weightsFormat != 0:
        low.refuse(k, "shuffled weights format")
    oc = y.shape[-1] if y.shape else 1
    w = low.filter(k, op.inputs[1], 0, oc)
    if len(w.shape) != 2 or w.shape[0] != oc:
        low.refuse(k, f"weights of shape {w.shape} for {oc} outputs")
    depth = w.shape[1]
    if x.numel % depth or y.numel != (x.numel // depth) * oc:
        low.refuse(k, f"input {x.shape} does not fit weights {w.shape}")
    if np.any(w.zero_points != 0):
        low.refuse(k, "weights with a non-zero zero point")
    activation = o.fusedActivationFunction if o is not None else 0
    act = low.activation(k, activation, y)
    has_bias = len(op.inputs) > 2 and op.inputs[2] >= 0
    if w.scales.size == 1 and has_bias and \
            not quant.fc_bias_scale_ok(x.scale, w.scale, low.tensors[op.inputs[2]].scale, y.scale):
        low.refuse(k, "bias scale differs from input scale x weight scale (TFLite-Micro refuses it too)")
    mults, shifts = quant.per_channel_multipliers(x.scale, w.scales, y.scale, oc)
    p = f"l{k}"
    consts, wexpr, pexpr, pstruct = low.weights(p, w.data, oc)
    rq_consts, rq = low.requant_struct(p, mults, shifts, y, act)
    consts += [low.folded_bias(k, p, w.data, oc, x)] + rq_consts
    struct = pstruct + c_struct("espt_aot_fc_t", f"{p}_fc", [
        ("batches", x.numel // depth), ("in_depth", depth), ("out_c", oc),
        ("weights", wexpr), ("packed", pexpr), ("folded_bias", f"{p}_folded_bias"), ("rq", rq)])
    packed = bool(pstruct)
    comment = (f"FULLY_CONNECTED {x.shape_str()} -> {y.shape_str()}, {quant.ACTIVATION_NAMES[activation]}"
               + (", packed weights" if pstruct else ""))
    low.step([k], "espt_aot_fully_connected_s8", comment, [x.index], [y.index],
             f"espt_aot_fully_connected_s8(&{p}_fc, {{in0}}, {{out0}}, {{scratch}});",
             consts, struct, depth if packed else 0, packed, w.numel)
