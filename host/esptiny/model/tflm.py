"""TFLite-Micro's host runtime: the device's numerics and arena size, on the host.

The PyPI package `tflite-micro` runs TFLite-Micro's reference kernels; a board runs
the same kernels (or ESP-NN's, which are bit-exact with them for int8). TFLite-Micro
trusts the bytes it is given, so a model reaches it only verified (reader.parse) and
after a child process has run it once (probe.py): a model it would crash on is a
one-line ModelRefused, never a crash of esptiny.
"""
from __future__ import annotations

import numpy as np

from ..errors import UserError
from . import probe
from .reader import parse

# How far TFLite-Micro's outputs may be from the TFLite interpreter's on the same int8
# model: its kernels round some steps differently. Measured: the int8 cnn on 10,000
# Fashion-MNIST images, 9,989 top-1 agreements and at most 1 int8 step apart (FACTS.md);
# fine-tuned variants (QAT, pruned, clustered) of short trainings reach 2 steps
# (tests/test_integration.py, tests/test_pipeline.py).
TFLITE_MAX_STEPS = 2
TFLITE_MIN_TOP1 = 0.99


def checked(model_bytes: bytes) -> dict:
    """Verify the model and run it once in a child process; what the child found."""
    parse(model_bytes)
    return probe.probe("tflm", model_bytes)


def interpreter(model_bytes: bytes, arena_size: int | None = None):
    checked(model_bytes)
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
    return dict(checked(model_bytes)["arena"])


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
