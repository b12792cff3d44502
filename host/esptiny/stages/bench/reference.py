"""The references a bench is held to: TFLite-Micro's host runtime outputs for the same inputs
(the evaluate stage's, or computed once and cached in the run). Both are keyed by the model
and the inputs, so a reference never stands for other data."""
from __future__ import annotations

import numpy as np

from ... import atomic
from ...crc import crc32
from ...progress import bar
from ..evaluate import inputs_crc


def tflm_reference(run, variant: str, model_bytes: bytes, x: np.ndarray) -> np.ndarray:
    """TFLite-Micro host runtime outputs for x: the evaluate stage's when it ran this very
    model on these very inputs, else computed and cached in the run under the CRCs of the
    model and of x (reference kernels: about 1.5 ms an image)."""
    from ...model import tflm
    crc, x_crc = crc32(model_bytes), inputs_crc(x)
    ev = run.manifest()["stages"].get("evaluate", {}).get("variants", {}).get(variant, {})
    rel = (ev.get("outputs") or {}).get("tflm")
    if (ev.get("crc32") == crc and rel and run.file(rel).exists()
            and (ev.get("tflm") or {}).get("inputs_crc32") == x_crc):
        try:
            y = np.load(run.file(rel), allow_pickle=False)
            if len(y) == len(x):
                return y
        except (OSError, ValueError):
            pass
    path = run.file(f"bench/cache/tflm-{crc:08x}-{x_crc:08x}.npy")
    if path.exists():
        try:
            have = np.load(path, allow_pickle=False)
            if len(have) == len(x):
                return have
        except (OSError, ValueError):
            pass
    with bar("tflm ref", len(x)) as advance:
        out = tflm.run(model_bytes, x, progress=advance)
    with atomic.atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, out)
    return out
