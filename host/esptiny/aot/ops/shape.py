"""Ops that move bytes: RESHAPE, EXPAND_DIMS and SQUEEZE (aliases: same bytes, new shape,
no code), PAD and PADV2 (PadPrepare), CONCATENATION (ConcatenationPrepare: no
rescaling), STRIDED_SLICE (StridedSlicePrepare and the index logic of
strided_slice_logic.h)."""
from __future__ import annotations

import numpy as np

from ..steps import Const, c_array, c_struct
from .registry import lowers

MAX_CONCAT = 10  # ESPT_AOT_MAX_CONCAT, TFLite-Micro's kMaxInputNum


@lowers("RESHAPE", "EXPAND_DIMS", "SQUEEZE")
def alias(low, k: int):
    op = low.g.ops[k]
    x, y = low.act(k, op.inputs[0]), low.act(k, op.outputs[0])
    if x.numel != y.numel:
        low.refuse(k, f"{x.shape} -> {y.shape} changes the element count")
    low.alias[y.index] = x.index   # same bytes, new shape: no code, no copy


@lowers("PAD", "PADV2")
def pad(low, k: int):
    op = low.g.ops[k]
    x, y = low.act(k, op.inputs[0]), low.act(k, op.outputs[0])
    rank = len(x.shape)
    pads = low.const_ints(k, op.inputs[1], "paddings") if len(op.inputs) > 1 else None
    if pads is None or pads.size != 2 * rank or len(y.shape) != rank:
        low.refuse(k, f"paddings for a rank-{rank} input must be {rank}x2")
    pads = pads.reshape(rank, 2)
    if np.any(pads < 0):
        low.refuse(k, "negative padding")
    if tuple(int(d) for d in np.asarray(x.shape) + pads.sum(axis=1)) != tuple(y.shape):
        low.refuse(k, f"{x.shape} padded by {pads.tolist()} is not {y.shape}")
    value = y.zero_point
    if len(op.inputs) > 2 and op.inputs[2] >= 0:   # PADV2's constant
        c = low.const_int8(k, op.inputs[2])
        if c is None or c.numel != 1:
            low.refuse(k, "its pad value is not one constant int8 value")
        if c.zero_point != y.zero_point or np.float32(c.scale) != np.float32(y.scale):
            low.refuse(k, "pad value and output quantization differ (TFLite-Micro refuses it too)")
        value = int(c.data.reshape(-1)[0])
    before = (0,) * (4 - rank) + tuple(int(p) for p in pads[:, 0])
    struct = c_struct("espt_aot_pad_t", f"l{k}_pad", [
        ("in_dims", c_array(low.dims16(k, x))), ("out_dims", c_array(low.dims16(k, y))),
        ("before", c_array(before)), ("value", value)])
    low.step([k], "espt_aot_pad_s8", f"{op.name} {x.shape_str()} -> {y.shape_str()}, value {value}",
             [x.index], [y.index], f"espt_aot_pad_s8(&l{k}_pad, {{in0}}, {{out0}});", [], struct)


@lowers("CONCATENATION")
def concatenation(low, k: int):
    op = low.g.ops[k]
    o = op.options
    y = low.act(k, op.outputs[0])
    if o.fusedActivationFunction != 0:
        low.refuse(k, "a fused activation (TFLite-Micro refuses it too)")
    if not 1 <= len(op.inputs) <= MAX_CONCAT:
        low.refuse(k, f"{len(op.inputs)} inputs (TFLite-Micro takes 1 to {MAX_CONCAT})")
    rank = len(y.shape)
    axis = o.axis + rank if o.axis < 0 else o.axis
    if not 0 <= axis < rank:
        low.refuse(k, f"axis {o.axis} of a rank-{rank} output")
    ins, consts, exprs, inner = [], [], [], []
    for n, i in enumerate(op.inputs):
        t = low.const_int8(k, i)
        if t is not None:
            name = f"l{k}_input{n + 1}"
            consts.append(Const("int8_t", name, t.data.reshape(-1).astype(np.int64), "weights"))
            exprs.append(name)
        else:
            t = low.act(k, i)
            exprs.append(f"{{in{len(ins)}}}")
            ins.append(i)
        if np.float32(t.scale) != np.float32(y.scale) or t.zero_point != y.zero_point:
            low.refuse(k, f"input '{t.name}' is quantized unlike the output (TFLite-Micro refuses it too)")
        if len(t.shape) != rank or any(a != b for d, (a, b) in enumerate(zip(t.shape, y.shape)) if d != axis):
            low.refuse(k, f"input {t.shape} does not fit output {y.shape} along axis {axis}")
        inner.append(int(np.prod(t.shape[axis:])))
    if sum(inner) != int(np.prod(y.shape[axis:])):
        low.refuse(k, f"inputs do not add up to output {y.shape} along axis {axis}")
    struct = c_struct("espt_aot_concat_t", f"l{k}_concat", [
        ("outer", int(np.prod(y.shape[:axis]))), ("inputs", len(inner)), ("inner_bytes", c_array(inner))])
    shapes = " + ".join(low.tensors[i].shape_str() for i in op.inputs)
    low.step([k], "espt_aot_concat_s8", f"CONCATENATION {shapes} -> {y.shape_str()}, axis {axis}",
             ins, [y.index],
             f"espt_aot_concat_s8(&l{k}_concat, (const int8_t *const[]){{{{ {', '.join(exprs)} }}}}, {{out0}});",
             consts, struct)


def _start_for_axis(begin: int, stride: int, masked: bool, size: int) -> int:
    """strided_slice::StridedSliceStartForAxis."""
    start = begin + size if begin < 0 else begin
    start = min(max(start, 0), size) if stride > 0 else min(max(start, -1), size - 1)
    if masked:
        start = 0 if stride > 0 else size - 1
    return start


def _end_for_axis(end: int, stride: int, masked: bool, shrink: bool, start: int, size: int) -> int:
    """strided_slice::StridedSliceEndForAxis (params.offset is never set by TFLite-Micro)."""
    if shrink:
        return start if start >= size else start + 1
    end = end + size if end < 0 else end
    end = min(max(end, 0), size) if stride > 0 else min(max(end, -1), size - 1)
    if masked:
        end = size if stride > 0 else -1
    return end


@lowers("STRIDED_SLICE")
def strided_slice(low, k: int):
    op = low.g.ops[k]
    o = op.options
    x, y = low.act(k, op.inputs[0]), low.act(k, op.outputs[0])
    if len(op.inputs) != 4:
        low.refuse(k, f"{len(op.inputs)} inputs")
    begin, end, strides = (low.const_ints(k, op.inputs[n], what) for n, what in
                           ((1, "begin"), (2, "end"), (3, "strides")))
    rank = len(x.shape)
    if not begin.size == end.size == strides.size == rank:
        low.refuse(k, f"begin, end and strides for a rank-{rank} input must have {rank} values")
    if o.ellipsisMask or o.newAxisMask or getattr(o, "offset", False):
        low.refuse(k, "ellipsis, new-axis or offset masks (TFLite-Micro ignores them)")
    if np.any(strides == 0):
        low.refuse(k, "a zero stride")
    dims = low.dims16(k, x)
    elem_stride = [int(np.prod(dims[d + 1:])) for d in range(4)]
    pad = 4 - rank
    start_off, counts, steps, kept = 0, [], [], []
    for d in range(4):
        if d < pad:   # StridedSlicePadIndices: leading dims taken whole
            counts.append(1)
            steps.append(0)
            continue
        a = d - pad
        s = int(strides[a])
        shrink = bool(o.shrinkAxisMask & (1 << a))
        start = _start_for_axis(int(begin[a]), s, bool(o.beginMask & (1 << a)), dims[d])
        stop = _end_for_axis(int(end[a]), s, bool(o.endMask & (1 << a)), shrink, start, dims[d])
        n = len(range(start, stop, s))
        counts.append(n)
        steps.append(s * elem_stride[d])
        start_off += max(start, 0) * elem_stride[d] if n else 0
        if not shrink:
            kept.append(n)
    if tuple(kept) != tuple(y.shape) or int(np.prod(counts)) != y.numel:
        low.refuse(k, f"the slice of {x.shape} has shape {tuple(kept)}, not the output's {y.shape}")
    # Every element the kernel reads lies inside the input (a bug otherwise).
    lo = start_off + sum((n - 1) * st for n, st in zip(counts, steps) if st < 0)
    hi = start_off + sum((n - 1) * st for n, st in zip(counts, steps) if st > 0)
    assert 0 <= lo <= hi < x.numel, (start_off, counts, steps, x.shape)
    struct = c_struct("espt_aot_strided_slice_t", f"l{k}_slice", [
        ("start", start_off), ("count", c_array(counts)), ("step", c_array(steps))])
    low.step([k], "espt_aot_strided_slice_s8",
             f"STRIDED_SLICE {x.shape_str()} -> {y.shape_str()}, begin {begin.tolist()}, end {end.tolist()}, "
             f"strides {strides.tolist()}", [x.index], [y.index],
             f"espt_aot_strided_slice_s8(&l{k}_slice, {{in0}}, {{out0}});", [], struct)
