"""The TFLite interpreter (ai-edge-litert): the reference every other runtime is held to.
Like TFLite-Micro it is C++ that a model reaches only verified and probed (tflm.py)."""
from __future__ import annotations

import numpy as np

from ..errors import UserError
from ..quiet import captured_stderr
from . import probe
from .reader import parse


def interpreter(model_bytes: bytes):
    parse(model_bytes)
    probe.probe("litert", model_bytes)
    from ai_edge_litert.interpreter import Interpreter
    try:
        with captured_stderr(replay_on_error=False):  # LiteRT announces XNNPACK on fd 2
            interp = Interpreter(model_content=bytes(model_bytes), num_threads=1)
            interp.allocate_tensors()
    except (RuntimeError, ValueError) as e:
        raise UserError(f"not a usable TFLite model: {str(e).splitlines()[0][:160]}") from None
    return interp


def io_details(model_bytes: bytes) -> tuple:
    """(input details, output details) of a single-input, single-output model."""
    interp = interpreter(model_bytes)
    ins, outs = interp.get_input_details(), interp.get_output_details()
    if len(ins) != 1 or len(outs) != 1:
        raise UserError(f"esptiny takes models with one input and one output; this model has "
                        f"{len(ins)} input(s) and {len(outs)} output(s)")
    return ins[0], outs[0]


def quant_params(details: dict) -> tuple:
    """(scale, zero point) of a tensor; (0.0, 0) when it is not quantized."""
    scale, zp = details.get("quantization", (0.0, 0))
    return float(scale), int(zp)


def to_input(x: np.ndarray, details: dict) -> np.ndarray:
    """Float images -> the model's input dtype (quantized with its scale and zero point)."""
    dtype = np.dtype(details["dtype"])
    if dtype == np.float32:
        return x.astype(np.float32)
    scale, zp = quant_params(details)
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zp, info.min, info.max).astype(dtype)


def to_float(y: np.ndarray, details: dict) -> np.ndarray:
    scale, zp = quant_params(details)
    if np.dtype(details["dtype"]) == np.float32 or scale == 0.0:
        return y.astype(np.float32)
    return (y.astype(np.float32) - zp) * scale


def run(model_bytes: bytes, x: np.ndarray, progress=None, batch: int = 256) -> np.ndarray:
    """Raw outputs (the model's output dtype) for inputs already in the input dtype: one row
    an input, batched where the output follows the input's batch axis."""
    interp = interpreter(model_bytes)
    d_in, d_out = interp.get_input_details()[0], interp.get_output_details()[0]
    outs = []
    for i in range(0, len(x), batch):
        chunk = x[i:i + batch]
        interp.resize_tensor_input(d_in["index"], [len(chunk), *d_in["shape"][1:]])
        interp.allocate_tensors()
        interp.set_tensor(d_in["index"], chunk)
        interp.invoke()
        out = interp.get_tensor(d_out["index"])
        if out.shape[:1] != (len(chunk),):  # the output ignores the batch axis: one at a time
            return _one_by_one(interp, d_in, d_out, x, progress, done=i)
        outs.append(out.copy())
        if progress:
            progress(len(chunk))
    return np.concatenate(outs, axis=0)


def _one_by_one(interp, d_in, d_out, x, progress, done: int) -> np.ndarray:
    interp.resize_tensor_input(d_in["index"], list(d_in["shape"]))
    interp.allocate_tensors()
    outs = []
    for i in range(len(x)):
        interp.set_tensor(d_in["index"], x[i:i + 1].reshape(d_in["shape"]))
        interp.invoke()
        outs.append(interp.get_tensor(d_out["index"]).copy())
        if progress and i >= done:
            progress(1)
    return np.concatenate(outs, axis=0) if outs[0].shape[:1] == (1,) else np.stack(outs)
