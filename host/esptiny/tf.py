"""The one place TensorFlow is imported.

tensorflow-model-optimization needs Keras 2, so TF_USE_LEGACY_KERAS must be set
before TensorFlow is first imported, and models are built with tf_keras.
"""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

assert os.environ["TF_USE_LEGACY_KERAS"] == "1", "TF_USE_LEGACY_KERAS must be 1 for tfmot"


def tfmot():
    import tensorflow_model_optimization as _tfmot
    return _tfmot


def seed(value: int):
    keras.utils.set_random_seed(value)


__all__ = ["tf", "keras", "tfmot", "seed"]
