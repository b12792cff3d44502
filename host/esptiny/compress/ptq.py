"""Post-training conversions: float32, float16, dynamic range, full-integer int8."""
from __future__ import annotations

import numpy as np


def _converter(model):
    from ..tf import tf
    return tf.lite.TFLiteConverter.from_keras_model(model)


def float32(model) -> bytes:
    return _converter(model).convert()


def float16(model) -> bytes:
    from ..tf import tf
    c = _converter(model)
    c.optimizations = [tf.lite.Optimize.DEFAULT]
    c.target_spec.supported_types = [tf.float16]
    return c.convert()


def dynamic_range(model) -> bytes:
    from ..tf import tf
    c = _converter(model)
    c.optimizations = [tf.lite.Optimize.DEFAULT]
    return c.convert()


def int8(model, representative: np.ndarray) -> bytes:
    """Full-integer: int8 weights, activations, input and output.

    `representative` is a sample of training images (float32, model input layout),
    used to calibrate activation ranges.
    """
    from ..tf import tf
    c = _converter(model)
    c.optimizations = [tf.lite.Optimize.DEFAULT]
    rep = np.asarray(representative, np.float32)

    def gen():
        for i in range(len(rep)):
            yield [rep[i:i + 1]]

    c.representative_dataset = gen
    c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    c.inference_input_type = tf.int8
    c.inference_output_type = tf.int8
    return c.convert()
