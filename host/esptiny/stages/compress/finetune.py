"""What every training-time method shares: the fine-tuning data and loop."""
from __future__ import annotations

from .. import train as trainer


def finetune(model, ds, o, label: str, callbacks=()):
    """Fine-tune `model` in place for o["finetune_epochs"] at o["finetune_lr"]."""
    n = o["finetune_limit"]
    x, y = ds.x_train[:n], ds.y_train[:n]
    trainer.fit(model, x, y, o["finetune_epochs"], o["batch_size"], o["finetune_lr"],
                label=label, callbacks=callbacks)
    return model


def copy(model):
    """An independent copy: tfmot's wrappers change the layers they wrap (clustering
    makes the wrapped kernel non-trainable), so each method starts from its own."""
    from ...tf import keras
    c = keras.models.clone_model(model)
    c.set_weights(model.get_weights())
    return c


def steps(ds, o) -> int:
    n = len(ds.x_train[:o["finetune_limit"]])
    return -(-n // o["batch_size"]) * o["finetune_epochs"]


def weight_stats(model) -> dict:
    """Sparsity and distinct values over the kernels (what pruning and clustering change)."""
    import numpy as np
    zeros = total = 0
    distinct = []
    for layer in model.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            continue
        w = kernel.numpy()
        zeros += int(np.sum(w == 0))
        total += w.size
        distinct.append(len(np.unique(w)))
    return {"kernel_sparsity": zeros / total if total else 0.0,
            "max_distinct_kernel_values": max(distinct, default=0)}
