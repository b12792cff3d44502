"""The real firmware as a virtual board: the portable core (firmware/core), the POSIX board
(firmware/boards/posix) and the AOT engine with the model compiled to C, built with the
host's gcc and served on a pseudo-terminal. `esptiny bench RUN --port native` starts it,
so the host talks through pyserial to the same C that ships to the ESP32.

Cycles in its replies are host nanoseconds (CLOCK_MONOTONIC, the POSIX board's clock),
not a CPU counter; the figures that matter here are bit-exact outputs and the protocol.
"""
from __future__ import annotations

import hashlib
import os
import select
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

from .. import atomic, paths, toolchain
from ..errors import UserError

EXE = "firmware-native"
PROFILE_FLAGS = ["-DESPT_AOT_PROFILE=1"]
START_TIMEOUT_S = 10.0


def build(model_bytes: bytes, build_dir, protocol: str = "esptiny",
          max_payload: int | None = None, profile: bool = False) -> Path:
    """Build firmware-native for this model into build_dir (skipped when the model's C,
    every firmware source and the options are what the last build used). protocol:
    esptiny's (docs/protocol.md) or "mlperf-tiny" (docs/mlperf-tiny.md); max_payload:
    ESPT_MAX_PAYLOAD (default the protocol's 4096); profile: the AOT engine built with
    -DESPT_AOT_PROFILE (PROFILE answers in host nanoseconds)."""
    from .. import aot
    from ..aot import host
    build_dir = Path(build_dir).resolve()
    exe = build_dir / EXE
    gen = build_dir / "model"
    aot.generate(bytes(model_bytes), gen)
    sources = [*host.engine_sources(gen), *sorted((paths.FIRMWARE / "core").glob("*.[ch]")),
               *sorted((paths.FIRMWARE / "boards" / "posix").glob("*.[ch]")), gen / "model_aot.h"]
    defines = ([f"-DESPT_MAX_PAYLOAD={int(max_payload)}"] if max_payload else []) \
        + (PROFILE_FLAGS if profile else [])
    digest = hashlib.sha256(protocol.encode() + b"".join(Path(f).read_bytes() for f in sources)
                            + " ".join(defines).encode()).hexdigest()
    stamp = build_dir / "sources.sha256"
    if exe.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return exe
    make = toolchain.which("make", "building the native firmware")
    toolchain.which("gcc", "building the native firmware")
    srcs = " ".join(str(p) for p in host.engine_sources(gen))
    cflags = " ".join([*host.include_flags(gen), *defines])
    with atomic.atomic_path(exe) as tmp:
        toolchain.run([make, "--no-print-directory", "-C", paths.FIRMWARE, "native",
                       f"ENGINE_SRCS={srcs}", f"ENGINE_CFLAGS={cflags}", f"OUT={tmp}",
                       f"PROTOCOL={protocol}"],
                      "building the native firmware", log=build_dir / "build.log")
        os.chmod(tmp, 0o755)
    atomic.write_text(stamp, digest + "\n")
    return exe


@contextmanager
def serve(exe) -> str:
    """Start firmware-native on a new pseudo-terminal; yield its path; stop it on exit."""
    proc = subprocess.Popen([str(exe), "--pty"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        line = _first_line(proc, START_TIMEOUT_S)
        if not line.startswith("PTY "):
            err = proc.stderr.read().decode(errors="replace").strip() if proc.poll() is not None else ""
            raise UserError(f"the native firmware did not start: {(err or line or 'no output')[:200]}")
        yield line[4:].strip()
    finally:
        _stop(proc)


def _first_line(proc, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    buf = b""
    while b"\n" not in buf and time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 256)
            if not chunk:
                break
            buf += chunk
        elif proc.poll() is not None:
            break
    return buf.decode(errors="replace").split("\n")[0]


def _stop(proc):
    """The firmware exits by itself when the host closes the pty; make sure it did."""
    try:
        proc.wait(timeout=2.0)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: only what we started
        try:
            proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    for f in (proc.stdout, proc.stderr):
        if f:
            f.close()


@contextmanager
def port(model_bytes: bytes, build_dir, protocol: str = "esptiny", profile: bool = False):
    """ports.py's "native": the model compiled into firmware-native, on a pty."""
    exe = build(model_bytes, build_dir, protocol, profile=profile)
    with serve(exe) as path:
        yield path
