"""What the firmware needs to know of a model: one input and one output the protocol can
carry (type, rank 1..4, dimensions; any size, in pieces when a frame cannot carry them),
their shapes and quantization. Whether they fit the board is the RAM's question (fit.py:
the tensor arena holds them)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..crc import crc32
from ..errors import ModelRefused
from ..link import mlperf_tiny
from ..link import protocol as P
from ..model.reader import Graph, Tensor


def tensor_view(t: Tensor) -> dict:
    """A tensor as the model_config.h template and the export's JSON describe it."""
    return {"dtype": t.dtype, "dtype_name": t.dtype_name, "shape": list(t.shape),
            "rank": len(t.shape), "dims": list(t.shape) + [1] * (4 - len(t.shape)),
            "shape_text": "[" + ", ".join(str(d) for d in t.shape) + "]",
            "scale": t.scale, "zero_point": t.zero_point, "quantized": t.quantized,
            "scale_text": np.format_float_positional(np.float32(t.scale), unique=True, trim="0"),
            "bytes": t.nbytes}


def tensor_dict(t: Tensor) -> dict:
    return {"dtype": t.dtype_name, "shape": list(t.shape), "scale": t.scale,
            "zero_point": t.zero_point, "bytes": t.nbytes}


@dataclass
class Model:
    data: bytes
    graph: object
    ops: list       # distinct builtin op names, first-use order
    input: Tensor
    output: Tensor

    @property
    def crc32(self) -> int:
        return crc32(self.data)


def _tensor(graph, index: int, role: str) -> Tensor:
    t = graph.tensors[index]
    if t.dtype not in P.DTYPE_NAMES:
        raise ModelRefused(f"the model's {role} is {t.dtype_name}; the firmware's protocol "
                        f"carries {', '.join(P.DTYPE_NAMES.values())}")
    if not 1 <= len(t.shape) <= 4 or any(not 1 <= d <= 0xFFFF for d in t.shape):
        raise ModelRefused(f"the model's {role} shape {list(t.shape)} does not fit the protocol "
                        f"(rank 1 to 4, each dimension 1 to 65535)")
    return t


def read_model(data: bytes, protocol: str = "esptiny") -> Model:
    """The model's one input and one output, checked against what `protocol` carries:
    esptiny's one frame each way, or MLPerf Tiny's db buffer and result buffer
    (firmware/core/mlperf_tiny.h)."""
    graph = Graph(data)
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise ModelRefused(f"the firmware serves one input and one output; this model has "
                        f"{len(graph.inputs)} and {len(graph.outputs)}")
    model = Model(bytes(data), graph, graph.op_names(),
                  _tensor(graph, graph.inputs[0], "input"), _tensor(graph, graph.outputs[0], "output"))
    if protocol == mlperf_tiny.PROTOCOL:
        lim = mlperf_tiny.limits()
        if model.input.nbytes > lim["DB_BYTES"] or model.output.nbytes > lim["OUT_BYTES"]:
            raise ModelRefused(f"the model's input ({model.input.nbytes} B) or output "
                               f"({model.output.nbytes} B) exceeds the MLPerf Tiny firmware's db "
                               f"buffer ({lim['DB_BYTES']} B) or result buffer ({lim['OUT_BYTES']} B)")
    return model


