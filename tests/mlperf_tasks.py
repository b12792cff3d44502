"""The four MLPerf Tiny tasks as look-alikes (tests/zoo.py's tf_keras architectures on its
synthetic data), each brought into a run with `esptiny import` as a user brings the
reference .tflite files. For tests and benchmarks/mlperf_tiny.py.

Anomaly detection's test set: normal inputs (the autoencoder's four training signals,
label 0) and anomalies (the same signals with a burst of noise over a fifth of the
frame, label 1), as the benchmark's machine-sound set mixes normal and anomalous clips."""
from __future__ import annotations

import numpy as np
import zoo

# task -> (zoo model, what the reference model is)
TASKS = {
    "ic01": ("resnet8", "image classification, ResNet-8, 32x32x3"),
    "kws01": ("ds_cnn", "keyword spotting, DS-CNN, 49x10x1"),
    "vww01": ("mobilenet_v1_025_96_rgb", "visual wake words, MobileNet-v1 0.25, 96x96x3"),
    "ad01": ("autoencoder", "anomaly detection, dense autoencoder, 640 in and out"),
}


def test_data(task: str, n: int) -> tuple:
    """(x float32, y int64) for the task's look-alike: class labels, or 0 normal / 1
    anomaly for ad01 (alternating)."""
    name = TASKS[task][0]
    x = zoo.inputs(name, n)
    if task != "ad01":
        return x, zoo.labels(name, n).astype(np.int64)
    spec = zoo.ZOO[name]
    y = (np.arange(n) % 2).astype(np.int64)
    rng = np.random.default_rng(7)
    x = x.copy()
    for i in np.flatnonzero(y):
        start = int(rng.integers(0, 640 - 128))
        x[i, start:start + 128] = rng.uniform(spec.low, spec.high, 128).astype(np.float32)
    return x, y


def make_run(path, task: str, n: int):
    """A run at `path` holding the task's int8 look-alike as variant 'int8' with n test
    inputs and their labels (esptiny import)."""
    from esptiny.stages import importer
    from esptiny.stages.run import Run
    path.mkdir(parents=True, exist_ok=True)
    model = path.parent / f"{task}.tflite"
    model.write_bytes(zoo.tflite(TASKS[task][0]))
    x, y = test_data(task, n)
    npz = path.parent / f"{task}-test.npz"
    np.savez(npz, x_test=x, y_test=y)
    run = Run(path)
    importer.import_model(run, model, data_path=npz, name="int8")
    return run
