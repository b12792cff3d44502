"""TFLite-Micro's host runtime: the device's numerics and arena size, on the host.

The PyPI package `tflite-micro` runs TFLite-Micro's reference kernels; a board runs
the same kernels (or ESP-NN's, which are bit-exact with them for int8).
"""
from __future__ import annotations

import re

import numpy as np

from ..errors import UserError
from ..quiet import captured_stderr

# How far TFLite-Micro's outputs may be from the TFLite interpreter's on the same int8
# model: its kernels round some steps differently. Measured (FACTS.md): on 10,000
# Fashion-MNIST images, 9,989 top-1 agreements and at most 1 int8 step apart.
TFLITE_MAX_STEPS = 1
TFLITE_MIN_TOP1 = 0.99

_ARENA_RE = re.compile(r"Arena allocation total (\d+) bytes")
_HEAD_RE = re.compile(r"Arena allocation head (\d+) bytes")
_TAIL_RE = re.compile(r"Arena allocation tail (\d+) bytes")


def interpreter(model_bytes: bytes, arena_size: int | None = None):
    from tflite_micro.python.tflite_micro import runtime
    try:
        if arena_size is None:
            return runtime.Interpreter.from_bytes(bytes(model_bytes))
        return runtime.Interpreter.from_bytes(bytes(model_bytes), arena_size=arena_size)
    except Exception as e:  # the runtime raises RuntimeError, ValueError, struct.error, ...
        first = (str(e).splitlines() or [type(e).__name__])[0]
        raise UserError(f"TFLite-Micro cannot load this model: {first}") from None


def arena_bytes(model_bytes: bytes) -> dict:
    """The arena TFLite-Micro records for this model: total, head and tail bytes."""
    interp = interpreter(model_bytes)
    d = interp.get_input_details(0)
    interp.set_input(np.zeros(d["shape"], dtype=d["dtype"]), 0)
    interp.invoke()
    with captured_stderr() as cap:
        interp.print_allocations()
    text = cap.text
    m = _ARENA_RE.search(text)
    assert m, f"TFLite-Micro printed no arena total: {text[:200]!r}"
    head, tail = _HEAD_RE.search(text), _TAIL_RE.search(text)
    return {"total": int(m.group(1)),
            "head": int(head.group(1)) if head else None,
            "tail": int(tail.group(1)) if tail else None}


def run(model_bytes: bytes, x: np.ndarray, progress=None) -> np.ndarray:
    """Outputs of TFLite-Micro's host runtime for a batch given in the model's input dtype."""
    interp = interpreter(model_bytes)
    outs = []
    for i in range(len(x)):
        interp.set_input(x[i:i + 1], 0)
        interp.invoke()
        outs.append(interp.get_output(0).copy())
        if progress:
            progress(1)
    return np.concatenate(outs, axis=0)
