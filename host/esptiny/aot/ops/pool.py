"""MAX_POOL_2D and AVERAGE_POOL_2D (int8, input and output quantization equal, as
TFLite-Micro requires); pool_params also serves the conv + max pool fusion."""
from __future__ import annotations

from .. import quant
from ..steps import c_struct
from .registry import lowers


def pool_params(low, k: int, x_override=None):
    """(struct, comment, output tensor, window rows) of pool op k."""
    op = low.g.ops[k]
    o = op.options
    x = x_override or low.act(k, op.inputs[0])
    y = low.act(k, op.outputs[0])
    (ih, iw, ic), (oh, ow, oc) = low.nhwc(k, x), low.nhwc(k, y)
    if ic != oc:
        low.refuse(k, f"{ic} input and {oc} output channels")
    low.small(k, window_height=o.filterHeight, window_width=o.filterWidth,
              stride=o.strideH, stride_width=o.strideW)
    if abs(float(x.scale) - float(y.scale)) > 1.0e-6 or x.zero_point != y.zero_point:
        low.refuse(k, "input and output quantization differ (TFLite-Micro refuses it too)")
    if o.padding not in (0, 1):
        low.refuse(k, f"padding {o.padding}")
    same = o.padding == 0
    eh, ph = quant.compute_padding(o.strideH, 1, ih, o.filterHeight, same)
    ew, pw = quant.compute_padding(o.strideW, 1, iw, o.filterWidth, same)
    if (eh, ew) != (oh, ow):
        low.refuse(k, f"output {oh}x{ow} does not match the {eh}x{ew} its padding gives")
    lo, hi = low.activation(k, o.fusedActivationFunction, y)
    struct = c_struct("espt_aot_pool_t", f"l{k}_pool", [
        ("in_h", ih), ("in_w", iw), ("channels", ic), ("out_h", oh), ("out_w", ow),
        ("k_h", o.filterHeight), ("k_w", o.filterWidth), ("stride_h", o.strideH),
        ("stride_w", o.strideW), ("pad_h", ph), ("pad_w", pw), ("act_min", lo), ("act_max", hi)])
    comment = (f"{op.name} {x.shape_str()} -> {y.shape_str()}, {o.filterHeight}x{o.filterWidth} "
               f"window, stride {o.strideH}x{o.strideW}, {'SAME' if same else 'VALID'}")
    return struct, comment, y, o.filterHeight


@lowers("MAX_POOL_2D", "AVERAGE_POOL_2D")
def pool_2d(low, k: int):
    kernel = "espt_aot_max_pool_s8" if low.g.ops[k].name == "MAX_POOL_2D" else "espt_aot_avg_pool_s8"
    struct, comment, y, _ = pool_params(low, k)
    x = low.g.ops[k].inputs[0]
    low.step([k], kernel, comment, [x], [y.index], f"{kernel}(&l{k}_pool, {{in0}}, {{out0}});", [], struct)
