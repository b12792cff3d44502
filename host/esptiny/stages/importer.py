"""The import stage: a user's own model into a run.

A .tflite becomes one variant of the run (variants/<name>.tflite, stage 'import'), with
the data it is evaluated and benched on stored beside it (import/<name>/): the user's
.npz or .npy, or seeded random inputs. A Keras model (.keras, .h5, SavedModel folder) is
adopted as the run's model and compressed into every variant, as `train --keras-model`
then `compress` do.

Nothing is written until the model is verified (model/reader.py), both runtimes have
run it once in a child process (model/probe.py), and the data fits its input.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .. import atomic
from ..errors import ModelRefused, UserError
from ..model import tflite, tflm
from ..model.reader import Graph
from ..progress import say
from . import data
from .compress.registry import NO_TFLM_KERNELS
from .run import Run

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
RANDOM_SEED = 0
WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")


def import_model(run: Run, model_path, data_path=None, name=None, random_n=None,
                 seed: int = RANDOM_SEED, methods=None) -> dict:
    """Import MODEL into the run; return the manifest entry of what was imported."""
    path = Path(model_path)
    if not path.exists():
        raise UserError(f"{path}: no such model file")
    if path.suffix == ".tflite":
        return import_tflite(run, path, data_path, name, random_n, seed)
    if path.is_dir() or path.suffix in KERAS_SUFFIXES:
        if name is not None:
            raise UserError("--name names an imported .tflite; a Keras model becomes the run's model "
                            "and its variants are named by compression method")
        return import_keras(run, path, data_path, random_n, methods)
    raise UserError(f"{path}: not a model esptiny can import; give a .tflite, a .keras or .h5 "
                    "file, or a SavedModel folder")


def variant_name(path: Path, name: str | None) -> str:
    name = name if name is not None else re.sub(r"[^A-Za-z0-9_-]+", "_", path.stem).strip("_")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", name or ""):
        raise UserError(f"--name {name!r}: use letters, digits, '-' and '_' (at most 64)")
    return name


def model_type(g: Graph) -> tuple:
    """(type name, reason a board cannot run it or None): int8, float32, float16, dynamic,
    or the input's type for anything else."""
    types = {t.dtype_name for t in g.tensors}
    if "float16" in types:
        return "float16", "float16 weights: " + NO_TFLM_KERNELS
    for op in g.ops:
        if op.name in WEIGHTED_OPS and len(op.inputs) > 1 and min(op.inputs[:2]) >= 0:
            act, w = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]]
            if act.dtype_name == "float32" and w.dtype_name == "int8":
                return "dynamic", "hybrid dynamic-range model: " + NO_TFLM_KERNELS
    if "int8" in types:
        return "int8", None
    if types <= {"float32", "int32", "int64", "bool"}:
        return "float32", None
    return g.tensors[g.inputs[0]].dtype_name, None


def _one_in_one_out(g: Graph, where: str):
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        raise ModelRefused(f"{where}: esptiny takes models with one input and one output; this "
                           f"model has {len(g.inputs)} input(s) and {len(g.outputs)} output(s)")


def float_span(g: Graph) -> tuple | None:
    """The real range a QUANTIZE right after a float input can represent, if there is one."""
    i = g.inputs[0]
    for op in g.ops:
        if op.name == "QUANTIZE" and op.inputs and op.inputs[0] == i:
            q = g.tensors[op.outputs[0]]
            if q.quantized and q.dtype_name in ("int8", "uint8", "int16"):
                info = np.iinfo(np.dtype(q.dtype_name))
                return ((info.min - q.zero_point) * q.scale, (info.max - q.zero_point) * q.scale)
    return None


def test_data(in_d: dict, out_d: dict, g: Graph, data_path, random_n, seed) -> tuple:
    """(inputs as given, y or None, class names, source, random count or None), checked."""
    if data_path and random_n:
        raise UserError("give --data FILE or --random N, not both")
    if not data_path and not random_n:
        raise UserError("the model needs inputs to be evaluated on: --data FILE (.npz with "
                        "x_test [and y_test], or .npy of inputs) or --random N (seeded inputs, no labels)")
    if random_n:
        x = data.random_inputs(in_d, int(random_n), seed, float_span(g))
        return x, None, [], f"seeded random inputs, seed {seed}", int(random_n)
    arrays = data.read_arrays(data_path)
    x, y = arrays["x_test"], arrays.get("y_test")
    labels = [str(s) for s in arrays["labels"]] if "labels" in arrays else []
    ts = data.TestSet(x, y, labels, str(data_path))
    ts.model_inputs(in_d)  # the one-line error for a shape or type that does not fit
    ts.kind(out_d)
    return x, y, labels, str(Path(data_path).resolve()), None


def import_tflite(run: Run, path: Path, data_path=None, name=None, random_n=None,
                  seed: int = RANDOM_SEED) -> dict:
    blob = path.read_bytes()
    where = str(path)
    g = Graph(blob)
    _one_in_one_out(g, where)
    name = variant_name(path, name)
    if run.path.exists() and run.has("compress") and name in run.stage("compress")["variants"]:
        raise UserError(f"{run.path} already has a variant '{name}' made by compress; choose "
                        "another --name")
    kind, reason = model_type(g)
    try:
        in_d, out_d = tflite.io_details(blob)
    except ModelRefused as e:
        raise ModelRefused(f"{where}: {e}") from None
    if reason is None:
        try:
            tflm.checked(blob)
        except ModelRefused as e:
            reason = str(e)
    x, y, labels, source, random = test_data(in_d, out_d, g, data_path, random_n, seed)
    rel_model = f"variants/{name}.tflite"
    rel_x, rel_y = f"import/{name}/x_test.npy", f"import/{name}/y_test.npy" if y is not None else None
    _save(run.file(rel_x), x)
    if y is not None:
        _save(run.file(rel_y), y)
    atomic.write_bytes(run.file(rel_model), blob)
    entry = {"path": rel_model, "method": f"imported .tflite ({path.name})", "bytes": len(blob),
             "deployable": reason is None, "reason": reason, "type": kind,
             "source": str(path.resolve()),
             "data": {"x": rel_x, "y": rel_y, "labels": labels, "source": source,
                      "images": int(len(x)), "random": random, "seed": seed if random else None}}
    run.record("import", {"variants": {name: entry}}, merge="variants")
    shape = "x".join(str(int(d)) for d in in_d["shape"])
    say(f"imported {path.name} as variant '{name}' of {run.path}: {kind}, {len(blob):,} B, input "
        f"{shape} {np.dtype(in_d['dtype']).name}; {len(x):,} inputs ({source})"
        + ("" if reason is None else f"; not deployable: {reason}"))
    return entry


def _save(path: Path, a: np.ndarray):
    with atomic.atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, np.asarray(a), allow_pickle=False)


def import_keras(run: Run, path: Path, data_path=None, random_n=None, methods=None) -> dict:
    """The Keras model as the run's model (no training), compressed into every variant its
    data allows: the fine-tuning methods need class labels."""
    from . import compress as compress_stage
    from . import train as train_stage
    from .compress.registry import METHODS, POST_TRAINING
    if random_n:
        raise UserError("--random takes a .tflite; a Keras model is compressed with your data "
                        "(--data FILE.npz: x_train calibrates, x_test and y_test evaluate)")
    if not data_path:
        raise UserError("a Keras model needs --data FILE.npz (x_train calibrates int8; x_test, "
                        "optional y_test evaluate)")
    entry = train_stage.train(run, keras_model=str(path), data_npz=str(data_path), epochs=0)
    if methods is None:
        methods = list(METHODS) if entry.get("classifier") else list(POST_TRAINING)
        if not entry.get("classifier"):
            say("import: no class labels for a classifier, so only the post-training methods "
                f"({', '.join(POST_TRAINING)}); QAT, pruning and clustering fine-tune on labels")
    return compress_stage.compress(run, methods)
