"""The generated C on this host: built with gcc into a program that runs the AOT engine over
a file of inputs (firmware/engines/aot/aot_run_main.c). Tests compare its outputs with
TFLite-Micro's byte for byte; the benchmark counts its instructions."""
from __future__ import annotations

import atexit
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .. import toolchain
from ..paths import FIRMWARE
from . import generate

AOT_DIR = FIRMWARE / "engines" / "aot"
CORE_DIR = FIRMWARE / "core"
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]


def kernel_sources() -> list:
    """The kernel library (no engine, no host program)."""
    return sorted(AOT_DIR.glob("espt_aot_*.c"))


def engine_sources(gen_dir: Path) -> list:
    """What a firmware links for the AOT engine: kernels, engine_aot.c, the generated model."""
    return kernel_sources() + [AOT_DIR / "engine_aot.c", Path(gen_dir) / "model_aot.c"]


def include_flags(gen_dir: Path) -> list:
    return [f"-I{CORE_DIR}", f"-I{AOT_DIR}", f"-I{gen_dir}"]


def gcc() -> str:
    return toolchain.which("gcc", "running the AOT engine on this host")


_KERNEL_OBJECTS: dict = {}  # (opt, sources digest) -> object files, for this process


def kernel_objects(opt: str = "-O2") -> list:
    """The kernel library compiled once per process and flags (the kernels do not depend
    on the model), so that each model costs only its own file."""
    srcs = kernel_sources()
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(AOT_DIR.glob("espt_aot*")))).hexdigest()
    key = (opt, digest)
    if key not in _KERNEL_OBJECTS or not all(o.exists() for o in _KERNEL_OBJECTS[key]):
        out_dir = Path(tempfile.mkdtemp(prefix="esptiny-aot-kernels-"))
        atexit.register(shutil.rmtree, out_dir, True)
        objs = [out_dir / (src.stem + ".o") for src in srcs]
        for src, obj in zip(srcs, objs):
            toolchain.run([gcc(), *CFLAGS, opt, f"-I{AOT_DIR}", "-c", str(src), "-o", str(obj)],
                          f"compiling {src.name} with gcc", log=obj.with_suffix(".log"))
        _KERNEL_OBJECTS[key] = objs
    return _KERNEL_OBJECTS[key]


def build_runner(gen_dir: Path, out: Path, opt: str = "-O2") -> Path:
    """Compile the generated model, the engine and aot_run_main.c into one program."""
    own = [p for p in engine_sources(gen_dir) if p not in kernel_sources()]
    cmd = [gcc(), *CFLAGS, opt, *include_flags(gen_dir), *map(str, own), *map(str, kernel_objects(opt)),
           str(AOT_DIR / "aot_run_main.c"), "-o", str(out)]
    toolchain.run(cmd, "compiling the AOT engine with gcc", log=Path(out).with_suffix(".log"))
    return Path(out)


class Runner:
    """A built host program for one model: run(x) -> outputs, like esptiny.tflm.run."""

    def __init__(self, model_bytes: bytes, opt: str = "-O2", pack_weights: str = "auto"):
        self._tmp = tempfile.TemporaryDirectory(prefix="esptiny-aot-")
        self.dir = Path(self._tmp.name)
        self.info = generate(model_bytes, self.dir, pack_weights=pack_weights)
        self.exe = build_runner(self.dir, self.dir / "aot_run", opt)

    def run(self, x: np.ndarray) -> np.ndarray:
        """Outputs for a batch x in the model's input dtype (int8, or float32 for a
        float-I/O model), in its output dtype."""
        x = np.ascontiguousarray(x, dtype=np.dtype(self.info["input"]["dtype"]))
        n = len(x)
        in_path, out_path = self.dir / "in.bin", self.dir / "out.bin"
        in_path.write_bytes(x.tobytes())
        r = subprocess.run([str(self.exe), str(in_path), str(out_path)], capture_output=True, text=True,
                           check=False)
        assert r.returncode == 0, f"aot_run failed: {r.stderr[:2000]}"
        y = np.frombuffer(out_path.read_bytes(), np.dtype(self.info["output"]["dtype"]))
        shape = self.info["output"]["shape"]
        return y.reshape(n, *(shape[1:] if len(shape) > 1 and shape[0] == 1 else shape))

    def close(self):
        self._tmp.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def run(model_bytes: bytes, x: np.ndarray, opt: str = "-O2", pack_weights: str = "auto") -> np.ndarray:
    """Outputs of the AOT-compiled model for a batch already in the model's input dtype."""
    with Runner(model_bytes, opt, pack_weights) as r:
        return r.run(x)
