"""A native runtime's first contact with a model, in a child process.

TFLite-Micro's host runtime and LiteRT are C++ that trust the model they are given: a
model they cannot handle may end in a segmentation fault, which would take esptiny down
with no message. So before either runs a model in esptiny's own process, a child loads
it, allocates its tensors and invokes it once on zeros; a child that dies is a one-line
ModelRefused naming the signal and what the runtime printed last. The child also reports
TFLite-Micro's recorded arena, so that probe is not wasted work.

One child serves every probe of a process (its start-up, ~0.5 s of imports, is paid
once) and is started again after a crash. Results are kept per process, by the model's
SHA-256.
"""
from __future__ import annotations

import atexit
import hashlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from ..errors import ModelRefused

RUNTIMES = {"tflm": "TFLite-Micro's host runtime", "litert": "the TFLite interpreter (LiteRT)"}
TIMEOUT_S = 300


def probe(runtime: str, model_bytes: bytes) -> dict:
    """What the child found: {"arena": {...}} for tflm, {} for litert; ModelRefused when
    the runtime refuses the model or crashes on it."""
    assert runtime in RUNTIMES, runtime
    key = (runtime, hashlib.sha256(bytes(model_bytes)).hexdigest())
    if key not in _RESULTS:
        _RESULTS[key] = _WORKER.ask(runtime, bytes(model_bytes))
    result = _RESULTS[key]
    if "error" in result:
        raise ModelRefused(result["error"])
    return result


_RESULTS: dict = {}  # (runtime, SHA-256) -> what the child found: small, kept for the process


class _Worker:
    """The child process: requests on its stdin, one JSON line a reply on a pipe of its own
    (what native code prints goes to a log file, read back when the child dies)."""

    def __init__(self):
        self.proc = None
        self.lock = threading.Lock()

    def _start(self):
        self.dir = tempfile.mkdtemp(prefix="esptiny-probe-")
        self.log = open(Path(self.dir) / "stderr.txt", "w+b")
        read, write = os.pipe()
        host_dir = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [host_dir] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
        self.proc = subprocess.Popen([sys.executable, "-m", "esptiny.model.probe", str(write)],
                                     stdin=subprocess.PIPE, stdout=self.log, stderr=self.log,
                                     env=env, pass_fds=(write,))
        os.close(write)
        self.replies = os.fdopen(read, "rb")

    def _stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()  # the child this process started, by its handle
            self.proc.wait()
            self.replies.close()
            self.log.close()
        self.proc = None

    def close(self):
        with self.lock:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.stdin.close()  # the child ends when its requests do
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    pass
            self._stop()

    def ask(self, runtime: str, model_bytes: bytes) -> dict:
        with self.lock:
            if self.proc is None or self.proc.poll() is not None:
                self._stop()
                self._start()
            model = Path(self.dir) / "model.tflite"
            model.write_bytes(model_bytes)
            mark = self.log.seek(0, os.SEEK_END)
            try:
                self.proc.stdin.write(f"{runtime} {model}\n".encode())
                self.proc.stdin.flush()
            except BrokenPipeError:
                pass
            ready, _, _ = select.select([self.replies], [], [], TIMEOUT_S)
            line = self.replies.readline() if ready else None
            if line:
                return json.loads(line)
            if line is None:
                self._stop()
                return {"error": f"{RUNTIMES[runtime]} did not finish loading and running this "
                                 f"model once in {TIMEOUT_S} s"}
            code = self.proc.wait()
            self.log.seek(mark)
            said = _last_line(self.log.read().decode(errors="replace"))
            self._stop()
            how = f"crashed on this model ({signal.Signals(-code).name})" if code < 0 else \
                f"failed on this model (exit {code})"
            return {"error": f"{RUNTIMES[runtime]} {how}" + (f" after printing: {said}" if said else "")}


_WORKER = _Worker()
atexit.register(_WORKER.close)


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
    # LiteRT computes each tensor's shape from its ops; TFLite-Micro (and a board) take the
    # shapes the file declares. A model whose output is not what it declares is inconsistent.
    from .reader import Graph
    g = Graph(model)
    for d in interp.get_output_details():
        declared, computed = tuple(g.tensors[d["index"]].shape), tuple(int(x) for x in d["shape"])
        if declared != computed:
            return {"error": f"inconsistent TFLite model: its output is declared {declared} but its "
                             f"ops compute {computed}"}
    return {}


def _serve(reply_fd: int):
    """The child's loop: one request a line ("RUNTIME PATH"), one JSON line a reply."""
    os.dup2(2, 1)  # native code's prints on stdout go with stderr, not into the replies
    replies = os.fdopen(reply_fd, "w")
    for line in sys.stdin:
        runtime, path = line.rstrip("\n").split(" ", 1)
        result = {"tflm": _child_tflm, "litert": _child_litert}[runtime](Path(path).read_bytes())
        replies.write(json.dumps(result) + "\n")
        replies.flush()


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
