"""Model builders (tf_keras) and loading a user's saved classifier."""
from __future__ import annotations

from pathlib import Path

from ..errors import UserError


def mlp(input_shape, num_classes):
    """The seed's model: Flatten, Dense 128 relu, Dense 10."""
    from ..tf import keras
    L = keras.layers
    return keras.Sequential([
        L.Input(input_shape),
        L.Flatten(),
        L.Dense(128, activation="relu"),
        L.Dense(num_classes),
    ], name="mlp")


def cnn(input_shape, num_classes):
    """A small conv net: three conv-BN-ReLU-pool blocks (16, 32, 64 filters), a 128-unit
    dense layer. About 99K parameters and 2M MACs for 28x28 inputs; 92% on Fashion-MNIST
    after 8 epochs of 256 (stages/train.py RECIPES). Batch norm folds into the convolutions when converted; its momentum
    is 0.9 so that short trainings (tests, fine-tunes) still get usable statistics."""
    from ..tf import keras
    L = keras.layers
    layers = [L.Input(input_shape)]
    for filters in (16, 32, 64):
        layers += [L.Conv2D(filters, 3, padding="same", use_bias=False),
                   L.BatchNormalization(momentum=0.9), L.ReLU(), L.MaxPooling2D()]
    layers += [L.Flatten(), L.Dropout(0.3), L.Dense(128, activation="relu"), L.Dense(num_classes)]
    return keras.Sequential(layers, name="cnn")


BUILDERS = {"cnn": cnn, "mlp": mlp}


def build(name: str, input_shape, num_classes):
    if name not in BUILDERS:
        raise UserError(f"unknown model '{name}'; choose one of {', '.join(BUILDERS)}, or pass --keras-model FILE")
    return BUILDERS[name](input_shape, num_classes)


def load_keras(path):
    """A user's saved Keras classifier (.keras, .h5 or SavedModel folder)."""
    from ..tf import keras
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such model file")
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as e:  # keras raises many types for a file that is not a model
        raise UserError(f"{path}: not a loadable Keras model ({str(e).splitlines()[0][:160]})") from None
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UserError(f"{path}: esptiny takes models with one input and one output; this model "
                        f"has {len(model.inputs)} input(s) and {len(model.outputs)} output(s)")
    return model


def is_classifier(model) -> bool:
    shape = model.outputs[0].shape
    return len(shape) == 2 and shape[-1] is not None and shape[-1] >= 2


def check_classifier(model, where: str):
    shape = model.outputs[0].shape
    if len(shape) != 2 or shape[-1] is None or shape[-1] < 2:
        raise UserError(f"{where}: output shape {tuple(shape)} is not (batch, classes)")
