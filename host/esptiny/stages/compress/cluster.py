"""Weight clustering to k centroids (tfmot), stripped, then int8; and its
sparsity-preserving form applied to the pruned model."""
from __future__ import annotations

from ...tf import tfmot
from . import ptq
from .finetune import copy, finetune, weight_stats
from .prune import pruned_model


def _clustered(model, ds, o, preserve_sparsity: bool, label: str):
    cl = tfmot().clustering.keras
    init = cl.CentroidInitialization.KMEANS_PLUS_PLUS
    c = cl.cluster_weights(copy(model), number_of_clusters=o["clusters"],
                           cluster_centroids_init=init, preserve_sparsity=preserve_sparsity)
    finetune(c, ds, o, label)
    return cl.strip_clustering(c)


def make(model, ds, o, ctx):
    m = _clustered(model, ds, o, False, "cluster")
    return ptq.int8_calibrated(m, ds, o["rep_samples"]), {
        "clusters": o["clusters"], **weight_stats(m)}


def make_sparsity_preserving(model, ds, o, ctx):
    m = _clustered(pruned_model(model, ds, o, ctx), ds, o, True, "prune+cluster")
    return ptq.int8_calibrated(m, ds, o["rep_samples"]), {
        "clusters": o["clusters"], "target_sparsity": o["sparsity"], **weight_stats(m)}
