"""The one reader of a .tflite flatbuffer: its ops, tensors (shape, type, quantization,
constant data), parameter count, sparsity and MACs.

Every TFLite enum (tensor types, builtin ops) comes from the schema that ships in the
tflite-micro wheel (flatbuffers object API), never from numbers written out here.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from ..errors import ModelRefused, UserError
from .flatbuffer import Corrupt, schema, verify


def _enum(cls) -> dict:
    return {v: k for k, v in vars(cls).items() if not k.startswith("_")}


@cache
def type_names() -> dict:
    """TensorType code -> its name in lower case (float32, int8, ...)."""
    return {code: name.lower() for code, name in _enum(schema().TensorType).items()}


@cache
def type_code(name: str) -> int:
    """'int8' -> 9, from the schema."""
    return getattr(schema().TensorType, name.upper())


def type_name(code: int) -> str:
    return type_names().get(code, f"type {code}")


def numpy_dtype(code: int):
    """The numpy dtype of a TensorType, or None (int4, string, resource, ...)."""
    try:
        return np.dtype(type_names()[code])
    except (KeyError, TypeError):
        return None


def op_name(code: int) -> str:
    return _op_names().get(code, f"BUILTIN_{code}")


def op_code(name: str) -> int:
    """The BuiltinOperator code of an op name (CONV_2D -> 3)."""
    return {n: c for c, n in _op_names().items()}[name]


@cache
def _op_names() -> dict:
    return _enum(schema().BuiltinOperator)


def parse(model_bytes: bytes):
    """The model as a schema ModelT, verified (flatbuffer.py: every offset in bounds; then
    every index and size here); a one-line error when the bytes are not a usable model."""
    S = schema()
    data = bytes(model_bytes)
    verify(data)
    try:
        model = S.ModelT.InitFromPackedBuf(bytearray(data), 0)
    except Exception as e:  # verified, so this is unexpected; still the user's file
        raise Corrupt(f"corrupt TFLite model ({type(e).__name__})") from None
    check_indices(model, len(data))
    return model


def _bad(what: str):
    raise Corrupt(f"corrupt TFLite model: {what}")


def _ints(v) -> list:
    return [] if v is None else [int(i) for i in v]


def check_indices(model, size: int):
    """Every index a runtime follows points at something that exists, and every constant
    buffer holds as many bytes as its tensor's shape and type need."""
    codes, buffers = model.operatorCodes or [], model.buffers or []
    subgraphs = model.subgraphs or []
    if not subgraphs:
        _bad("no subgraph")
    if len(subgraphs) > 1:
        raise ModelRefused(f"the model has {len(subgraphs)} subgraphs (control flow); "
                           "esptiny takes one")
    for b, buf in enumerate(buffers):
        off, n = int(buf.offset or 0), int(buf.size or 0)
        if off > 1 and off + n > size:
            _bad(f"buffer {b} at bytes {off}..{off + n} of a {size}-byte file")
    sg = subgraphs[0]
    tensors = sg.tensors or []
    nt = len(tensors)
    for t, ten in enumerate(tensors):
        shape = _ints(ten.shape)
        if any(d < 0 for d in shape):
            _bad(f"tensor {t} has shape {shape}")
        if ten.buffer >= len(buffers) and ten.buffer != 0:
            _bad(f"tensor {t} uses buffer {ten.buffer} of {len(buffers)}")
        dt = numpy_dtype(int(ten.type))
        numel = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if dt is not None and numel * dt.itemsize >= 2**31:
            _bad(f"tensor {t} of {numel} elements")
        data = buffers[ten.buffer].data if ten.buffer and ten.buffer < len(buffers) else None
        if data is not None and len(data) and dt is not None and len(data) != numel * dt.itemsize:
            _bad(f"tensor {t} ({'x'.join(map(str, shape))} {type_name(int(ten.type))}) "
                 f"has {len(data)} bytes of data, not {numel * dt.itemsize}")
        q = ten.quantization
        if q is not None and q.scale is not None and len(q.scale):
            zps = _ints(q.zeroPoint)
            if len(zps) != len(q.scale):
                _bad(f"tensor {t} has {len(q.scale)} scales and {len(zps)} zero points")
            if len(q.scale) > 1 and not (0 <= q.quantizedDimension < len(shape)
                                         and shape[q.quantizedDimension] == len(q.scale)):
                _bad(f"tensor {t}: {len(q.scale)} scales along dimension {q.quantizedDimension} "
                     f"of shape {shape}")
            if not np.all(np.isfinite(np.asarray(q.scale, np.float64))):
                _bad(f"tensor {t} has a scale that is not finite")
    for name, idx in (("input", sg.inputs), ("output", sg.outputs)):
        for i in _ints(idx):
            if not 0 <= i < nt:
                _bad(f"subgraph {name} {i} of {nt} tensors")
    for k, op in enumerate(sg.operators or []):
        if not 0 <= op.opcodeIndex < len(codes):
            _bad(f"operator {k} uses opcode {op.opcodeIndex} of {len(codes)}")
        for i in _ints(op.inputs):
            if not -1 <= i < nt:
                _bad(f"operator {k} reads tensor {i} of {nt}")
        outs = _ints(op.outputs)
        if not outs:
            _bad(f"operator {k} has no output")
        for i in outs + _ints(op.intermediates):
            if not 0 <= i < nt:
                _bad(f"operator {k} writes tensor {i} of {nt}")


@dataclass
class Op:
    name: str
    inputs: list
    outputs: list
    options: object
    custom_code: str | None = None  # a CUSTOM op's own name, as the model's operator code gives it

    @property
    def label(self) -> str:
        """The op's name for messages: a custom op by its custom code."""
        return f"custom op {self.custom_code}" if self.name == "CUSTOM" and self.custom_code else self.name


@dataclass
class Tensor:
    """One tensor of the graph as every consumer needs it."""
    index: int
    name: str
    dtype: int                 # TFLite TensorType code
    shape: tuple
    scales: np.ndarray         # float32; empty when not quantized
    zero_points: np.ndarray    # int64; empty when not quantized
    quant_dim: int
    data: np.ndarray | None    # a constant's values, else None

    @property
    def dtype_name(self) -> str:
        return type_name(self.dtype)

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1

    @property
    def itemsize(self) -> int:
        dt = numpy_dtype(self.dtype)
        assert dt is not None, f"no byte size for TFLite type {self.dtype_name}"
        return dt.itemsize

    @property
    def nbytes(self) -> int:
        return self.numel * self.itemsize

    @property
    def scale(self) -> float:
        return float(self.scales[0]) if self.scales.size else 0.0

    @property
    def zero_point(self) -> int:
        return int(self.zero_points[0]) if self.zero_points.size else 0

    @property
    def quantized(self) -> bool:
        return self.scale != 0.0

    def shape_str(self) -> str:
        return "x".join(str(d) for d in self.shape)


class Graph:
    """The first subgraph of a model, with its tensors decoded."""

    def __init__(self, model_bytes: bytes):
        self.model = parse(model_bytes)
        if not self.model.subgraphs:
            raise UserError("TFLite model has no subgraph")
        self.sg = self.model.subgraphs[0]
        codes = self.model.operatorCodes
        self.ops = [self._op(codes[o.opcodeIndex], o) for o in (self.sg.operators or [])]
        self.tensors = [self._tensor(i) for i in range(len(self.sg.tensors or []))]

    @staticmethod
    def _op(code, o) -> Op:
        custom = code.customCode
        if isinstance(custom, bytes):
            custom = custom.decode(errors="replace")
        return Op(op_name(max(code.builtinCode, code.deprecatedBuiltinCode)),
                  list(o.inputs if o.inputs is not None else []),
                  list(o.outputs if o.outputs is not None else []), o.builtinOptions, custom or None)

    @property
    def inputs(self) -> list:
        return [] if self.sg.inputs is None else [int(i) for i in self.sg.inputs]

    @property
    def outputs(self) -> list:
        return [] if self.sg.outputs is None else [int(i) for i in self.sg.outputs]

    def op_names(self) -> list:
        """Distinct builtin op names, in first-use order."""
        return list(dict.fromkeys(op.name for op in self.ops))

    def _buffer(self, t):
        if not t.buffer or t.buffer >= len(self.model.buffers):
            return None
        buf = self.model.buffers[t.buffer].data
        return buf if buf is not None and len(buf) else None

    def _tensor(self, i: int) -> Tensor:
        t = self.sg.tensors[i]
        q = t.quantization
        scales = np.asarray(q.scale if q is not None and q.scale is not None else [], np.float32)
        zps = np.asarray(q.zeroPoint if q is not None and q.zeroPoint is not None else [], np.int64)
        name = t.name.decode(errors="replace") if isinstance(t.name, bytes) else str(t.name or "")
        shape = tuple(int(d) for d in t.shape) if t.shape is not None else ()
        buf, dt = self._buffer(t), numpy_dtype(int(t.type))
        data = None
        if buf is not None and dt is not None:
            data = np.frombuffer(bytes(buf), dt).reshape(shape or (-1,))
        return Tensor(i, name, int(t.type), shape, scales, zps,
                      int(q.quantizedDimension) if q is not None else 0, data)

    def shape(self, i: int) -> tuple:
        return self.tensors[i].shape

    def constant(self, i: int) -> np.ndarray | None:
        """A constant tensor's values (following a DEQUANTIZE of a constant), else None."""
        if i < 0:
            return None
        if self.tensors[i].data is not None:
            return self.tensors[i].data
        for op in self.ops:  # float16 weights: a DEQUANTIZE feeds the layer
            if op.name == "DEQUANTIZE" and op.outputs and op.outputs[0] == i:
                return self.constant(op.inputs[0])
        return None

    def weights(self):
        """(op, weight array, bias array or None) for every layer that has weights."""
        for op in self.ops:
            if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
                w = self.constant(op.inputs[1])
                b = self.constant(op.inputs[2]) if len(op.inputs) > 2 else None
                if w is not None:
                    yield op, w, b

    def params(self) -> int:
        return sum(w.size + (b.size if b is not None else 0) for _, w, b in self.weights())

    def sparsity(self) -> float:
        """Fraction of layer weights (not biases) that are exactly zero."""
        zeros = total = 0
        for _, w, _ in self.weights():
            zeros += int(np.count_nonzero(w == 0))
            total += w.size
        return zeros / total if total else 0.0

    def macs(self) -> int:
        """Multiply-accumulates per inference of the conv, depthwise and dense layers."""
        return sum(self.op_macs(op) for op in self.ops)

    def op_macs(self, op) -> int:
        """One op's multiply-accumulates (0 unless conv, depthwise or dense)."""
        if op.name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            return 0
        out = self.shape(op.outputs[0])
        w = self.shape(op.inputs[1])
        if op.name == "CONV_2D":  # out NHWC, weights OHWI
            return int(np.prod(out[1:])) * w[1] * w[2] * w[3]
        if op.name == "DEPTHWISE_CONV_2D":  # weights 1HW(C*M)
            return int(np.prod(out[1:])) * w[1] * w[2]
        return int(np.prod(out)) * w[-1]  # weights (units, inputs)
