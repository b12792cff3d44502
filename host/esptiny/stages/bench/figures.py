"""What a bench's outputs say: accuracy, agreement with both references, latency, and where
the timings come from."""
from __future__ import annotations

import numpy as np

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


def _compare(dev: np.ndarray, ref: np.ndarray) -> dict:
    diff = np.abs(dev.astype(np.float64) - ref.astype(np.float64)).reshape(len(dev), -1)
    return {"top1_agreement": float(np.mean(dev.reshape(len(dev), -1).argmax(1)
                                            == ref.reshape(len(ref), -1).argmax(1))),
            "max_abs_diff": float(diff.max()) if diff.size else 0.0,
            "identical_outputs": float(np.mean((diff == 0).all(axis=1)))}


def figures(y, dev, ref_tflite, ref_tflm, micros, cycles, num_classes: int) -> dict:
    """Accuracy, agreement with both references, latency, confusion matrix."""
    from ..evaluate import confusion
    pred = dev.reshape(len(dev), -1).argmax(1)
    cm = confusion(y, pred, num_classes)
    per_class = cm.diagonal() / np.maximum(cm.sum(1), 1)
    return {"images": int(len(y)), "correct": int((pred == y).sum()),
            "predictions": pred.tolist(),
            "accuracy": float(np.mean(pred == y)),
            "device_vs_tflite": _compare(dev, ref_tflite),
            "device_vs_tflm": _compare(dev, ref_tflm),
            "latency_us": _stats(micros), "latency_cycles": _stats(cycles),
            "confusion_matrix": cm.tolist(), "per_class_accuracy": [float(a) for a in per_class]}
