"""Training and fine-tuning with a progress bar (tf_keras)."""
from __future__ import annotations

import math

import numpy as np

from ..progress import bar


def compile_model(model, lr: float):
    from ..tf import keras
    model.compile(optimizer=keras.optimizers.Adam(lr),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=_logits(model)),
                  metrics=["accuracy"])


def _logits(model) -> bool:
    """True unless the last layer already applies softmax."""
    act = getattr(model.layers[-1], "activation", None)
    return getattr(act, "__name__", "") != "softmax"


def fit(model, x, y, epochs: int, batch_size: int = 128, lr: float = 2e-3,
        label: str = "train", callbacks=(), recompile: bool = True):
    """Adam with a cosine learning-rate decay; one progress bar over all batches."""
    from ..tf import keras
    if recompile:
        compile_model(model, lr)
    steps = math.ceil(len(x) / batch_size)

    class Bar(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            advance(1, loss=f"{logs.get('loss', 0):.3f}", acc=f"{logs.get('accuracy', 0):.3f}")

    sched = keras.callbacks.LearningRateScheduler(
        lambda e: lr * 0.5 * (1 + math.cos(math.pi * e / max(epochs, 1))))
    with bar(label, total=steps * epochs) as advance:
        model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0,
                  callbacks=[sched, Bar(), *callbacks])
    return model


def accuracy(model, x, y) -> float:
    logits = model.predict(x, batch_size=512, verbose=0)
    return float(np.mean(np.argmax(logits, axis=1) == y))
