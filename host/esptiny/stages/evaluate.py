"""Reference evaluation of every variant: the TFLite interpreter for all, TFLite-Micro's
host runtime (the device's numerics and arena) for the ones a device can run, and the
AOT engine beside it (or why it refuses). Each variant on its own test set (run.test_set): an
imported variant on its data, a compressed one on the run's; what the figures mean
follows the data (stages/outputs.py)."""
from __future__ import annotations

import gzip

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


def evaluate(run: Run, variants=None, tflm_limit: int | None = None) -> dict:
    """Evaluate the named variants (default: all) and record them under 'evaluate'."""
    all_variants = run.variants()
    names = list(variants or all_variants)
    for n in names:
        run.variant_path(n)  # one-line error for an unknown name
    blobs = {n: run.variant_path(n).read_bytes() for n in names}
    sets = {n: run.test_set(n) for n in names}
    shared = [n for n in names if "data" not in all_variants[n]]  # the run's own test set
    reference = run.variant_path("float32").read_bytes() if "float32" in all_variants and shared else None
    limits = {n: len(sets[n]) if tflm_limit is None else min(tflm_limit, len(sets[n])) for n in names}
    deployable = [n for n in names if all_variants[n]["deployable"]]
    total = sum(len(sets[n]) for n in names) + sum(limits[n] for n in deployable)
    if reference is not None:
        total += len(sets[shared[0]])
    f32 = all_variants.get("float32", {}).get("bytes")
    with run.timed("evaluate", merge="variants") as entry, bar("evaluate", total, "inputs") as advance:
        results = {}
        ref_pred = None
        if reference is not None:
            ref_y = _tflite_outputs(reference, sets[shared[0]], advance)[1]
            ref_pred = ref_y.reshape(len(ref_y), -1).argmax(1) if outputs.per_class_scores(ref_y) else None
        for n in names:
            results[n] = _evaluate_one(run, n, blobs[n], all_variants[n], sets[n],
                                       ref_pred if n in shared else None, limits[n], advance)
        for r in results.values():
            r["size_ratio_to_float32"] = r["bytes"] / f32 if f32 else None
        entry.update(variants=results, tflm_limit=tflm_limit)
        if shared:
            entry.update(test_images=len(sets[shared[0]]), tflm_images=limits[shared[0]])
    for n in names:
        say("  " + describe(n, results[n]))
    return entry


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


def _evaluate_one(run, name, blob, spec, ts, ref_pred, n_tflm, advance) -> dict:
    g = Graph(blob)
    xq, y, d_in, d_out = _tflite_outputs(blob, ts, advance)
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
    if spec["deployable"]:
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
        r["aot"] = _aot_beside_tflm(blob, xq[:n_tflm], y_m, r["tflm"]["arena_bytes"])
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
