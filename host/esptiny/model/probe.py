"""A native runtime's first contact with a model, in a child process.

TFLite-Micro's host runtime and LiteRT are C++ that trust the model they are given: a
model they cannot handle may end in a segmentation fault, which would take esptiny down
with no message. So before either runs a model in esptiny's own process, a child loads
it, allocates its tensors and invokes it once on zeros; a child that dies is a one-line
ModelRefused naming the signal and what the runtime printed last. The child also reports
TFLite-Micro's recorded arena, so that probe is not wasted work.

Results are kept per process, by the model's SHA-256.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

from ..errors import ModelRefused

RUNTIMES = {"tflm": "TFLite-Micro's host runtime", "litert": "the TFLite interpreter (LiteRT)"}
TIMEOUT_S = 300


def probe(runtime: str, model_bytes: bytes) -> dict:
    """What the child found: {"arena": {...}} for tflm, {} for litert; ModelRefused when
    the runtime refuses the model or crashes on it."""
    assert runtime in RUNTIMES, runtime
    result = _probe(runtime, hashlib.sha256(bytes(model_bytes)).hexdigest(), bytes(model_bytes))
    if "error" in result:
        raise ModelRefused(result["error"])
    return result


@lru_cache(maxsize=64)
def _probe(runtime: str, digest: str, model_bytes: bytes) -> dict:
    host_dir = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [host_dir] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    with tempfile.TemporaryDirectory(prefix="esptiny-probe-") as tmp:
        model = Path(tmp) / "model.tflite"
        model.write_bytes(model_bytes)
        out, err = Path(tmp) / "result.json", Path(tmp) / "stderr.txt"
        with open(err, "wb") as err_f:
            try:
                proc = subprocess.run([sys.executable, "-m", "esptiny.model.probe", runtime, str(model), str(out)],
                                      stdin=subprocess.DEVNULL, stdout=err_f, stderr=err_f, env=env,
                                      timeout=TIMEOUT_S)
            except subprocess.TimeoutExpired:
                return {"error": f"{RUNTIMES[runtime]} did not finish loading and running this model "
                                 f"once in {TIMEOUT_S} s"}
        said = _last_line(err.read_text(errors="replace"))
        if proc.returncode < 0:
            name = signal.Signals(-proc.returncode).name
            return {"error": f"{RUNTIMES[runtime]} crashed on this model ({name})"
                             + (f" after printing: {said}" if said else "")}
        if proc.returncode != 0 or not out.exists():
            return {"error": f"{RUNTIMES[runtime]} failed on this model (exit {proc.returncode})"
                             + (f": {said}" if said else "")}
        return json.loads(out.read_text())


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ""


# ---- the child ---------------------------------------------------------------------------

def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]


def _child_tflm(model: bytes) -> dict:
    import re

    import numpy as np
    from tflite_micro.python.tflite_micro import runtime
    try:
        interp = runtime.Interpreter.from_bytes(model)
    except Exception as e:  # the runtime's own refusal: RuntimeError, ValueError, ...
        return {"error": f"TFLite-Micro cannot load this model: {_first_line(e)}"}
    try:
        d = interp.get_input_details(0)
        interp.set_input(np.zeros(d["shape"], dtype=d["dtype"]), 0)
        interp.invoke()
    except Exception as e:
        return {"error": f"TFLite-Micro cannot run this model: {_first_line(e)}"}
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            interp.print_allocations()
            import ctypes
            ctypes.CDLL(None).fflush(None)
        finally:
            os.dup2(saved, 2)
        tmp.seek(0)
        text = tmp.read().decode(errors="replace")

    def field(name):
        m = re.search(rf"Arena allocation {name} (\d+) bytes", text)
        return int(m.group(1)) if m else None
    assert field("total") is not None, f"TFLite-Micro printed no arena total: {text[:200]!r}"
    return {"arena": {"total": field("total"), "head": field("head"), "tail": field("tail")}}


def _child_litert(model: bytes) -> dict:
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter
    try:
        interp = Interpreter(model_content=model, num_threads=1)
        interp.allocate_tensors()
        for d in interp.get_input_details():
            interp.set_tensor(d["index"], np.zeros(d["shape"], dtype=d["dtype"]))
        interp.invoke()
    except Exception as e:
        return {"error": f"not a usable TFLite model: {_first_line(e)}"}
    return {}


def _child(runtime: str, model_path: str, out_path: str):
    os.dup2(2, 1)  # native code's prints on stdout go with stderr
    model = Path(model_path).read_bytes()
    result = {"tflm": _child_tflm, "litert": _child_litert}[runtime](model)
    Path(out_path).write_text(json.dumps(result))


if __name__ == "__main__":
    _child(*sys.argv[1:4])
