"""Every compression method esptiny offers, as data: name -> how to make it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ...errors import UserError
from . import ptq

NO_TFLM_KERNELS = ("TFLite-Micro has no kernels for it (DEQUANTIZE takes only int8/int16/uint8 "
                   "and there are no hybrid float-weight kernels)")


@dataclass(frozen=True)
class Method:
    summary: str
    make: Callable  # (keras model, Dataset, options, ctx) -> (tflite bytes, extra manifest fields)
    deployable: bool = True
    reason: str | None = None


def _int8(model, ds, o, ctx):
    return ptq.int8_calibrated(model, ds, o["rep_samples"]), {}


def _qat(model, ds, o, ctx):
    from . import qat
    return qat.make(model, ds, o, ctx)


def _pruned(model, ds, o, ctx):
    from . import prune
    return prune.make(model, ds, o, ctx)


def _clustered(model, ds, o, ctx):
    from . import cluster
    return cluster.make(model, ds, o, ctx)


def _pruned_clustered(model, ds, o, ctx):
    from . import cluster
    return cluster.make_sparsity_preserving(model, ds, o, ctx)


METHODS = {
    "float32": Method("float32 baseline", lambda m, ds, o, ctx: (ptq.float32(m), {})),
    "float16": Method("post-training float16 weights", lambda m, ds, o, ctx: (ptq.float16(m), {}),
                      deployable=False, reason="float16 weights: " + NO_TFLM_KERNELS),
    "dynamic": Method("post-training dynamic range (int8 weights, float activations)",
                      lambda m, ds, o, ctx: (ptq.dynamic_range(m), {}),
                      deployable=False, reason="hybrid dynamic-range model: " + NO_TFLM_KERNELS),
    "int8": Method("post-training full-integer int8", _int8),
    "qat": Method("quantization-aware training + int8", _qat),
    "pruned": Method("magnitude pruning (stripped) + int8", _pruned),
    "clustered": Method("weight clustering (stripped) + int8", _clustered),
    "pruned_clustered": Method("pruning + sparsity-preserving clustering + int8", _pruned_clustered),
}
DEFAULT_METHODS = list(METHODS)
POST_TRAINING = ("float32", "float16", "dynamic", "int8")  # need no labels: no fine-tune

DEFAULTS = {"rep_samples": 500, "sparsity": 0.5, "clusters": 16, "finetune_epochs": 2,
            "finetune_lr": 5e-4, "batch_size": 128,
            # 2 epochs on 20,000 images: measured, within 0.2-0.6 points of 2 epochs on all
            # 60,000 of Fashion-MNIST at 55% of the time (docs/design.md)
            "finetune_limit": 20000}


def options(**given) -> dict:
    """Defaults overlaid with the given options, checked."""
    o = dict(DEFAULTS)
    o.update({k: v for k, v in given.items() if v is not None})
    unknown = set(o) - set(DEFAULTS)
    assert not unknown, f"unknown compression options {unknown}"
    if not 0.0 < o["sparsity"] < 1.0:
        raise UserError(f"--sparsity must be between 0 and 1 (exclusive), not {o['sparsity']}")
    if not 2 <= o["clusters"] <= 256:
        raise UserError(f"--clusters must be from 2 to 256, not {o['clusters']}")
    if o["finetune_epochs"] < 1:
        raise UserError(f"--finetune-epochs must be at least 1, not {o['finetune_epochs']}")
    if o["rep_samples"] < 1:
        raise UserError(f"--rep-samples must be at least 1, not {o['rep_samples']}")
    if o["batch_size"] < 1:
        raise UserError(f"--batch-size must be at least 1, not {o['batch_size']}")
    return o
