"""Quantization-aware training (tfmot), then full-integer int8 conversion."""
from __future__ import annotations

from ...tf import tfmot
from . import ptq
from .finetune import copy, finetune


def make(model, ds, o, ctx):
    q = tfmot().quantization.keras.quantize_model(copy(model))
    finetune(q, ds, o, "qat")
    return ptq.int8_calibrated(q, ds, o["rep_samples"]), {}
