"""The one place TensorFlow is imported.

tensorflow-model-optimization needs Keras 2, so TF_USE_LEGACY_KERAS must be set
before TensorFlow is first imported, and models are built with tf_keras.
"""
import os

from .quiet import captured_stderr

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _quiet_import():
    """Import TensorFlow with its C++ start-up chatter (absl, CUDA probing) kept off the
    terminal; the chatter is shown only if the import fails."""
    with captured_stderr():
        import tensorflow
        import tf_keras
        tensorflow.config.list_physical_devices()  # device probing prints too
    return tensorflow, tf_keras


tf, keras = _quiet_import()
assert os.environ["TF_USE_LEGACY_KERAS"] == "1", "TF_USE_LEGACY_KERAS must be 1 for tfmot"


def tfmot():
    import tensorflow_model_optimization as _tfmot
    return _tfmot


def seed(value: int):
    keras.utils.set_random_seed(value)


__all__ = ["tf", "keras", "tfmot", "seed"]
