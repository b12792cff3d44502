"""Lowering a TFLite int8 graph to kernel calls: one Step per layer (or per fused pair).

Each Step carries the C constants it needs (weights, biases, requantization constants
computed as TFLite-Micro's Prepare computes them, see quant.py), a parameter struct and
a call into firmware/engines/aot/. Anything the kernels cannot reproduce exactly is
refused with the op's name and layer index; nothing is approximated.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ModelRefused, UserError
from ..model.reader import Graph, Tensor, type_code
from . import pack as packing
from . import quant

SUPPORTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MAX_POOL_2D",
             "AVERAGE_POOL_2D", "RESHAPE", "SOFTMAX", "ADD", "QUANTIZE")
INT8, INT32 = type_code("int8"), type_code("int32")
MAX_FUSED_POOL_ROWS = 16  # ESPT_AOT_MAX_POOL_ROWS in espt_aot_conv.c
NEEDS_OPTIONS = ("CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D")


@dataclass
class Const:
    ctype: str
    name: str
    values: np.ndarray
    kind: str  # "weights", "bias" or "params": how it counts in the flash figures


@dataclass
class Step:
    kernel: str
    ops: list                  # TFLite operator indices this step covers
    op_names: list
    comment: str
    inputs: list               # activation tensor indices read
    outputs: list              # activation tensor indices written
    call: str                  # C statement with {in0} {in1} {out0} {scratch} placeholders
    consts: list = field(default_factory=list)
    struct: str = ""           # the parameter struct definition (C)
    scratch_bytes: int = 0
    packed: bool = False
    weights_int8_bytes: int = 0


def c_struct(ctype: str, name: str, fields: list) -> str:
    """A const parameter struct with designated initializers, one field a line."""
    body = "".join(f"    .{k} = {v},\n" for k, v in fields)
    return f"static const {ctype} {name} = {{\n{body}}};\n"


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
        for role, i in (("input", self.input_index), ("output", self.output_index)):
            t = self.tensors[i]
            if t.dtype != INT8:
                raise ModelRefused(f"the AOT engine compiles full-integer int8 models; this model's {role} "
                                f"is {t.dtype_name} (export the int8 variant)")
        self.consumers: dict[int, list] = {}
        for k, op in enumerate(self.g.ops):
            for i in op.inputs:
                if i >= 0:
                    self.consumers.setdefault(int(i), []).append(k)

    # ---- tensors -------------------------------------------------------------

    def root(self, i: int) -> int:
        while i in self.alias:
            i = self.alias[i]
        return i

    def _padding(self, k, o, in_hw, k_hw, out_hw) -> tuple:
        """(pad top, pad left) of a conv or depthwise conv, checked against its output size."""
        if o.padding not in (0, 1):
            self._refuse(k, f"padding {o.padding}")
        same = o.padding == 0
        eh, ph = quant.compute_padding(o.strideH, o.dilationHFactor, in_hw[0], k_hw[0], same)
        ew, pw = quant.compute_padding(o.strideW, o.dilationWFactor, in_hw[1], k_hw[1], same)
        if (eh, ew) != tuple(out_hw):
            self._refuse(k, f"output {out_hw[0]}x{out_hw[1]} does not match the {eh}x{ew} its padding gives")
        return ph, pw

    def _refuse(self, k: int, why: str):
        raise ModelRefused(f"the AOT engine cannot compile layer {k} ({self.g.ops[k].name}): {why}")

    def _act(self, k: int, i: int) -> Tensor:
        """An int8 activation tensor (not a constant) of op k."""
        if i < 0:
            self._refuse(k, "a required input is missing")
        t = self.tensors[i]
        if t.dtype != INT8:
            self._refuse(k, f"tensor '{t.name}' is {t.dtype_name}; the AOT engine runs int8 only")
        if t.data is not None:
            self._refuse(k, f"tensor '{t.name}' is a constant where the kernel expects an activation")
        if t.scales.size != 1:
            self._refuse(k, f"tensor '{t.name}' is not quantized per tensor")
        if not -128 <= t.zero_point <= 127:
            self._refuse(k, f"tensor '{t.name}' has zero point {t.zero_point}")
        if not (np.isfinite(t.scale) and t.scale > 0):
            self._refuse(k, f"tensor '{t.name}' has scale {t.scale}")
        if t.numel <= 0:
            self._refuse(k, f"tensor '{t.name}' has shape {t.shape}")
        return t

    def _small(self, k: int, **fields):
        """Window sizes, strides and dilations: 1..255 (uint8 fields in the kernels)."""
        for name, v in fields.items():
            if not 1 <= int(v) <= 255:
                self._refuse(k, f"{name} {v} (the AOT kernels take 1 to 255)")

    def _nhwc(self, k: int, t: Tensor) -> tuple:
        if len(t.shape) != 4:
            self._refuse(k, f"tensor '{t.name}' has shape {t.shape}; this kernel takes NHWC tensors")
        if t.shape[0] != 1:
            self._refuse(k, f"batch {t.shape[0]}: the AOT engine compiles batch-1 models")
        if max(t.shape) > 0xFFFF:
            self._refuse(k, f"tensor '{t.name}' has a dimension above 65535")
        return t.shape[1:]

    # ---- the graph -------------------------------------------------------------

    def run(self) -> list:
        ops = self.g.ops
        done: set = set()
        for k, op in enumerate(ops):
            if k in done:
                continue
            if op.name not in SUPPORTED:
                raise ModelRefused(f"the AOT engine cannot compile layer {k} ({op.name}): op not supported "
                                f"(it compiles {', '.join(SUPPORTED)})")
            if any(self.tensors[i].dtype not in (INT8, INT32) for i in op.inputs if i >= 0) or \
                    any(self.tensors[i].dtype != INT8 for i in op.outputs):
                bad = [self.tensors[i] for i in list(op.inputs) + list(op.outputs)
                       if i >= 0 and self.tensors[i].dtype not in (INT8, INT32)]
                t = bad[0] if bad else self.tensors[op.outputs[0]]
                self._refuse(k, f"tensor '{t.name}' is {t.dtype_name}; "
                                "the AOT engine runs int8 only")
            if len(op.outputs) != 1:
                self._refuse(k, f"{len(op.outputs)} outputs")
            if op.options is None and op.name in NEEDS_OPTIONS:
                self._refuse(k, "its options are missing from the model")
            fused = self._fusable_pool(k) if op.name == "CONV_2D" and self.fuse else None
            getattr(self, "_" + op.name.lower())(k, fused)
            done.add(k)
            if fused is not None:
                done.add(fused)
        return self.steps

    def _fusable_pool(self, k: int):
        """The MAX_POOL_2D that is the only reader of conv k's output, if any."""
        out = self.g.ops[k].outputs[0]
        users = self.consumers.get(out, [])
        if out == self.output_index or len(users) != 1:
            return None
        pool = self.g.ops[users[0]]
        if pool.name != "MAX_POOL_2D" or pool.options.filterHeight > MAX_FUSED_POOL_ROWS:
            return None
        return users[0]

    # ---- shared pieces ----------------------------------------------------------

    def _requant_struct(self, prefix: str, mults, shifts, out: Tensor, act) -> tuple[list, str]:
        consts = [Const("int32_t", f"{prefix}_multiplier", np.asarray(mults, np.int64), "params"),
                  Const("int8_t", f"{prefix}_shift", np.asarray(shifts, np.int64), "params")]
        lo, hi = act
        return consts, (f"{{ .multiplier = {prefix}_multiplier, .shift = {prefix}_shift, "
                        f".output_offset = {out.zero_point}, .act_min = {lo}, .act_max = {hi} }}")

    def _weights(self, prefix: str, w: np.ndarray, rows: int) -> tuple:
        """Weights as int8 rows or packed: (consts, weights expr, packed expr, packed struct)."""
        flat = w.reshape(rows, -1).astype(np.int8)
        p = packing.pack(flat) if self.pack_weights == "auto" else None
        if p is None:
            return [Const("int8_t", f"{prefix}_weights", flat.reshape(-1), "weights")], \
                f"{prefix}_weights", "NULL", ""
        assert np.array_equal(packing.unpack(p, flat.shape[1]), flat)
        consts = [Const("uint8_t", f"{prefix}_indices", p.indices.reshape(-1), "weights"),
                  Const("int8_t", f"{prefix}_codebook", p.codebook.reshape(-1), "weights")]
        struct = c_struct("espt_aot_packed_t", f"{prefix}_packed", [
            ("indices", f"{prefix}_indices"), ("codebook", f"{prefix}_codebook"),
            ("row_bytes", p.row_bytes), ("bits", p.bits), ("codebook_len", p.codebook.shape[1])])
        return consts, "NULL", f"&{prefix}_packed", struct

    def _bias(self, k: int, channels: int, prefix: str) -> tuple[list, str]:
        if len(self.g.ops[k].inputs) < 3 or self.g.ops[k].inputs[2] < 0:
            return [], "NULL"
        b = self.tensors[self.g.ops[k].inputs[2]]
        if b.data is None or b.dtype != INT32:
            self._refuse(k, f"bias '{b.name}' is not a constant int32 tensor")
        if b.numel != channels:
            self._refuse(k, f"bias '{b.name}' has {b.numel} values for {channels} channels")
        return [Const("int32_t", f"{prefix}_bias", b.data.reshape(-1).astype(np.int64), "bias")], f"{prefix}_bias"

    def _folded_bias(self, k: int, prefix: str, w: np.ndarray, channels: int, x: Tensor) -> Const:
        """bias + input_offset * sum(w) per output channel, wrapped to int32 like the
        kernel's accumulator (the sum the reference makes, regrouped)."""
        consts, _ = self._bias(k, channels, prefix)
        bias = consts[0].values if consts else np.zeros(channels, np.int64)
        folded = bias + (-x.zero_point) * w.reshape(channels, -1).astype(np.int64).sum(axis=1)
        folded = ((folded + (1 << 31)) % (1 << 32)) - (1 << 31)
        return Const("int32_t", f"{prefix}_folded_bias", folded, "bias")

    def _filter(self, k: int, i: int, quant_dim: int, channels: int) -> Tensor:
        if i < 0:
            self._refuse(k, "no weights")
        w = self.tensors[i]
        if w.data is None:
            self._refuse(k, f"weights '{w.name}' are not constant")
        if w.dtype != INT8:
            self._refuse(k, f"weights '{w.name}' are {w.dtype_name}; the AOT engine runs int8 only")
        if w.scales.size not in (1, channels):
            self._refuse(k, f"weights '{w.name}' have {w.scales.size} scales for {channels} channels")
        if w.scales.size > 1 and w.quant_dim != quant_dim:
            self._refuse(k, f"weights '{w.name}' are quantized along dimension {w.quant_dim}")
        return w

    def _step(self, k_ops: list, kernel: str, comment: str, inputs: list, outputs: list,
              call: str, consts: list, struct: str, scratch: int = 0, packed=False, w_int8=0):
        self.steps.append(Step(kernel, k_ops, [self.g.ops[j].name for j in k_ops], comment,
                               [self.root(i) for i in inputs], [self.root(i) for i in outputs],
                               call, consts, struct, scratch, bool(packed), w_int8))

    @staticmethod
    def _padding_name(p: int) -> str:
        return "SAME" if p == 0 else "VALID"

    # ---- ops -------------------------------------------------------------

    def _conv_2d(self, k: int, fused_pool):
        op = self.g.ops[k]
        o = op.options
        x, y = self._act(k, op.inputs[0]), self._act(k, op.outputs[0])
        (ih, iw, ic), (oh, ow, oc) = self._nhwc(k, x), self._nhwc(k, y)
        w = self._filter(k, op.inputs[1], 0, oc)
        if len(w.shape) != 4 or w.shape[0] != oc:
            self._refuse(k, f"weights of shape {w.shape} for {oc} output channels")
        kh, kw, wc = w.shape[1:]
        self._small(k, filter_height=kh, filter_width=kw, stride=o.strideH, stride_width=o.strideW,
                    dilation=o.dilationHFactor, dilation_width=o.dilationWFactor)
        if wc != ic:
            self._refuse(k, f"grouped convolution ({ic} input channels, filters of depth {wc})")
        ph, pw = self._padding(k, o, (ih, iw), (kh, kw), (oh, ow))
        act = self._activation(k, o.fusedActivationFunction, y)
        mults, shifts = quant.per_channel_multipliers(x.scale, w.scales, y.scale, oc)
        p = f"l{k}"
        consts, wexpr, pexpr, pstruct = self._weights(p, w.data, oc)
        rq_consts, rq = self._requant_struct(p, mults, shifts, y, act)
        consts += [self._folded_bias(k, p, w.data, oc, x)] + rq_consts
        struct = pstruct + c_struct("espt_aot_conv_t", f"{p}_conv", [
            ("in_h", ih), ("in_w", iw), ("in_c", ic), ("out_h", oh), ("out_w", ow), ("out_c", oc),
            ("k_h", kh), ("k_w", kw), ("stride_h", o.strideH), ("stride_w", o.strideW),
            ("dilation_h", o.dilationHFactor), ("dilation_w", o.dilationWFactor),
            ("pad_h", ph), ("pad_w", pw), ("input_offset", -x.zero_point), ("weights", wexpr),
            ("packed", pexpr), ("folded_bias", f"{p}_folded_bias"), ("rq", rq)])
        comment = (f"CONV_2D {x.shape_str()} -> {y.shape_str()}, {kh}x{kw} filters, stride "
                   f"{o.strideH}x{o.strideW}, {self._padding_name(o.padding)}, "
                   f"{quant.ACTIVATION_NAMES[o.fusedActivationFunction]}"
                   + (", packed weights" if pstruct else ""))
        packed = bool(pstruct)
        window = kh * kw * ic   # espt_aot_conv_scratch_bytes(): im2col patches
        w_scratch = (ow + 1) * window if packed else window
        if fused_pool is None:
            self._step([k], "espt_aot_conv_s8", comment, [x.index], [y.index],
                       f"espt_aot_conv_s8(&{p}_conv, {{in0}}, {{out0}}, 0, {oh}, {{scratch}});",
                       consts, struct, w_scratch, packed, w.numel)
            return
        pool_struct, pool_comment, z, rows = self._pool_params(fused_pool, y)
        self._step([k, fused_pool], "espt_aot_conv_maxpool_s8",
                   comment + "; then " + pool_comment,
                   [x.index], [z.index],
                   f"espt_aot_conv_maxpool_s8(&{p}_conv, &l{fused_pool}_pool, {{in0}}, {{out0}}, {{scratch}});",
                   consts, struct + pool_struct, rows * ow * oc + w_scratch, packed, w.numel)

    def _activation(self, k: int, a: int, y: Tensor) -> tuple:
        if a not in quant.ACTIVATION_NAMES:
            self._refuse(k, f"fused activation {a}")
        return quant.activation_range(a, y.scale, y.zero_point)

    def _depthwise_conv_2d(self, k: int, _):
        op = self.g.ops[k]
        o = op.options
        x, y = self._act(k, op.inputs[0]), self._act(k, op.outputs[0])
        (ih, iw, ic), (oh, ow, oc) = self._nhwc(k, x), self._nhwc(k, y)
        w = self._filter(k, op.inputs[1], 3, oc)
        if len(w.shape) != 4 or w.shape[0] != 1 or w.shape[3] != oc:
            self._refuse(k, f"weights of shape {w.shape} for {oc} output channels")
        kh, kw = w.shape[1:3]
        self._small(k, filter_height=kh, filter_width=kw, stride=o.strideH, stride_width=o.strideW,
                    dilation=o.dilationHFactor, dilation_width=o.dilationWFactor)
        if oc % ic:
            self._refuse(k, f"{oc} output channels for {ic} input channels")
        mult = oc // ic
        if o.depthMultiplier not in (0, mult):
            self._refuse(k, f"depth multiplier {o.depthMultiplier} with {ic} -> {oc} channels")
        ph, pw = self._padding(k, o, (ih, iw), (kh, kw), (oh, ow))
        act = self._activation(k, o.fusedActivationFunction, y)
        mults, shifts = quant.per_channel_multipliers(x.scale, w.scales, y.scale, oc)
        p = f"l{k}"
        consts = [Const("int8_t", f"{p}_weights", w.data.reshape(-1).astype(np.int64), "weights")]
        bconsts, bexpr = self._bias(k, oc, p)
        rq_consts, rq = self._requant_struct(p, mults, shifts, y, act)
        consts += bconsts + rq_consts
        struct = c_struct("espt_aot_depthwise_t", f"{p}_dw", [
            ("in_h", ih), ("in_w", iw), ("in_c", ic), ("out_h", oh), ("out_w", ow), ("out_c", oc),
            ("k_h", kh), ("k_w", kw), ("stride_h", o.strideH), ("stride_w", o.strideW),
            ("dilation_h", o.dilationHFactor), ("dilation_w", o.dilationWFactor),
            ("pad_h", ph), ("pad_w", pw), ("depth_multiplier", mult), ("input_offset", -x.zero_point),
            ("weights", f"{p}_weights"), ("bias", bexpr), ("rq", rq)])
        comment = (f"DEPTHWISE_CONV_2D {x.shape_str()} -> {y.shape_str()}, {kh}x{kw} filters, stride "
                   f"{o.strideH}x{o.strideW}, {self._padding_name(o.padding)}, "
                   f"{quant.ACTIVATION_NAMES[o.fusedActivationFunction]}")
        self._step([k], "espt_aot_depthwise_conv_s8", comment, [x.index], [y.index],
                   f"espt_aot_depthwise_conv_s8(&{p}_dw, {{in0}}, {{out0}});", consts, struct,
                   w_int8=w.numel)

    def _fully_connected(self, k: int, _):
        op = self.g.ops[k]
        o = op.options
        x, y = self._act(k, op.inputs[0]), self._act(k, op.outputs[0])
        if o is not None and o.weightsFormat != 0:
            self._refuse(k, "shuffled weights format")
        oc = y.shape[-1] if y.shape else 1
        w = self._filter(k, op.inputs[1], 0, oc)
        if len(w.shape) != 2 or w.shape[0] != oc:
            self._refuse(k, f"weights of shape {w.shape} for {oc} outputs")
        depth = w.shape[1]
        if x.numel % depth or y.numel != (x.numel // depth) * oc:
            self._refuse(k, f"input {x.shape} does not fit weights {w.shape}")
        if np.any(w.zero_points != 0):
            self._refuse(k, "weights with a non-zero zero point")
        act = self._activation(k, o.fusedActivationFunction if o is not None else 0, y)
        if w.scales.size > 1:
            mults, shifts = quant.per_channel_multipliers(x.scale, w.scales, y.scale, oc)
        else:
            has_bias = len(op.inputs) > 2 and op.inputs[2] >= 0
            if has_bias and not quant.fc_bias_scale_ok(x.scale, w.scale, self.tensors[op.inputs[2]].scale, y.scale):
                self._refuse(k, "bias scale differs from input scale x weight scale (TFLite-Micro refuses it too)")
            m, s = quant.fc_per_tensor_multiplier(x.scale, w.scale, y.scale)
            mults, shifts = [m] * oc, [s] * oc
        p = f"l{k}"
        consts, wexpr, pexpr, pstruct = self._weights(p, w.data, oc)
        rq_consts, rq = self._requant_struct(p, mults, shifts, y, act)
        consts += [self._folded_bias(k, p, w.data, oc, x)] + rq_consts
        batches = x.numel // depth
        struct = pstruct + c_struct("espt_aot_fc_t", f"{p}_fc", [
            ("batches", batches), ("in_depth", depth), ("out_c", oc),
            ("weights", wexpr), ("packed", pexpr), ("folded_bias", f"{p}_folded_bias"), ("rq", rq)])
        packed = bool(pstruct)
        comment = (f"FULLY_CONNECTED {x.shape_str()} -> {y.shape_str()}, "
                   f"{quant.ACTIVATION_NAMES[o.fusedActivationFunction if o is not None else 0]}"
                   + (", packed weights" if pstruct else ""))
        self._step([k], "espt_aot_fully_connected_s8", comment, [x.index], [y.index],
                   f"espt_aot_fully_connected_s8(&{p}_fc, {{in0}}, {{out0}}, {{scratch}});",
                   consts, struct, depth if packed else 0, packed, w.numel)

    def _pool_params(self, k: int, x_override: Tensor | None = None):
        """(struct, comment, output tensor, window rows) of pool op k."""
        op = self.g.ops[k]
        o = op.options
        x = x_override or self._act(k, op.inputs[0])
        y = self._act(k, op.outputs[0])
        (ih, iw, ic), (oh, ow, oc) = self._nhwc(k, x), self._nhwc(k, y)
        if ic != oc:
            self._refuse(k, f"{ic} input and {oc} output channels")
        self._small(k, window_height=o.filterHeight, window_width=o.filterWidth,
                    stride=o.strideH, stride_width=o.strideW)
        if abs(float(x.scale) - float(y.scale)) > 1.0e-6 or x.zero_point != y.zero_point:
            self._refuse(k, "input and output quantization differ (TFLite-Micro refuses it too)")
        if o.padding not in (0, 1):
            self._refuse(k, f"padding {o.padding}")
        same = o.padding == 0
        eh, ph = quant.compute_padding(o.strideH, 1, ih, o.filterHeight, same)
        ew, pw = quant.compute_padding(o.strideW, 1, iw, o.filterWidth, same)
        if (eh, ew) != (oh, ow):
            self._refuse(k, f"output {oh}x{ow} does not match the {eh}x{ew} its padding gives")
        lo, hi = self._activation(k, o.fusedActivationFunction, y)
        struct = c_struct("espt_aot_pool_t", f"l{k}_pool", [
            ("in_h", ih), ("in_w", iw), ("channels", ic), ("out_h", oh), ("out_w", ow),
            ("k_h", o.filterHeight), ("k_w", o.filterWidth), ("stride_h", o.strideH),
            ("stride_w", o.strideW), ("pad_h", ph), ("pad_w", pw), ("act_min", lo), ("act_max", hi)])
        comment = (f"{op.name} {x.shape_str()} -> {y.shape_str()}, {o.filterHeight}x{o.filterWidth} "
                   f"window, stride {o.strideH}x{o.strideW}, {self._padding_name(o.padding)}")
        return struct, comment, y, o.filterHeight

    def _pool(self, k: int, kernel: str):
        struct, comment, y, _ = self._pool_params(k)
        x = self.g.ops[k].inputs[0]
        self._step([k], kernel, comment, [x], [y.index],
                   f"{kernel}(&l{k}_pool, {{in0}}, {{out0}});", [], struct)

    def _max_pool_2d(self, k: int, _):
        self._pool(k, "espt_aot_max_pool_s8")

    def _average_pool_2d(self, k: int, _):
        self._pool(k, "espt_aot_avg_pool_s8")

    def _reshape(self, k: int, _):
        op = self.g.ops[k]
        x, y = self._act(k, op.inputs[0]), self._act(k, op.outputs[0])
        if x.numel != y.numel:
            self._refuse(k, f"{x.shape} -> {y.shape} changes the element count")
        self.alias[y.index] = x.index   # same bytes, new shape: no code, no copy

    def _softmax(self, k: int, _):
        op = self.g.ops[k]
        x, y = self._act(k, op.inputs[0]), self._act(k, op.outputs[0])
        if y.zero_point != -128 or np.float32(y.scale) != np.float32(1.0 / 256):
            self._refuse(k, "int8 softmax output must have scale 1/256 and zero point -128 (as TFLite-Micro requires)")
        if x.shape != y.shape:
            self._refuse(k, f"input {x.shape} and output {y.shape} differ")
        beta = float(op.options.beta) if op.options is not None else 1.0
        if not beta * x.scale * (1 << 26) > 1.0:
            self._refuse(k, f"beta {beta:g} x input scale {x.scale:g} is too small (TFLite-Micro aborts on it)")
        params = quant.softmax_params(beta, x.scale)
        depth = x.shape[-1]
        struct = c_struct("espt_aot_softmax_t", f"l{k}_softmax", [
            ("rows", x.numel // depth), ("depth", depth), *params.items()])
        self._step([k], "espt_aot_softmax_s8", f"SOFTMAX {x.shape_str()}, beta {beta:g}",
                   [x.index], [y.index], f"espt_aot_softmax_s8(&l{k}_softmax, {{in0}}, {{out0}});",
                   [], struct)

    def _add(self, k: int, _):
        op = self.g.ops[k]
        if len(op.inputs) != 2:
            self._refuse(k, f"{len(op.inputs)} inputs")
        y = self._act(k, op.outputs[0])
        ins, consts, exprs = [], [], []
        for n, i in enumerate(op.inputs):
            t = self.tensors[i]
            if t.data is not None and t.dtype == INT8 and t.scales.size == 1:
                consts.append(Const("int8_t", f"l{k}_input{n + 1}", t.data.reshape(-1).astype(np.int64), "weights"))
                exprs.append(f"l{k}_input{n + 1}")
            else:
                t = self._act(k, i)
                exprs.append(f"{{in{len(ins)}}}")
                ins.append(i)
        a, b = (self.tensors[i] for i in op.inputs)
        if len(y.shape) > 4 or len(a.shape) > 4 or len(b.shape) > 4:
            self._refuse(k, "tensors of rank above 4")
        p = quant.add_params(a.scale, b.scale, y.scale)
        lo, hi = self._activation(k, op.options.fusedActivationFunction if op.options else 0, y)
        dims = (1,) * (4 - len(y.shape)) + tuple(y.shape)
        strides = ["NULL", "NULL"]
        if a.shape != b.shape or a.shape != y.shape:
            for n, t in enumerate((a, b)):
                s = (1,) * (4 - len(t.shape)) + tuple(t.shape)
                if any(sd not in (1, yd) for sd, yd in zip(s, dims)):
                    self._refuse(k, f"shapes {a.shape} and {b.shape} do not broadcast to {y.shape}")
                st, acc = [0] * 4, 1
                for d in range(3, -1, -1):
                    st[d] = 0 if s[d] == 1 and dims[d] != 1 else acc
                    acc *= s[d]
                consts.append(Const("uint32_t", f"l{k}_strides{n + 1}", np.asarray(st, np.int64), "params"))
                strides[n] = f"l{k}_strides{n + 1}"
        struct = c_struct("espt_aot_add_t", f"l{k}_add", [
            ("size", y.numel), ("input1_offset", -a.zero_point), ("input2_offset", -b.zero_point),
            ("output_offset", y.zero_point), *p.items(), ("act_min", lo), ("act_max", hi),
            ("dims", "{ " + ", ".join(str(d) for d in dims) + " }"),
            ("strides1", strides[0]), ("strides2", strides[1])])
        self._step([k], "espt_aot_add_s8", f"ADD {a.shape_str()} + {b.shape_str()} -> {y.shape_str()}",
                   ins, [y.index], f"espt_aot_add_s8(&l{k}_add, {exprs[0]}, {exprs[1]}, {{out0}});",
                   consts, struct)

    def _quantize(self, k: int, _):
        op = self.g.ops[k]
        x, y = self._act(k, op.inputs[0]), self._act(k, op.outputs[0])
        m, s = quant.requantize_params(x.scale, y.scale)
        struct = c_struct("espt_aot_requantize_t", f"l{k}_requantize", [
            ("size", x.numel), ("input_zero_point", x.zero_point),
            ("output_zero_point", y.zero_point), ("multiplier", m), ("shift", s)])
        self._step([k], "espt_aot_requantize_s8", f"QUANTIZE (requantize) {x.shape_str()}",
                   [x.index], [y.index], f"espt_aot_requantize_s8(&l{k}_requantize, {{in0}}, {{out0}});",
                   [], struct)
