"""The compilers and tools esptiny runs (gcc, make, the RV32 cross compiler, QEMU): found
by name with the Debian package that provides them, and their failures told in one line
that quotes the compiler's first error, not make's summary of it."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from . import atomic
from .errors import UserError

# Tool -> the Debian package that provides it.
DEBIAN_PACKAGES = {
    "gcc": "gcc", "g++": "g++", "make": "make", "clang": "clang",
    "riscv64-unknown-elf-gcc": "gcc-riscv64-unknown-elf",
    "qemu-system-riscv32": "qemu-system-misc",
}

# What a compiler or linker says when it fails.
_COMPILER_ERROR = re.compile(r": (fatal )?error: |undefined reference|multiple definition|"
                             r"region `\w+' overflowed|will not fit in region")
_ANY_ERROR = re.compile(r"\berror\b", re.I)
_MAKE_NOISE = re.compile(r"^make(\[\d+\])?: |^collect2: |^compilation terminated")


def which(tool: str, purpose: str) -> str:
    """The path of `tool`, or a one-line error naming it, its Debian package and what
    needed it."""
    path = shutil.which(tool)
    if path is None:
        package = DEBIAN_PACKAGES.get(tool, tool)
        raise UserError(f"{purpose} needs `{tool}`, which is not on this machine: "
                        f"`sudo apt-get install {package}`")
    return path


def compiler_errors(lines) -> list:
    """The compiler's and linker's own error lines, in order (not make's "*** Error 1"
    or collect2's summary of them)."""
    return [ln.strip() for ln in lines if _COMPILER_ERROR.search(ln) and not _MAKE_NOISE.search(ln.strip())]


def first_error(output: str) -> str:
    """The line that says why a build failed: the compiler's or linker's first error,
    else the first line that says error, else the last line."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    found = compiler_errors(lines) or [ln for ln in lines if _ANY_ERROR.search(ln)
                                       and not _MAKE_NOISE.search(ln)]
    return found[0] if found else (lines[-1] if lines else "no output")


def run(cmd: list, what: str, log: Path | None = None, **kwargs) -> subprocess.CompletedProcess:
    """Run a build step; on failure a one-line UserError: `what` failed, the first error,
    and where the whole output was kept."""
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    if log is not None:
        atomic.write_text(log, r.stdout + r.stderr)
    if r.returncode != 0:
        first = first_error(r.stdout + r.stderr)
        where = f" (full log: {log})" if log is not None else ""
        raise UserError(f"{what} failed: {first[:300]}{where}")
    return r
