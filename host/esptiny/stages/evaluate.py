"""Reference evaluation of every variant: the TFLite interpreter for all, TFLite-Micro's
host runtime (the device's numerics and arena) for the ones a device can run."""
from __future__ import annotations

import gzip

import numpy as np

from .. import atomic
from ..crc import crc32
from ..errors import ModelRefused, UserError
from ..model import tflite, tflm
from ..model.reader import Graph
from ..progress import bar, say
from .run import Run


def confusion(y_true: np.ndarray, y_pred: np.ndarray, classes: int) -> np.ndarray:
    m = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(m, (y_true, y_pred), 1)
    return m


def max_step_diff(a: np.ndarray, b: np.ndarray) -> int:
    """Largest output difference in quantization steps (int outputs) — 0 for equal."""
    return int(np.max(np.abs(a.astype(np.int64) - b.astype(np.int64)))) if a.size else 0


def outputs_path(run: Run, variant: str, runtime: str) -> str:
    return f"evaluate/{variant}.{runtime}.npy"


def _save_outputs(run: Run, variant: str, runtime: str, y: np.ndarray) -> str:
    rel = outputs_path(run, variant, runtime)
    with atomic.atomic_path(run.file(rel)) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, y)
    return rel


def evaluate(run: Run, variants=None, tflm_limit: int | None = None) -> dict:
    """Evaluate the named variants (default: all) and record them under 'evaluate'."""
    ds = run.dataset()
    all_variants = run.variants()
    names = list(variants or all_variants)
    for n in names:
        run.variant_path(n)  # one-line error for an unknown name
    blobs = {n: run.variant_path(n).read_bytes() for n in names}
    reference = run.variant_path("float32").read_bytes() if "float32" in all_variants else None
    n_tflm = len(ds.x_test) if tflm_limit is None else min(tflm_limit, len(ds.x_test))
    deployable = [n for n in names if all_variants[n]["deployable"]]
    total = len(ds.x_test) * (len(names) + (reference is not None)) + n_tflm * len(deployable)
    f32 = all_variants.get("float32", {}).get("bytes")
    with run.timed("evaluate", merge="variants") as entry, bar("evaluate", total, "images") as advance:
        results = {}
        ref_pred = None
        if reference is not None:
            ref_pred = np.argmax(_tflite_outputs(reference, ds.x_test, advance)[1], axis=1)
        for n in names:
            results[n] = _evaluate_one(run, n, blobs[n], all_variants[n], ds, ref_pred,
                                       n_tflm, advance)
        for r in results.values():
            r["size_ratio_to_float32"] = r["bytes"] / f32 if f32 else None
        entry.update(variants=results, test_images=len(ds.x_test), tflm_images=n_tflm)
    for n in names:
        r = results[n]
        say(f"  {n:<17} {r['accuracy']:.2%}  {r['bytes']:>8,} B" +
            (f"  TFLite-Micro {r['tflm']['accuracy']:.2%}, arena {r['tflm']['arena_bytes']:,} B"
             if r.get("tflm") else "  (not deployable)"))
    return entry


def _tflite_outputs(model_bytes, x, advance):
    d_in, d_out = tflite.io_details(model_bytes)
    xq = tflite.to_input(x, d_in)
    return xq, tflite.run(model_bytes, xq, progress=advance), d_in, d_out


def _evaluate_one(run, name, blob, spec, ds, ref_pred, n_tflm, advance) -> dict:
    g = Graph(blob)
    xq, y, d_in, d_out = _tflite_outputs(blob, ds.x_test, advance)
    pred = np.argmax(y, axis=1)
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
        "accuracy": float(np.mean(pred == ds.y_test)),
        "agreement_with_float32": float(np.mean(pred == ref_pred)) if ref_pred is not None else None,
        "confusion": confusion(ds.y_test, pred, ds.num_classes).tolist(),
        "deployable": spec["deployable"],
        "reason": spec["reason"],
        "outputs": {"tflite": _save_outputs(run, name, "tflite", y)},
    }
    if spec["deployable"]:
        y_m = tflm.run(blob, xq[:n_tflm], progress=advance)
        pred_m = np.argmax(y_m, axis=1)
        quantized = np.dtype(d_out["dtype"]) != np.float32
        r["tflm"] = {
            "images": n_tflm,
            "accuracy": float(np.mean(pred_m == ds.y_test[:n_tflm])),
            "agreement_with_tflite_top1": float(np.mean(pred_m == pred[:n_tflm])),
            "max_output_diff": (max_step_diff(y_m, y[:n_tflm]) if quantized
                                else float(np.max(np.abs(y_m - y[:n_tflm])))),
            "max_output_diff_unit": "int8 steps" if quantized else "float",
            "arena_bytes": tflm.arena_bytes(blob)["total"],
        }
        r["outputs"]["tflm"] = _save_outputs(run, name, "tflm", y_m)
        if np.dtype(d_in["dtype"]) == np.int8:
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
