"""What a model's outputs say, for evaluate, bench and the report alike.

Two views, chosen by the data, never by guessing from the model:
- class labels (one integer a sample) and an output of one score per class: a classifier,
  scored by accuracy and a confusion matrix;
- anything else (regression, anomaly scores, autoencoders, or no labels at all): per-element
  agreement between runtimes (identical fraction, largest difference in quantization steps)
  and, where targets of the output's shape are given, their mean squared error.
"""
from __future__ import annotations

import numpy as np

from ..model import tflite

VIEWS = {
    "labels": "accuracy and confusion: the data gives a class label per sample",
    "targets": "mean squared error against the data's targets, and per-element agreement: "
               "the data gives a target of the output's shape per sample",
    "none": "per-element agreement only: the data has no labels or targets",
}


def confusion(y_true: np.ndarray, y_pred: np.ndarray, classes: int) -> np.ndarray:
    m = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(m, (y_true, y_pred), 1)
    return m


def per_class_scores(y: np.ndarray) -> bool:
    """One score per class a sample: a top-1 answer means something."""
    per = y.shape[1:]
    return len([d for d in per if d != 1]) == 1 and int(np.prod(per)) >= 2


def diff_unit(out_d: dict) -> str:
    return "float" if np.dtype(out_d["dtype"]).kind == "f" else f"{np.dtype(out_d['dtype']).name} steps"


def compare(a: np.ndarray, b: np.ndarray, out_d: dict) -> dict:
    """Per-element agreement of two runtimes' raw outputs for the same inputs."""
    n = len(a)
    da = a.reshape(n, -1).astype(np.float64)
    db = b.reshape(n, -1).astype(np.float64)
    diff = np.abs(da - db)
    top1 = float(np.mean(da.argmax(1) == db.argmax(1))) if per_class_scores(a) and n else None
    big = float(diff.max()) if diff.size else 0.0
    return {"identical_fraction": float(np.mean((diff == 0).all(axis=1))) if n else 1.0,
            "max_diff": int(big) if np.dtype(out_d["dtype"]).kind != "f" else big,
            "diff_unit": diff_unit(out_d), "top1_agreement": top1}


def score(y: np.ndarray, test_set, out_d: dict) -> dict:
    """What y (raw outputs for test_set's inputs, in order) says against the data."""
    kind = test_set.kind(out_d)
    out = {"view": kind, "why": VIEWS[kind], "accuracy": None, "mse": None}
    if kind == "labels":
        pred = y.reshape(len(y), -1).argmax(1)
        classes = int(np.prod(y.shape[1:]))
        truth = test_set.y[:len(y)].astype(np.int64)
        out.update(accuracy=float(np.mean(pred == truth)),
                   confusion=confusion(truth, pred, classes).tolist(),
                   predictions=pred.tolist())
    elif kind == "targets":
        real = tflite.to_float(y, out_d).astype(np.float64).reshape(len(y), -1)
        want = test_set.targets(out_d)[:len(y)].reshape(len(y), -1)
        out["mse"] = float(np.mean((real - want) ** 2))
    return out
