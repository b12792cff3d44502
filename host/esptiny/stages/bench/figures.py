"""What a bench's outputs say: the data's figures (accuracy and confusion for a classifier
with labels, else mean squared error or nothing; stages/outputs.py), agreement with both
references, latency (host or device microseconds; cycles only from a device's own counter,
instructions from the emulated core's)."""
from __future__ import annotations

import numpy as np

from .. import outputs


def _stats(a) -> dict:
    a = np.asarray(a, np.float64)
    return {"median": float(np.median(a)), "p90": float(np.percentile(a, 90)),
            "p99": float(np.percentile(a, 99)), "min": float(a.min()), "max": float(a.max())}


def _compare(dev: np.ndarray, ref: np.ndarray, out_d: dict) -> dict:
    c = outputs.compare(dev, ref, out_d)
    return {"top1_agreement": c["top1_agreement"], "max_abs_diff": c["max_diff"],
            "identical_outputs": c["identical_fraction"]}


def figures(test_set, dev, ref_tflite, ref_tflm, micros, cycles, out_d: dict, counter=None) -> dict:
    """The data's figures, agreement with both references, latency (test_set aligned with dev).
    counter: what the replies' cycle field counts ("cycles", "instructions") or None (no
    counter: no figure is made of it)."""
    sc = outputs.score(dev, test_set, out_d)
    fig = {"images": int(len(dev)), "view": sc["view"], "view_why": sc["why"],
           "accuracy": sc["accuracy"], "mse": sc["mse"],
           "device_vs_tflite": _compare(dev, ref_tflite, out_d),
           "device_vs_tflm": _compare(dev, ref_tflm, out_d),
           "latency_us": _stats(micros),
           "latency_cycles": _stats(cycles) if counter == "cycles" else None,
           "latency_instructions": _stats(cycles) if counter == "instructions" else None}
    if sc["view"] == "labels":
        cm = np.asarray(sc["confusion"])
        fig.update(correct=int(np.trace(cm)), predictions=sc["predictions"],
                   confusion_matrix=sc["confusion"],
                   per_class_accuracy=[float(a) for a in cm.diagonal() / np.maximum(cm.sum(1), 1)])
    return fig
