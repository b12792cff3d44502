"""The train stage (build or adopt a model, fit it, save it with the data it used), and the
fitting loop the compression methods fine-tune with (tf_keras, a progress bar)."""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from .. import atomic
from ..errors import UserError
from ..progress import bar, say
from . import data, models
from .run import Run

MODEL_FILE = "model/model.keras"
# Each model's training recipe: (epochs, batch size, peak learning rate), chosen by
# measurement on Fashion-MNIST (docs/design.md): the cnn reaches 92.1% in 8 epochs of 256.
RECIPES = {"cnn": (8, 256, 4e-3), "mlp": (10, 128, 2e-3)}
DEFAULT_RECIPE = (10, 128, 2e-3)


def compile_model(model, lr: float):
    from ..tf import keras
    model.compile(optimizer=keras.optimizers.Adam(lr),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=_logits(model)),
                  metrics=["accuracy"])


def _logits(model) -> bool:
    """True unless the last layer already applies softmax."""
    act = getattr(model.layers[-1], "activation", None)
    return getattr(act, "__name__", "") != "softmax"


_FIT_SECONDS = [0.0]  # every fit() of this process, for the stages' time breakdown


def fit_seconds() -> float:
    """Seconds this process has spent in fit() so far."""
    return _FIT_SECONDS[0]


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
    t0 = time.perf_counter()
    with bar(label, total=steps * epochs) as advance:
        model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0,
                  callbacks=[sched, Bar(), *callbacks])
    _FIT_SECONDS[0] += time.perf_counter() - t0
    return model


def accuracy(model, x, y) -> float:
    logits = model.predict(x, batch_size=512, verbose=0)
    return float(np.mean(np.argmax(logits, axis=1) == y))


def train(run: Run, model_name: str = "cnn", keras_model=None, data_npz=None, data_dir=None,
          train_limit=None, test_limit=None, epochs=None, batch_size: int | None = None,
          lr: float | None = None, seed: int = 0) -> dict:
    """Train (or adopt a user's saved model), save it and record the data it used."""
    from ..tf import seed as set_seed
    ds_spec = data.spec(data_npz, data_dir, train_limit, test_limit)
    ds = data.from_spec(ds_spec)
    set_seed(seed)
    with run.timed("train") as entry:
        if keras_model:
            model = models.load_keras(keras_model)
            name, trained_epochs = Path(keras_model).name, 0
            ds = _fit_to_model(ds, tuple(model.input_shape[1:]), keras_model)
        else:
            if ds.y_train is None or not data.is_labels(ds.y_train):
                raise UserError(f"{ds.source}: training a {model_name} needs y_train, one class label a sample")
            model = models.build(model_name, ds.input_shape, ds.num_classes)
            name = model_name
        recipe = RECIPES.get(model_name, DEFAULT_RECIPE)
        if epochs is None:
            epochs = 0 if keras_model else recipe[0]
        batch_size = batch_size or recipe[1]
        lr = lr or recipe[2]
        if epochs < 0:
            raise UserError(f"--epochs must be 0 or more, not {epochs}")
        classifier = models.is_classifier(model) and ds.y_test is not None and data.is_labels(ds.y_test)
        fit0 = fit_seconds()
        if epochs:
            if ds.y_train is None or not data.is_labels(ds.y_train) or not models.is_classifier(model):
                raise UserError(f"{keras_model}: fine-tuning (--epochs) needs a classifier and "
                                "y_train class labels; --epochs 0 adopts the model as it is")
            models.check_classifier(model, str(keras_model))
            fit(model, ds.x_train, ds.y_train, epochs, batch_size, lr, label=f"train {name}")
            trained_epochs = epochs
        acc = accuracy(model, ds.x_test, ds.y_test) if classifier else None
        with atomic.atomic_path(run.file(MODEL_FILE), suffix=".keras") as tmp:
            model.save(tmp)
        entry.update(model=MODEL_FILE, model_name=name, epochs=trained_epochs,
                     batch_size=batch_size, lr=lr, seed=seed, dataset=ds_spec,
                     data_source=ds.source, labels=list(ds.labels) if classifier else [],
                     classifier=bool(classifier),
                     input_shape=list(ds.input_shape), train_images=len(ds.x_train),
                     test_images=len(ds.x_test), params=int(model.count_params()),
                     keras_test_accuracy=acc, fit_seconds=round(fit_seconds() - fit0, 2))
    say(f"{'trained' if trained_epochs else 'adopted'} {name}: "
        + (f"{acc:.2%} test accuracy (Keras, {len(ds.x_test)} images)" if acc is not None
           else f"no class labels to score ({len(ds.x_test)} test inputs)"))
    return entry


def _fit_to_model(ds, shape: tuple, where) -> "data.Dataset":
    """The data reshaped to the Keras model's input (a missing or extra axis of 1), or a
    one-line error naming both shapes."""
    def fit_one(x):
        if tuple(x.shape[1:]) == shape:
            return x
        if tuple(d for d in x.shape[1:] if d != 1) == tuple(d for d in shape if d != 1) and None not in shape:
            return x.reshape(len(x), *shape)
        raise UserError(f"{where}: the model takes inputs of shape {shape}; the data's are "
                        f"{tuple(x.shape[1:])}")
    return data.Dataset(fit_one(ds.x_train), ds.y_train, fit_one(ds.x_test), ds.y_test,
                        ds.labels, ds.source)


def load_model(run: Run):
    from ..tf import keras
    return keras.models.load_model(run.file(run.stage("train")["model"]), compile=False)
