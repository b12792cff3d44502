"""ADD and MUL (int8, with broadcasting over up to 4 dims and constant int8 inputs):
CalculateOpDataAdd's rescaling at left shift 20, CalculateOpDataMul's one multiplier."""
from __future__ import annotations

import numpy as np

from .. import quant
from ..steps import Const, c_array, c_struct
from .registry import lowers


def _operands(low, k: int) -> tuple[list, list, list]:
    """(activation inputs, constants, C expressions) of a binary op's two inputs."""
    op = low.g.ops[k]
    if len(op.inputs) != 2:
        low.refuse(k, f"{len(op.inputs)} inputs")
    ins, consts, exprs = [], [], []
    for n, i in enumerate(op.inputs):
        if low.const_int8(k, i) is not None:
            name = f"l{k}_input{n + 1}"
            consts.append(Const("int8_t", name, low.tensors[i].data.reshape(-1).astype(np.int64), "weights"))
            exprs.append(name)
        else:
            low.act(k, i)
            exprs.append(f"{{in{len(ins)}}}")
            ins.append(i)
    return ins, consts, exprs


def _broadcast(low, k: int, a, b, y, consts: list) -> str:
    """The espt_aot_broadcast_t initializer; strides as constants when shapes differ."""
    dims = low.dims16(k, y)
    strides = ["NULL", "NULL"]
    if a.shape != b.shape or a.shape != y.shape:
        for n, t in enumerate((a, b)):
            s = (1,) * (4 - len(t.shape)) + tuple(t.shape)
            if len(t.shape) > 4 or any(sd not in (1, yd) for sd, yd in zip(s, dims)):
                low.refuse(k, f"shapes {a.shape} and {b.shape} do not broadcast to {y.shape}")
            st, acc = [0] * 4, 1
            for d in range(3, -1, -1):
                st[d] = 0 if s[d] == 1 and dims[d] != 1 else acc
                acc *= s[d]
            consts.append(Const("uint32_t", f"l{k}_strides{n + 1}", np.asarray(st, np.int64), "params"))
            strides[n] = f"l{k}_strides{n + 1}"
    return f"{{ .dims = {c_array(dims)}, .strides1 = {strides[0]}, .strides2 = {strides[1]} }}"


@lowers("ADD", "MUL")
def binary(low, k: int):
    op = low.g.ops[k]
    ins, consts, exprs = _operands(low, k)
    y = low.act(k, op.outputs[0])
    a, b = (low.tensors[i] for i in op.inputs)
    lo, hi = low.activation(k, op.options.fusedActivationFunction if op.options else 0, y)
    bcast = _broadcast(low, k, a, b, y, consts)
    offsets = [("size", y.numel), ("input1_offset", -a.zero_point), ("input2_offset", -b.zero_point),
               ("output_offset", y.zero_point)]
    if op.name == "ADD":
        kind, params = "add", quant.add_params(a.scale, b.scale, y.scale).items()
    else:
        m, s = quant.mul_params(a.scale, b.scale, y.scale)
        kind, params = "mul", [("output_multiplier", m), ("output_shift", s)]
    struct = c_struct(f"espt_aot_{kind}_t", f"l{k}_{kind}", [
        *offsets, *params, ("act_min", lo), ("act_max", hi), ("bcast", bcast)])
    sign = "+" if kind == "add" else "*"
    low.step([k], f"espt_aot_{kind}_s8", f"{op.name} {a.shape_str()} {sign} {b.shape_str()} -> {y.shape_str()}",
             ins, [y.index], f"espt_aot_{kind}_s8(&l{k}_{kind}, {exprs[0]}, {exprs[1]}, {{out0}});",
             consts, struct)
