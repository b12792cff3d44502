"""The train stage (build or adopt a model, fit it, save it with the data it used), and the
fitting loop the compression methods fine-tune with (tf_keras, a progress bar)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .. import atomic
from ..errors import UserError
from ..progress import bar, say
from . import data, models
from .run import Run

MODEL_FILE = "model/model.keras"
DEFAULT_EPOCHS = {"cnn": 12, "mlp": 10}


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


def train(run: Run, model_name: str = "cnn", keras_model=None, data_npz=None, data_dir=None,
          train_limit=None, test_limit=None, epochs=None, batch_size: int = 128,
          lr: float = 2e-3, seed: int = 0) -> dict:
    """Train (or adopt a user's saved model), save it and record the data it used."""
    from ..tf import seed as set_seed
    ds_spec = data.spec(data_npz, data_dir, train_limit, test_limit)
    ds = data.from_spec(ds_spec)
    set_seed(seed)
    with run.timed("train") as entry:
        if keras_model:
            model = models.load_keras(keras_model)
            name, trained_epochs = Path(keras_model).name, 0
            if tuple(model.input_shape[1:]) != ds.input_shape:
                raise UserError(f"{keras_model}: input shape {tuple(model.input_shape[1:])} "
                                f"does not match the data's {ds.input_shape}")
        else:
            model = models.build(model_name, ds.input_shape, ds.num_classes)
            name = model_name
        if epochs is None:
            epochs = 0 if keras_model else DEFAULT_EPOCHS.get(model_name, 10)
        if epochs < 0:
            raise UserError(f"--epochs must be 0 or more, not {epochs}")
        if epochs:
            fit(model, ds.x_train, ds.y_train, epochs, batch_size, lr, label=f"train {name}")
            trained_epochs = epochs
        acc = accuracy(model, ds.x_test, ds.y_test)
        with atomic.atomic_path(run.file(MODEL_FILE), suffix=".keras") as tmp:
            model.save(tmp)
        entry.update(model=MODEL_FILE, model_name=name, epochs=trained_epochs,
                     batch_size=batch_size, lr=lr, seed=seed, dataset=ds_spec,
                     data_source=ds.source, labels=list(ds.labels),
                     input_shape=list(ds.input_shape), train_images=len(ds.x_train),
                     test_images=len(ds.x_test), params=int(model.count_params()),
                     keras_test_accuracy=acc)
    say(f"trained {name}: {acc:.2%} test accuracy (Keras, {len(ds.x_test)} images)")
    return entry


def load_model(run: Run):
    from ..tf import keras
    return keras.models.load_model(run.file(run.stage("train")["model"]), compile=False)
