"""Reading a .tflite flatbuffer: its ops, weights, parameter count, sparsity and MACs.

Uses the schema that ships in the tflite-micro wheel (flatbuffers object API).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import UserError


def schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated
    return schema_py_generated


_NUMPY = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64,
          7: np.int16, 9: np.int8}
_OP_NAMES = None


def op_name(code: int) -> str:
    global _OP_NAMES
    if _OP_NAMES is None:
        B = schema().BuiltinOperator
        _OP_NAMES = {v: k for k, v in vars(B).items() if not k.startswith("_")}
    return _OP_NAMES.get(code, f"BUILTIN_{code}")


def parse(model_bytes: bytes):
    """The model as a schema ModelT; a one-line error when the bytes are not a TFLite model."""
    S = schema()
    data = bytes(model_bytes)
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise UserError("not a TFLite model (no TFL3 identifier)")
    try:
        return S.ModelT.InitFromPackedBuf(bytearray(data), 0)
    except Exception as e:  # flatbuffers raises assorted errors on corrupt data
        raise UserError(f"corrupt TFLite model ({type(e).__name__})") from None


@dataclass
class Op:
    name: str
    inputs: list
    outputs: list
    options: object


class Graph:
    """The first subgraph of a model, with tensors decoded on demand."""

    def __init__(self, model_bytes: bytes):
        self.model = parse(model_bytes)
        if not self.model.subgraphs:
            raise UserError("TFLite model has no subgraph")
        self.sg = self.model.subgraphs[0]
        codes = self.model.operatorCodes
        self.ops = [Op(op_name(max(codes[o.opcodeIndex].builtinCode,
                                   codes[o.opcodeIndex].deprecatedBuiltinCode)),
                       list(o.inputs), list(o.outputs), o.builtinOptions)
                    for o in (self.sg.operators or [])]

    def op_names(self) -> list:
        """Distinct builtin op names, in first-use order."""
        return list(dict.fromkeys(op.name for op in self.ops))

    def tensor(self, i: int):
        return self.sg.tensors[i]

    def shape(self, i: int) -> tuple:
        s = self.tensor(i).shape
        return tuple(int(d) for d in s) if s is not None else ()

    def constant(self, i: int) -> np.ndarray | None:
        """A constant tensor's values (following a DEQUANTIZE of a constant), else None."""
        if i < 0:
            return None
        t = self.tensor(i)
        buf = self.model.buffers[t.buffer].data if t.buffer < len(self.model.buffers) else None
        if buf is not None and len(buf) and t.type in _NUMPY:
            return np.frombuffer(bytes(buf), _NUMPY[t.type]).reshape(self.shape(i) or (-1,))
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
        total = 0
        for op in self.ops:
            if op.name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
                continue
            out = self.shape(op.outputs[0])
            w = self.shape(op.inputs[1])
            if op.name == "CONV_2D":  # out NHWC, weights OHWI
                total += int(np.prod(out[1:])) * w[1] * w[2] * w[3]
            elif op.name == "DEPTHWISE_CONV_2D":  # weights 1HW(C*M)
                total += int(np.prod(out[1:])) * w[1] * w[2]
            else:  # weights (units, inputs)
                total += int(np.prod(out)) * w[-1]
        return total
