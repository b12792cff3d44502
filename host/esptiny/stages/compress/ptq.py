"""Post-training conversions: float32, float16, dynamic range, full-integer int8."""
from __future__ import annotations

import numpy as np

from ...quiet import captured_stderr


def _converter(model):
    from ...tf import tf
    return tf.lite.TFLiteConverter.from_keras_model(model)


def _convert(c) -> bytes:
    """Convert with the converter's native-code chatter captured (replayed on failure)."""
    import warnings
    with captured_stderr(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return c.convert()


def float32(model) -> bytes:
    return _convert(_converter(model))


def float16(model) -> bytes:
    from ...tf import tf
    c = _converter(model)
    c.optimizations = [tf.lite.Optimize.DEFAULT]
    c.target_spec.supported_types = [tf.float16]
    return _convert(c)


def dynamic_range(model) -> bytes:
    from ...tf import tf
    c = _converter(model)
    c.optimizations = [tf.lite.Optimize.DEFAULT]
    return _convert(c)


def representative(ds, n: int) -> np.ndarray:
    """n training images spread over the whole training set (deterministic)."""
    assert n >= 1, "rep_samples is checked by compress.registry.options"
    idx = np.linspace(0, len(ds.x_train) - 1, min(n, len(ds.x_train))).astype(int)
    return ds.x_train[idx]


def int8_calibrated(model, ds, rep_samples: int) -> bytes:
    """int8() calibrated on rep_samples training images of ds."""
    return int8(model, representative(ds, rep_samples))


IO_TYPES = ("int8", "float32")


def int8(model, representative: np.ndarray, io_type: str = "int8") -> bytes:
    """Full-integer: int8 weights and activations; int8 input and output, or float32 ones
    (io_type="float32": a QUANTIZE at the input edge, a DEQUANTIZE at the output edge).

    `representative` is a sample of training images (float32, model input layout),
    used to calibrate activation ranges.
    """
    assert io_type in IO_TYPES, f"io_type {io_type!r} is not one of {IO_TYPES}"
    from ...tf import tf
    c = _converter(model)
    c.optimizations = [tf.lite.Optimize.DEFAULT]
    rep = np.asarray(representative, np.float32)

    def gen():
        for i in range(len(rep)):
            yield [rep[i:i + 1]]

    c.representative_dataset = gen
    c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if io_type == "int8":  # else the converter's default: float32 at both edges
        c.inference_input_type = tf.int8
        c.inference_output_type = tf.int8
    # Per-tensor dense weights (TF's default before 2.16): per-channel costs 24 bytes of
    # scale and zero point per unit for weights and bias, and measured no accuracy gain.
    c._experimental_disable_per_channel_quantization_for_dense_layers = True
    return _convert(c)
