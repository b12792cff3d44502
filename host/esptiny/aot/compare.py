"""The AOT engine beside TFLite-Micro for one model and one set of inputs: the figures the
evaluate stage and its report section show (benchmarks/aot_vs_tflm.py adds instruction
counts and flash)."""
from __future__ import annotations

import time

import numpy as np

from ..model import tflm
from . import host


def beside(model_bytes: bytes, x: np.ndarray, y_tflm: np.ndarray, arena_tflm: int) -> dict:
    """The AOT engine on x (already in the model's input dtype), its outputs compared byte
    for byte with TFLite-Micro's y_tflm for the same inputs; arenas, weights, host time."""
    t0 = time.perf_counter()
    with host.Runner(model_bytes) as r:
        y_aot = r.run(x)
        info = r.info
    t_aot = time.perf_counter() - t0
    same = np.all(y_aot.reshape(len(x), -1) == y_tflm.reshape(len(x), -1), axis=1)
    return {
        "images": len(x),
        "identical": int(same.sum()),
        "bit_exact_fraction": float(same.mean()) if len(x) else 1.0,
        "arena_bytes_aot": info["arena_bytes"],
        "arena_bytes_aot_unfused": info["arena_bytes_unfused"],
        "arena_bytes_tflm": arena_tflm,
        "ram_ratio": info["arena_bytes"] / arena_tflm,
        "weights_bytes_aot": info["weights_bytes"],
        "weights_bytes_int8": info["weights_bytes_int8"],
        "packed_layers": info["packed_layers"],
        "tflite_bytes": len(model_bytes),
        "seconds_aot_host": round(t_aot, 2),
    }


def side_by_side(model_bytes: bytes, x: np.ndarray, progress=None) -> dict:
    """beside(), running TFLite-Micro's host runtime on x first (and timing it)."""
    t0 = time.perf_counter()
    y_tflm = tflm.run(model_bytes, x, progress=progress)
    t_tflm = time.perf_counter() - t0
    figures = beside(model_bytes, x, y_tflm, tflm.arena_bytes(model_bytes)["total"])
    figures["seconds_tflm_host"] = round(t_tflm, 2)
    return figures
