"""Magnitude pruning to a target sparsity (tfmot), stripped, then int8."""
from __future__ import annotations

from ...tf import tfmot
from . import ptq
from .finetune import copy, finetune, steps, weight_stats


def pruned_model(model, ds, o, ctx):
    """The stripped pruned Keras model, made once per compress run (clustering reuses it)."""
    if "pruned" not in ctx:
        sp = tfmot().sparsity.keras
        # Reach the target by 70% of the fine-tune, then let the survivors recover;
        # prune at least ten times whatever the data size (the default is every 100 steps).
        end = max(1, int(steps(ds, o) * 0.7))
        schedule = sp.PolynomialDecay(initial_sparsity=0.0, final_sparsity=o["sparsity"],
                                      begin_step=0, end_step=end, frequency=max(1, min(100, end // 10)))
        p = sp.prune_low_magnitude(copy(model), pruning_schedule=schedule)
        finetune(p, ds, o, "prune", callbacks=[sp.UpdatePruningStep()])
        ctx["pruned"] = sp.strip_pruning(p)
    return copy(ctx["pruned"])


def make(model, ds, o, ctx):
    m = pruned_model(model, ds, o, ctx)
    return ptq.int8_calibrated(m, ds, o["rep_samples"]), {
        "target_sparsity": o["sparsity"], **weight_stats(m)}
