"""Reference evaluation of every variant: the TFLite interpreter for all, TFLite-Micro's
host runtime (the device's numerics and arena) for the ones a device can run, and the
AOT engine beside it (or why it refuses). Each variant on its own test set (run.test_set): an
imported variant on its data, a compressed one on the run's; what the figures mean
follows the data (stages/outputs.py)."""
from __future__ import annotations

import concurrent.futures
import gzip
import multiprocessing
import os
import time

import numpy as np

from .. import atomic
from ..crc import crc32
from ..errors import ModelRefused, UserError
from ..model import tflite, tflm
from ..model.reader import Graph
from ..progress import bar, say
from . import outputs
from .run import Run


def outputs_path(run: Run, variant: str, runtime: str) -> str:
    return f"evaluate/{variant}.{runtime}.npy"


def _save_outputs(run: Run, variant: str, runtime: str, y: np.ndarray) -> str:
    rel = outputs_path(run, variant, runtime)
    with atomic.atomic_path(run.file(rel)) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, y)
    return rel


def inputs_crc(x: np.ndarray) -> int:
    """What identifies a set of model inputs: their shape, dtype and bytes."""
    x = np.ascontiguousarray(x)
    return crc32(f"{x.dtype.str}{x.shape}".encode() + x.tobytes())


def jobs_default() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def evaluate(run: Run, variants=None, tflm_limit: int | None = None, jobs: int | None = None) -> dict:
    """Evaluate the named variants (default: all) and record them under 'evaluate'.

    Variants are evaluated in `jobs` processes at once (default: one per core); each
    model goes through each runtime once (float32's outputs are also the reference the
    others' agreement is measured against)."""
    all_variants = run.variants()
    names = list(variants or all_variants)
    for n in names:
        run.variant_path(n)  # one-line error for an unknown name
    sets = {n: run.test_set(n) for n in names}
    shared = [n for n in names if "data" not in all_variants[n]]  # the run's own test set
    limits = {n: len(sets[n]) if tflm_limit is None else min(tflm_limit, len(sets[n])) for n in names}
    deployable = [n for n in names if all_variants[n]["deployable"]]
    total = sum(len(sets[n]) for n in names) + sum(limits[n] for n in deployable)
    f32 = all_variants.get("float32", {}).get("bytes")
    jobs = max(1, min(jobs or jobs_default(), len(names)))
    with run.timed("evaluate", merge="variants") as entry, bar("evaluate", total, "inputs") as advance:
        ref_pred = None
        if "float32" in all_variants and shared:
            # the float32 model on the run's own test set: evaluated first, in full, so
            # that its predictions are the reference of the others
            if "float32" in names:
                first = _evaluate_one(run, "float32", all_variants["float32"], sets["float32"], None,
                                      limits["float32"], advance)
                results = {"float32": first}
                ref_y = np.load(run.file(first["outputs"]["tflite"]))
            else:
                ref_y = _tflite_outputs(run.variant_path("float32").read_bytes(), sets[shared[0]], None)[1]
                results = {}
            ref_pred = ref_y.reshape(len(ref_y), -1).argmax(1) if outputs.per_class_scores(ref_y) else None
            if "float32" in results:
                _set_agreement(results["float32"], ref_y, ref_pred)
        else:
            results = {}
        todo = [n for n in names if n not in results]
        # the slowest first (TFLite-Micro's reference kernels), so the processes finish together
        todo.sort(key=lambda n: (not all_variants[n]["deployable"], -limits[n]))
        args = [(str(run.path), n, ref_pred if n in shared else None, limits[n]) for n in todo]
        for n, r in zip(todo, _map(args, jobs, advance)):
            results[n] = r
        for r in results.values():
            r["size_ratio_to_float32"] = r["bytes"] / f32 if f32 else None
        entry.update(variants={n: results[n] for n in names}, tflm_limit=tflm_limit, jobs=jobs)
        if shared:
            entry.update(test_images=len(sets[shared[0]]), tflm_images=limits[shared[0]])
    for n in names:
        say("  " + describe(n, results[n]))
    return entry


def _set_agreement(r: dict, y: np.ndarray, ref_pred):
    pred = y.reshape(len(y), -1).argmax(1) if outputs.per_class_scores(y) else None
    r["agreement_with_float32"] = (float(np.mean(pred == ref_pred))
                                   if ref_pred is not None and pred is not None else None)


def _job(args) -> dict:
    """One variant in a worker process (what _map hands out)."""
    run_path, name, ref_pred, n_tflm = args
    run = Run(run_path)
    return _evaluate_one(run, name, run.variants()[name], run.test_set(name), ref_pred, n_tflm,
                         _count)


_counter = None  # a worker's shared progress count (multiprocessing.Value)


def _count(n=1):
    with _counter.get_lock():
        _counter.value += n


def _init_worker(counter):
    global _counter
    _counter = counter


def _map(args: list, jobs: int, advance) -> list:
    """_job over args in `jobs` processes (or here, for one), advancing the progress bar
    as the workers go. A worker starts from a fresh interpreter (forkserver), not from a
    fork of this one, which may hold TensorFlow's threads."""
    if jobs == 1 or len(args) <= 1:
        out = []
        for a in args:
            run_path, name, ref_pred, n_tflm = a
            run = Run(run_path)
            out.append(_evaluate_one(run, name, run.variants()[name], run.test_set(name), ref_pred,
                                     n_tflm, advance))
        return out
    ctx = multiprocessing.get_context("forkserver")
    counter = ctx.Value("q", 0)
    shown = 0
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker,
                                                initargs=(counter,)) as pool:
        futures = [pool.submit(_job, a) for a in args]
        pending = set(futures)
        while pending:
            _, pending = concurrent.futures.wait(pending, timeout=0.2)
            now = counter.value
            advance(now - shown)
            shown = now
        return [f.result() for f in futures]  # a worker's UserError surfaces here, as is


def describe(name: str, r: dict) -> str:
    """One line for the terminal: the data's figure, then TFLite-Micro's."""
    main = (f"accuracy {r['accuracy']:.2%}" if r.get("accuracy") is not None
            else f"MSE {r['mse']:.4g}" if r.get("mse") is not None else "no labels")
    line = f"{name:<17} {main}  {r['bytes']:>8,} B"
    t = r.get("tflm")
    if not t:
        return line + "  (not deployable)"
    same = f"{t['identical_fraction']:.2%} identical to TFLite, largest difference {t['max_output_diff']:g} {t['max_output_diff_unit']}"
    return line + f"  TFLite-Micro: {same}, arena {t['arena_bytes']:,} B"


def _tflite_outputs(model_bytes, test_set, advance):
    d_in, d_out = tflite.io_details(model_bytes)
    xq = test_set.model_inputs(d_in)
    return xq, tflite.run(model_bytes, xq, progress=advance), d_in, d_out


def _evaluate_one(run, name, spec, ts, ref_pred, n_tflm, advance) -> dict:
    blob = run.variant_path(name).read_bytes()
    g = Graph(blob)
    seconds = {}
    t0 = time.perf_counter()
    xq, y, d_in, d_out = _tflite_outputs(blob, ts, advance)
    seconds["tflite"] = round(time.perf_counter() - t0, 2)
    sc = outputs.score(y, ts, d_out)
    pred = y.reshape(len(y), -1).argmax(1) if outputs.per_class_scores(y) else None
    r = {
        "method": spec["method"],
        "bytes": len(blob),
        "gzip_bytes": len(gzip.compress(blob, 9, mtime=0)),
        "crc32": crc32(blob),
        "params": g.params(),
        "sparsity": g.sparsity(),
        "macs": g.macs(),
        "ops": g.op_names(),
        "input_dtype": np.dtype(d_in["dtype"]).name,
        "input_shape": [int(d) for d in d_in["shape"]],
        "output_dtype": np.dtype(d_out["dtype"]).name,
        "output_shape": [int(d) for d in d_out["shape"]],
        "test_images": len(ts),
        "data_source": ts.source,
        "inputs_crc32": inputs_crc(xq),
        "view": sc["view"], "view_why": sc["why"],
        "accuracy": sc["accuracy"], "mse": sc["mse"],
        "agreement_with_float32": (float(np.mean(pred == ref_pred))
                                   if ref_pred is not None and pred is not None else None),
        "deployable": spec["deployable"],
        "reason": spec["reason"],
        "outputs": {"tflite": _save_outputs(run, name, "tflite", y)},
    }
    if "confusion" in sc:
        r["confusion"] = sc["confusion"]
        r["labels"] = ts.class_names(d_out)
    r["seconds"] = seconds
    if spec["deployable"]:
        t0 = time.perf_counter()
        y_m = tflm.run(blob, xq[:n_tflm], progress=advance)
        cmp = outputs.compare(y_m, y[:n_tflm], d_out)
        m_sc = outputs.score(y_m, ts.first(n_tflm), d_out)
        r["tflm"] = {
            "images": n_tflm,
            "inputs_crc32": inputs_crc(xq[:n_tflm]),
            "accuracy": m_sc["accuracy"], "mse": m_sc["mse"],
            "agreement_with_tflite_top1": cmp["top1_agreement"],
            "identical_fraction": cmp["identical_fraction"],
            "max_output_diff": cmp["max_diff"],
            "max_output_diff_unit": cmp["diff_unit"],
            "arena_bytes": tflm.arena_bytes(blob)["total"],
        }
        r["outputs"]["tflm"] = _save_outputs(run, name, "tflm", y_m)
        seconds["tflm"] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        r["aot"] = _aot_beside_tflm(blob, xq[:n_tflm], y_m, r["tflm"]["arena_bytes"])
        seconds["aot"] = round(time.perf_counter() - t0, 2)
    return r


def _aot_beside_tflm(blob, xq, y_tflm, tflm_arena: int) -> dict:
    """esptiny's compiled C (engine aot) on the same inputs as TFLite-Micro; or why the
    compiler refuses the model; or why it could not be run here (no gcc, say)."""
    from ..aot import compare
    try:
        return compare.beside(blob, xq, y_tflm, tflm_arena)
    except ModelRefused as e:
        return {"refused": str(e)}
    except UserError as e:
        say(f"  AOT engine not run: {e}")
        return {"not_run": str(e)}
