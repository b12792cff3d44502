"""Lowering a TFLite int8 graph to kernel calls: one Step per layer (or per fused pair).

The driver walks the ops in order and hands each to its family's lowering (aot/ops/,
one module per family, found through ops.registry). Each Step carries the C constants it
needs (weights, biases, requantization constants computed as TFLite-Micro's Prepare
computes them, see quant.py), a parameter struct and a call into firmware/engines/aot/.
The checks every family shares live here (`act`, `refuse`, ...). Anything the kernels
cannot reproduce exactly is refused with the op's name and layer index; nothing is
approximated.
"""
from __future__ import annotations

import numpy as np

from ..errors import ModelRefused, UserError
from ..model.reader import Graph, Tensor, type_code
from . import pack as packing
from . import quant
from .ops import registry
from .steps import Const, Step, c_struct

__all__ = ["SUPPORTED", "Const", "Lowering", "Step"]

INT8, INT32, FLOAT32 = type_code("int8"), type_code("int32"), type_code("float32")
MAX_RANK = 4
SUPPORTED = tuple(registry.REGISTRY)


class Lowering:
    def __init__(self, model_bytes: bytes, pack_weights: str = "auto", fuse: bool = True):
        if pack_weights not in packing.MODES:
            raise UserError(f"weight packing must be one of {', '.join(packing.MODES)}, not {pack_weights!r}")
        self.g = Graph(model_bytes)
        self.pack_weights = pack_weights
        self.fuse = fuse
        self.alias: dict[int, int] = {}   # reshape output -> its input
        self.steps: list[Step] = []
        if len(self.g.inputs) != 1 or len(self.g.outputs) != 1:
            raise ModelRefused("the AOT engine compiles single-input, single-output models")
        (self.input_index,), (self.output_index,) = self.g.inputs, self.g.outputs
        self.tensors = self.g.tensors
        self.consumers: dict[int, list] = {}
        self.producer: dict[int, int] = {}
        for k, op in enumerate(self.g.ops):
            for i in op.inputs:
                if i >= 0:
                    self.consumers.setdefault(int(i), []).append(k)
            for i in op.outputs:
                self.producer[int(i)] = k
        self._check_model_io()

    def _check_model_io(self):
        """int8 at both ends, or float32 quantized by QUANTIZE on the way in and produced by
        DEQUANTIZE on the way out (a float-I/O model)."""
        edge = {"input": (self.input_index, [self.g.ops[k].name for k in self.consumers.get(self.input_index, [])]),
                "output": (self.output_index, [self.g.ops[self.producer[self.output_index]].name]
                           if self.output_index in self.producer else [])}
        for role, (i, ops) in edge.items():
            t = self.tensors[i]
            float_edge = t.dtype == FLOAT32 and ops and set(ops) == {"QUANTIZE" if role == "input" else "DEQUANTIZE"}
            if t.dtype != INT8 and not float_edge:
                raise ModelRefused(f"the AOT engine compiles full-integer int8 models; this model's {role} "
                                f"is {t.dtype_name} (export the int8 variant)")

    # ---- tensors -------------------------------------------------------------

    def root(self, i: int) -> int:
        while i in self.alias:
            i = self.alias[i]
        return i

    def refuse(self, k: int, why: str):
        raise ModelRefused(f"the AOT engine cannot compile layer {k} ({self.g.ops[k].label}): {why}")

    def act(self, k: int, i: int) -> Tensor:
        """An int8 activation tensor (not a constant) of op k, quantized per tensor."""
        if i < 0:
            self.refuse(k, "a required input is missing")
        t = self.tensors[i]
        if t.dtype != INT8:
            self.refuse(k, f"tensor '{t.name}' is {t.dtype_name}; the AOT engine runs int8 only")
        if t.data is not None:
            self.refuse(k, f"tensor '{t.name}' is a constant where the kernel expects an activation")
        self._per_tensor(k, t)
        if t.numel <= 0:
            self.refuse(k, f"tensor '{t.name}' has shape {t.shape}")
        if len(t.shape) > MAX_RANK:
            self.refuse(k, f"tensor '{t.name}' has rank {len(t.shape)} (the AOT kernels take up to 4)")
        return t

    def _per_tensor(self, k: int, t: Tensor):
        if t.scales.size != 1:
            self.refuse(k, f"tensor '{t.name}' is not quantized per tensor")
        if not -128 <= t.zero_point <= 127:
            self.refuse(k, f"tensor '{t.name}' has zero point {t.zero_point}")
        if not (np.isfinite(t.scale) and t.scale > 0):
            self.refuse(k, f"tensor '{t.name}' has scale {t.scale}")

    def float_act(self, k: int, i: int) -> Tensor:
        """The float32 model input or output at a QUANTIZE / DEQUANTIZE."""
        t = self.tensors[i]
        if t.dtype != FLOAT32 or t.data is not None or i not in (self.input_index, self.output_index):
            self.refuse(k, f"tensor '{t.name}' ({t.dtype_name}): float tensors are compiled only as "
                           "the model's input and output")
        if t.numel <= 0 or len(t.shape) > MAX_RANK:
            self.refuse(k, f"tensor '{t.name}' has shape {t.shape}")
        return t

    def const_int8(self, k: int, i: int) -> Tensor | None:
        """A constant int8 input quantized per tensor, else None."""
        t = self.tensors[i] if i >= 0 else None
        if t is None or t.data is None or t.dtype != INT8:
            return None
        self._per_tensor(k, t)
        return t

    def const_ints(self, k: int, i: int, what: str) -> np.ndarray:
        """A constant int32 tensor (axes, paddings, begin/end/strides) as int64 values."""
        t = self.tensors[i] if 0 <= i < len(self.tensors) else None
        if t is None or t.data is None or t.dtype != INT32:
            self.refuse(k, f"its {what} is not a constant int32 tensor")
        return t.data.reshape(-1).astype(np.int64)

    def unary(self, k: int) -> tuple[Tensor, Tensor]:
        """(input, output) of an elementwise int8 op with one activation input."""
        op = self.g.ops[k]
        x, y = self.act(k, op.inputs[0]), self.act(k, op.outputs[0])
        if x.numel != y.numel:
            self.refuse(k, f"input {x.shape} and output {y.shape} differ in size")
        return x, y

    def small(self, k: int, **fields):
        """Window sizes, strides and dilations: 1..255 (uint8 fields in the kernels)."""
        for name, v in fields.items():
            if not 1 <= int(v) <= 255:
                self.refuse(k, f"{name} {v} (the AOT kernels take 1 to 255)")

    def nhwc(self, k: int, t: Tensor) -> tuple:
        if len(t.shape) != 4:
            self.refuse(k, f"tensor '{t.name}' has shape {t.shape}; this kernel takes NHWC tensors")
        if t.shape[0] != 1:
            self.refuse(k, f"batch {t.shape[0]}: the AOT engine compiles batch-1 models")
        return self.dims16(k, t)[1:]

    def dims16(self, k: int, t: Tensor) -> tuple:
        """The shape as 4 dims (leading 1s), each within the kernels' uint16 fields."""
        if max(t.shape, default=1) > 0xFFFF:
            self.refuse(k, f"tensor '{t.name}' has a dimension above 65535")
        return (1,) * (4 - len(t.shape)) + tuple(int(d) for d in t.shape)

    def activation(self, k: int, a: int, y: Tensor) -> tuple:
        if a not in quant.ACTIVATION_NAMES:
            self.refuse(k, f"fused activation {a}")
        return quant.activation_range(a, y.scale, y.zero_point)

    # ---- the graph -------------------------------------------------------------

    def run(self) -> list:
        done: set = set()
        for k, op in enumerate(self.g.ops):
            if k in done:
                continue
            lower = registry.REGISTRY.get(op.name)
            if lower is None:
                raise ModelRefused(f"the AOT engine cannot compile layer {k} ({op.label}): op not supported "
                                f"(it compiles {', '.join(registry.REGISTRY)})")
            self._check_types(k, op)
            if len(op.outputs) != 1:
                self.refuse(k, f"{len(op.outputs)} outputs")
            if op.options is None and op.name in registry.NEEDS_OPTIONS:
                self.refuse(k, "its options are missing from the model")
            done.add(k)
            done.update(lower(self, k) or ())
        return self.steps

    def _check_types(self, k: int, op):
        """int8 activations and int8/int32 constants; float32 only at the model's edges."""
        for i in list(op.inputs) + list(op.outputs):
            if i < 0:
                continue
            t = self.tensors[i]
            edge = (op.name == "QUANTIZE" and i == self.input_index) or \
                   (op.name == "DEQUANTIZE" and i == self.output_index)
            if t.dtype == INT8 or (t.dtype == INT32 and t.data is not None) or (t.dtype == FLOAT32 and edge):
                continue
            self.refuse(k, f"tensor '{t.name}' is {t.dtype_name}; the AOT engine runs int8 only")

    def fusable_pool(self, k: int):
        """The MAX_POOL_2D that is the only reader of op k's output, if any."""
        if not self.fuse:
            return None
        out = self.g.ops[k].outputs[0]
        users = self.consumers.get(out, [])
        if out == self.output_index or len(users) != 1:
            return None
        pool = self.g.ops[users[0]]
        if pool.name != "MAX_POOL_2D" or pool.options is None or \
                pool.options.filterHeight > registry.MAX_FUSED_POOL_ROWS:
            return None
        return users[0]

    # ---- shared pieces ----------------------------------------------------------

    def requant_struct(self, prefix: str, mults, shifts, out: Tensor, act) -> tuple[list, str]:
        consts = [Const("int32_t", f"{prefix}_multiplier", np.asarray(mults, np.int64), "params"),
                  Const("int8_t", f"{prefix}_shift", np.asarray(shifts, np.int64), "params")]
        lo, hi = act
        return consts, (f"{{ .multiplier = {prefix}_multiplier, .shift = {prefix}_shift, "
                        f".output_offset = {out.zero_point}, .act_min = {lo}, .act_max = {hi} }}")

    def weights(self, prefix: str, w: np.ndarray, rows: int, run: int | None = None) -> tuple:
        """Weights as blocked int8 rows (pack.blocked, runs of `run` taps) or packed: (consts,
        weights expr, packed expr, packed struct)."""
        flat = w.reshape(rows, -1).astype(np.int8)
        p = packing.pack(flat) if self.pack_weights == "auto" else None
        if p is None:
            order = packing.blocked(flat, run)
            return [Const("int8_t", f"{prefix}_weights", order, "weights")], \
                f"{prefix}_weights", "NULL", ""
        assert np.array_equal(packing.unpack(p, flat.shape[1]), flat)
        consts = [Const("uint8_t", f"{prefix}_indices", p.indices.reshape(-1), "weights"),
                  Const("int8_t", f"{prefix}_codebook", p.codebook.reshape(-1), "weights")]
        struct = c_struct("espt_aot_packed_t", f"{prefix}_packed", [
            ("indices", f"{prefix}_indices"), ("codebook", f"{prefix}_codebook"),
            ("row_bytes", p.row_bytes), ("bits", p.bits), ("codebook_len", p.codebook.shape[1])])
        return consts, "NULL", f"&{prefix}_packed", struct

    def bias(self, k: int, channels: int, prefix: str) -> tuple[list, str]:
        if len(self.g.ops[k].inputs) < 3 or self.g.ops[k].inputs[2] < 0:
            return [], "NULL"
        b = self.tensors[self.g.ops[k].inputs[2]]
        if b.data is None or b.dtype != INT32:
            self.refuse(k, f"bias '{b.name}' is not a constant int32 tensor")
        if b.numel != channels:
            self.refuse(k, f"bias '{b.name}' has {b.numel} values for {channels} channels")
        return [Const("int32_t", f"{prefix}_bias", b.data.reshape(-1).astype(np.int64), "bias")], f"{prefix}_bias"

    def folded_bias(self, k: int, prefix: str, w: np.ndarray, channels: int, x: Tensor) -> Const:
        """bias + input_offset * sum(w) per output channel, wrapped to int32 like the
        kernel's accumulator (the sum the reference makes, regrouped)."""
        consts, _ = self.bias(k, channels, prefix)
        b = consts[0].values if consts else np.zeros(channels, np.int64)
        folded = b + (-x.zero_point) * w.reshape(channels, -1).astype(np.int64).sum(axis=1)
        folded = ((folded + (1 << 31)) % (1 << 32)) - (1 << 31)
        return Const("int32_t", f"{prefix}_folded_bias", folded, "bias")

    def filter(self, k: int, i: int, quant_dim: int, channels: int) -> Tensor:
        if i < 0:
            self.refuse(k, "no weights")
        w = self.tensors[i]
        if w.data is None:
            self.refuse(k, f"weights '{w.name}' are not constant")
        if w.dtype != INT8:
            self.refuse(k, f"weights '{w.name}' are {w.dtype_name}; the AOT engine runs int8 only")
        if w.scales.size not in (1, channels):
            self.refuse(k, f"weights '{w.name}' have {w.scales.size} scales for {channels} channels")
        if w.scales.size > 1 and w.quant_dim != quant_dim:
            self.refuse(k, f"weights '{w.name}' are quantized along dimension {w.quant_dim}")
        return w

    def step(self, k_ops: list, kernel: str, comment: str, inputs: list, outputs: list,
             call: str, consts: list = (), struct: str = "", scratch: int = 0, packed=False, w_int8=0):
        self.steps.append(Step(kernel, k_ops, [self.g.ops[j].name for j in k_ops], comment,
                               [self.root(i) for i in inputs], [self.root(i) for i in outputs],
                               call, list(consts), struct, scratch, bool(packed), w_int8))

    def elementwise(self, k: int, kernel: str, ctype: str, fields: list, comment: str,
                    x: Tensor, y: Tensor):
        """One step of an elementwise kernel `kernel(&lK_param, in, out)` over x.numel values."""
        name = f"l{k}_{self.g.ops[k].name.lower()}"
        struct = c_struct(ctype, name, [("size", x.numel), *fields])
        self.step([k], kernel, comment, [x.index], [y.index],
                  f"{kernel}(&{name}, {{in0}}, {{out0}});", [], struct)
