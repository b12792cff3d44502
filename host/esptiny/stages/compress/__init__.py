"""The compress stage: every requested method (registry.py) turns the run's Keras model
into variants/<name>.tflite; one module per method."""
from __future__ import annotations

import time

from ... import atomic
from ...errors import UserError
from ...progress import say
from ..run import Run
from ..train import fit_seconds, load_model
from . import registry


def compress(run: Run, methods=None, **options) -> dict:
    """Write every requested variant as variants/<name>.tflite and record them."""
    methods = list(methods or registry.DEFAULT_METHODS)
    unknown = [m for m in methods if m not in registry.METHODS]
    if unknown:
        raise UserError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(registry.METHODS)}")
    ds = run.dataset()
    tuned = [m for m in methods if m not in registry.POST_TRAINING]
    if tuned and not run.stage("train").get("classifier", True):
        raise UserError(f"{', '.join(tuned)} fine-tune a classifier on class labels, which this run's "
                        f"model or data lacks; choose from {', '.join(registry.POST_TRAINING)}")
    model = load_model(run)
    opts = registry.options(**options)
    with run.timed("compress", merge="variants") as entry:
        variants, ctx = {}, {}
        for name in methods:
            spec = registry.METHODS[name]
            say(f"compress: {name} ({spec.summary})")
            t0, fit0 = time.perf_counter(), fit_seconds()
            tflite_bytes, extra = spec.make(model, ds, opts, ctx)
            total, fitting = time.perf_counter() - t0, fit_seconds() - fit0
            extra["seconds"] = {"fine_tune": round(fitting, 2), "convert": round(total - fitting, 2)}
            rel = f"variants/{name}.tflite"
            atomic.write_bytes(run.file(rel), tflite_bytes)
            variants[name] = {"path": rel, "method": spec.summary, "bytes": len(tflite_bytes),
                              "deployable": spec.deployable, "reason": spec.reason, **extra}
        entry.update(variants=variants, options=opts)
    return entry
