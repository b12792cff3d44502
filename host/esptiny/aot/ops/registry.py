"""Which function lowers which TFLite op: each family module registers its ops with
@lowers("NAME", ...). A lowering is called as fn(lowering, k) for op k and returns the
indices of any further ops it covered (a fused pool), or None."""
from __future__ import annotations

REGISTRY: dict = {}
# Ops whose builtin options the lowering reads (a model without them is refused).
NEEDS_OPTIONS = {"CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D",
                 "CONCATENATION", "LEAKY_RELU", "STRIDED_SLICE"}
MAX_FUSED_POOL_ROWS = 16  # ESPT_AOT_MAX_POOL_ROWS in espt_aot_conv.c


def lowers(*names: str):
    def register(fn):
        for name in names:
            assert name not in REGISTRY, name
            REGISTRY[name] = fn
        return fn
    return register
