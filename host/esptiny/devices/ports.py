"""What `--port` names: a device path or a pyserial URL, used as given, or a special name
that starts a device for the bench (the virtual board, the native firmware, an emulated
core).

Each special name maps to a function(Target, options) returning a context manager that
yields a pyserial URL and stops the device on exit; adding a device is one line in
SPECIAL. `options` is a dict of device settings (for the virtual board: sim.SimOptions).
"""
from __future__ import annotations

import re
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse


@dataclass(frozen=True)
class Target:
    """What a started device carries: the model, and where its builds may live."""
    model_path: Path
    build_dir: Path     # each device builds into build_dir/<device name>

    def build_for(self, device: str) -> Path:
        return Path(self.build_dir) / device


def _sim(target: Target, options):
    from . import sim
    known = set(sim.SimOptions.__dataclass_fields__)
    opts = sim.SimOptions(**{k: v for k, v in (options or {}).items() if k in known})
    return sim.start(target.model_path, opts)


def _build_name(device: str, options) -> str:
    """A profiling build (options["profile"]) lives beside the plain one, never over it."""
    return f"{device}-profile" if (options or {}).get("profile") else device


def _qemu_rv32(target: Target, options):
    from . import qemu
    return qemu.port(target.model_path.read_bytes(), target.build_for(_build_name("qemu_rv32", options)),
                     profile=bool((options or {}).get("profile")))


def _native(target: Target, options):
    from . import native
    return native.port(target.model_path.read_bytes(), target.build_for(_build_name("native", options)),
                       profile=bool((options or {}).get("profile")))


# Devices that answer PROFILE in a profiling build (options["profile"]).
PROFILES = ("native", "qemu-rv32")

SPECIAL = {
    "sim": _sim,
    "qemu-rv32": _qemu_rv32,
    "native": _native,
}


def is_special(spec: str) -> bool:
    return spec in SPECIAL


def link_paced(spec: str, options: dict | None = None) -> bool:
    """Whether the link to `spec` runs at a baud rate: real ports do; a device started on
    a pseudo-terminal does only when it emulates one (the virtual board's `baud`)."""
    if spec == "sim":
        return bool((options or {}).get("baud"))
    return spec not in SPECIAL


def open_port(spec: str, target: Target, options: dict | None = None):
    """Context manager yielding the pyserial URL for `spec`."""
    if spec in SPECIAL:
        return SPECIAL[spec](target, dict(options or {}))
    return nullcontext(spec)


def label(spec: str) -> str:
    """A short file-name-safe name: sim, ttyUSB0, socket-127.0.0.1-5555, rfc2217-pi-4000."""
    if spec in SPECIAL:
        return spec
    u = urlparse(spec)
    if u.scheme and "://" in spec:
        name = "-".join(p for p in (u.scheme, u.hostname or "", str(u.port or "")) if p) \
            if u.hostname else f"{u.scheme}-{u.path.strip('/')}"
    else:  # a device path: /dev/ttyUSB0 -> ttyUSB0, /dev/pts/3 -> pts-3
        name = spec.rstrip("/").removeprefix("/dev/")
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "port"


def labels(specs) -> list:
    """Distinct labels for a list of port specs: sim, sim2, ... when one is repeated."""
    out, seen = [], {}
    for s in specs:
        base = label(s)
        seen[base] = seen.get(base, 0) + 1
        out.append(base if seen[base] == 1 else f"{base}{seen[base]}")
    return out


@contextmanager
def opened_all(specs, target: Target, options=None):
    """Start every special device among `specs`; yields their URLs in order."""
    from contextlib import ExitStack
    with ExitStack() as stack:
        yield [stack.enter_context(open_port(s, target, options)) for s in specs]
