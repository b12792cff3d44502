"""MEAN over any set of axes of an int8 tensor of rank up to 4, kept or squeezed:
PrepareMeanOrSumHelper's multiplier with QuantizedMeanOrSum's 1/count folding (quant.py)."""
from __future__ import annotations

import numpy as np

from .. import quant
from ..steps import c_array, c_struct
from .registry import lowers

MAX_COUNT = 1 << 23  # elements per output: the int32 sum cannot overflow below this


@lowers("MEAN")
def mean(low, k: int):
    op = low.g.ops[k]
    x, y = low.act(k, op.inputs[0]), low.act(k, op.outputs[0])
    rank = len(x.shape)
    axes = low.const_ints(k, op.inputs[1], "axis") if len(op.inputs) > 1 else None
    if axes is None:
        low.refuse(k, "no axis tensor")
    resolved = []
    for a in axes.tolist():   # ResolveAxis: negative axes count from the end, duplicates once
        a = a + rank if a < 0 else a
        if not 0 <= a < rank:
            low.refuse(k, f"axis {a} of a rank-{rank} input")
        if a not in resolved:
            resolved.append(a)
    dims = low.dims16(k, x)
    reduce = [0] * (4 - rank) + [1 if a in resolved else 0 for a in range(rank)]
    count = int(np.prod([d for d, r in zip(dims, reduce) if r]))
    if count > MAX_COUNT:
        low.refuse(k, f"{count} elements into each mean (the AOT kernel takes up to {MAX_COUNT})")
    kept = int(np.prod([d for d, r in zip(dims, reduce) if not r]))
    if y.numel != kept:
        low.refuse(k, f"output {y.shape} does not hold the {kept} means of {x.shape} over axes {resolved}")
    base_m, base_s = quant.requantize_params(x.scale, y.scale)
    if base_m and 31 + base_s < 0:
        low.refuse(k, "output scale above 2^31 x input scale (TFLite-Micro's shift would be negative)")
    m, s = quant.mean_params(x.scale, y.scale, count)
    struct = c_struct("espt_aot_mean_t", f"l{k}_mean", [
        ("dims", c_array(dims)), ("reduce", c_array(reduce)), ("count", count),
        ("input_zero_point", x.zero_point), ("output_zero_point", y.zero_point),
        ("multiplier", m), ("shift", s)])
    low.step([k], "espt_aot_mean_s8", f"MEAN {x.shape_str()} -> {y.shape_str()}, axes {sorted(resolved)}",
             [x.index], [y.index], f"espt_aot_mean_s8(&l{k}_mean, {{in0}}, {{out0}});", [], struct)
