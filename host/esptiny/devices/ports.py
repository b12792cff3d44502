"""What `--port` names: a device path or a pyserial URL, used as given, or a special name
that starts a device for the bench (the virtual board, the native firmware, an emulated
core), and where each one's figures come from (SOURCES).

Each special name maps to a Device: how to build it once and start it (a context manager
yielding a pyserial URL, stopping the device on exit), how it reboots, and its source.
`options` is a dict of device settings: the link emulation's (linkemu.LinkOptions, any
device) and the virtual board's own (sim.SimOptions). When the link options ask for
anything, devices/linkemu.py stands in front of the device.
"""
from __future__ import annotations

import re
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, fields
from pathlib import Path
from urllib.parse import urlparse

from ..errors import UserError

# Where a bench's figures come from: what runs the firmware, what its microseconds are,
# and what the replies' cycle field counts ("cycles", "instructions") or why it is no
# counter (then no cycle figure is made: host time is not cycles).
SOURCES = {
    "board": {"what": "a board: the firmware on its chip, over a serial device",
              "latency": "measured on device", "counter": "cycles",
              "counter_note": "the chip's cycle counter"},
    "virtual board": {"what": "the virtual board: the firmware's C core with TFLite-Micro's host "
                              "runtime, on this host",
                      "latency": "host time (virtual board)", "counter": None,
                      "counter_note": "none: the virtual board has no cycle counter"},
    "native firmware": {"what": "the native firmware: the C core and AOT engine built for this host",
                        "latency": "host time (native firmware)", "counter": None,
                        "counter_note": "none: the POSIX board counts host nanoseconds, not cycles"},
    "emulated core": {"what": "the emulated core: the firmware on QEMU's RV32IMC (-icount shift=0)",
                      "latency": "emulated (QEMU -icount shift=0): microseconds are an estimate "
                                 "at 160 MHz, CPI 1",
                      "counter": "instructions",
                      "counter_note": "retired instructions (minstret, QEMU -icount shift=0), not cycles"},
}


# What INFO's chip name says about the firmware's host (the C core's boards name it):
# the virtual board "virtual-<chip>" (devices/sim.py), the POSIX board "posix-host",
# the emulated core "qemu-rv32imc ..."; any other chip is a board.
CHIP_PREFIXES = (("virtual-", "virtual board"), ("posix-", "native firmware"),
                 ("qemu-", "emulated core"))


def source_of(chip: str) -> str:
    """Where a device's figures come from (a SOURCES key), from the chip its INFO names:
    so a virtual board opened by its pty path is still a virtual board."""
    for prefix, src in CHIP_PREFIXES:
        if chip.startswith(prefix):
            return src
    return "board"


@dataclass(frozen=True)
class Target:
    """What a started device carries: the model, the protocol it speaks, and where its
    builds may live."""
    model_path: Path
    build_dir: Path     # each device builds into build_dir/<device name>[-<protocol>]
    protocol: str = "esptiny"   # or "mlperf-tiny" (docs/mlperf-tiny.md)

    def build_for(self, device: str) -> Path:
        suffix = "" if self.protocol == "esptiny" else f"-{self.protocol}"
        return Path(self.build_dir) / f"{device}{suffix}"


def _sim(target: Target, options):
    from . import sim
    opts = sim.SimOptions(**_pick(options, sim.SimOptions)).check()
    build = Path(target.build_dir) / "sim"  # one library speaks both protocols
    return lambda: sim.start(target.model_path, opts, build, protocol=target.protocol)


def _build_name(device: str, options) -> str:
    """A profiling build (options["profile"]) lives beside the plain one, never over it."""
    return f"{device}-profile" if (options or {}).get("profile") else device


def _qemu_rv32(target: Target, options):
    from . import qemu
    fw = qemu.build(target.model_path.read_bytes(), target.build_for(_build_name("qemu_rv32", options)),
                    protocol=target.protocol, profile=bool(options.get("profile")))
    return lambda: qemu.serve(fw)


def _native(target: Target, options):
    from . import native
    exe = native.build(target.model_path.read_bytes(), target.build_for(_build_name("native", options)),
                       target.protocol, profile=bool(options.get("profile")))
    return lambda: native.serve(exe)


@dataclass(frozen=True)
class Device:
    prepare: object   # (Target, options) -> start(): a context manager yielding the URL
    reboot: str       # linkemu: "reopen" (boots when its port is opened) or "restart"
    options: tuple = ()  # its own option classes, beyond the link's


# Devices that answer PROFILE in a profiling build (options["profile"]).
PROFILES = ("native", "qemu-rv32")

SPECIAL = {
    "sim": Device(_sim, "reopen", ("sim",)),
    "qemu-rv32": Device(_qemu_rv32, "restart"),
    "native": Device(_native, "restart"),
}


def is_special(spec: str) -> bool:
    return spec in SPECIAL


def _pick(options, cls) -> dict:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in (options or {}).items() if k in names}


def option_classes(spec: str) -> list:
    from . import linkemu, sim
    own = {"sim": sim.SimOptions}
    return [linkemu.LinkOptions] + [own[name] for name in SPECIAL[spec].options]


def check_options(spec: str, options: dict) -> dict:
    """options with every name known to `spec`'s device and every value of its type;
    a one-line UserError otherwise. Values may be strings (`--device-option NAME=VALUE`)."""
    if spec not in SPECIAL:
        if options:
            raise UserError(f"--device-option applies to a device esptiny starts "
                            f"({', '.join(SPECIAL)}), not to {spec}")
        return {}
    types = {f.name: f for cls in option_classes(spec) for f in fields(cls)}
    out = {}
    for name, value in options.items():
        if name not in types:
            raise UserError(f"unknown option '{name}' for --port {spec}; it takes "
                            f"{', '.join(sorted(types))}")
        out[name] = _convert(name, value, types[name].default)
    return out


def _convert(name: str, value, default):
    if not isinstance(value, str):
        return value
    try:
        if name == "reset_after":
            return tuple(int(v) for v in value.split(",") if v)
        if isinstance(default, bool):
            if value.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(value)
            return value.lower() in ("1", "true", "yes", "on")
        if isinstance(default, int) or name in ("hang_after", "arena_bytes"):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except ValueError:
        kind = "a comma-separated list of integers" if name == "reset_after" else \
            "true or false" if isinstance(default, bool) else \
            "a number" if isinstance(default, float) else "an integer"
        raise UserError(f"device option {name}={value}: {kind} expected") from None
    return value


def link_paced(spec: str, options: dict | None = None) -> bool:
    """Whether the link to `spec` runs at a baud rate: real ports do; a device esptiny
    starts does only when the link emulation paces it (a `baud`)."""
    if spec in SPECIAL:
        return bool((options or {}).get("baud"))
    return True


def open_port(spec: str, target: Target, options: dict | None = None):
    """Context manager yielding the pyserial URL for `spec` (with the link emulation in
    front of a started device when `options` ask for it)."""
    if spec not in SPECIAL:
        return nullcontext(spec)
    from . import linkemu
    dev = SPECIAL[spec]
    options = dict(options or {})
    profile = bool(options.pop("profile", False))  # the profiling build (bench --profile)
    options = {**check_options(spec, options), "profile": profile}
    start = dev.prepare(target, options)
    link = linkemu.LinkOptions(**_pick(options, linkemu.LinkOptions)).check()
    if not link.active():
        return start()
    return _url_only(linkemu.front(start, link, dev.reboot))


@contextmanager
def _url_only(cm):
    with cm as (url, _link):
        yield url


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
def opened_all(specs, target: Target, options_for=lambda spec: {}):
    """Start every special device among `specs` (options_for(spec): its options); yields
    their URLs in order."""
    from contextlib import ExitStack
    with ExitStack() as stack:
        yield [stack.enter_context(open_port(s, target, options_for(s))) for s in specs]
