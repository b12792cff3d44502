"""The host stages, each reading the run manifest and writing its own entry."""
from __future__ import annotations

from pathlib import Path

from .. import atomic
from ..errors import UserError
from ..progress import say
from . import data, models
from .run import Run

MODEL_FILE = "model/model.keras"
DEFAULT_EPOCHS = {"cnn": 12, "mlp": 10}


def new_run(path) -> Run:
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{path}: exists and is not a directory")
    path.mkdir(parents=True, exist_ok=True)
    return Run(path)


def train(run: Run, model_name: str = "cnn", keras_model=None, data_npz=None, data_dir=None,
          train_limit=None, test_limit=None, epochs=None, batch_size: int = 128,
          lr: float = 2e-3, seed: int = 0) -> dict:
    """Train (or adopt a user's saved model), save it and record the data it used."""
    from ..tf import seed as set_seed
    from . import train as trainer
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
            trainer.fit(model, ds.x_train, ds.y_train, epochs, batch_size, lr, label=f"train {name}")
            trained_epochs = epochs
        acc = trainer.accuracy(model, ds.x_test, ds.y_test)
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


def compress(run: Run, methods=None, **options) -> dict:
    """Write every requested variant as variants/<name>.tflite and record them."""
    from .compress import registry
    methods = list(methods or registry.DEFAULT_METHODS)
    unknown = [m for m in methods if m not in registry.METHODS]
    if unknown:
        raise UserError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(registry.METHODS)}")
    ds = run.dataset()
    model = load_model(run)
    opts = registry.options(**options)
    old = run.manifest()["stages"].get("compress", {}).get("variants", {})
    with run.timed("compress") as entry:
        variants, ctx = dict(old), {}
        for name in methods:
            spec = registry.METHODS[name]
            say(f"compress: {name} ({spec.summary})")
            tflite_bytes, extra = spec.make(model, ds, opts, ctx)
            rel = f"variants/{name}.tflite"
            atomic.write_bytes(run.file(rel), tflite_bytes)
            variants[name] = {"path": rel, "method": spec.summary, "bytes": len(tflite_bytes),
                              "deployable": spec.deployable, "reason": spec.reason, **extra}
        entry.update(variants=variants, options=opts)
    return entry
