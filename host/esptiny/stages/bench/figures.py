"""What a bench's outputs say: the data's figures (accuracy and confusion for a classifier
with labels, else mean squared error or nothing; stages/outputs.py), agreement with both
references, latency, and where the timings come from."""
from __future__ import annotations

import numpy as np

from .. import outputs

# What INFO's chip name says about where the timings come from; others are measured.
LATENCY_SOURCES = [
    ("virtual-", "simulated (host time)"),  # esptiny sim
    ("posix-", "native build (host time)"),  # firmware/boards/posix
    ("qemu-", "emulated (QEMU -icount shift=0): cycles are retired instructions; "
              "microseconds are an estimate at 160 MHz, CPI 1"),  # firmware/boards/qemu_rv32
]


def latency_source(chip: str) -> str:
    for prefix, source in LATENCY_SOURCES:
        if chip.startswith(prefix):
            return source
    return "measured on device"


def _stats(a) -> dict:
    a = np.asarray(a, np.float64)
    return {"median": float(np.median(a)), "p90": float(np.percentile(a, 90)),
            "p99": float(np.percentile(a, 99)), "min": float(a.min()), "max": float(a.max())}


def _compare(dev: np.ndarray, ref: np.ndarray, out_d: dict) -> dict:
    c = outputs.compare(dev, ref, out_d)
    return {"top1_agreement": c["top1_agreement"], "max_abs_diff": c["max_diff"],
            "identical_outputs": c["identical_fraction"]}


def figures(test_set, dev, ref_tflite, ref_tflm, micros, cycles, out_d: dict) -> dict:
    """The data's figures, agreement with both references, latency (test_set aligned with dev)."""
    sc = outputs.score(dev, test_set, out_d)
    fig = {"images": int(len(dev)), "view": sc["view"], "view_why": sc["why"],
           "accuracy": sc["accuracy"], "mse": sc["mse"],
           "device_vs_tflite": _compare(dev, ref_tflite, out_d),
           "device_vs_tflm": _compare(dev, ref_tflm, out_d),
           "latency_us": _stats(micros), "latency_cycles": _stats(cycles)}
    if sc["view"] == "labels":
        cm = np.asarray(sc["confusion"])
        fig.update(correct=int(np.trace(cm)), predictions=sc["predictions"],
                   confusion_matrix=sc["confusion"],
                   per_class_accuracy=[float(a) for a in cm.diagonal() / np.maximum(cm.sum(1), 1)])
    return fig
