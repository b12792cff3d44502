"""The virtual board: the firmware's own C core (firmware/core, built for this host by
devices/hostrt.py) with TFLite-Micro's host runtime as its engine, on a pseudo-terminal.

Everything the device says (READY at boot, INFO, replies, errors such as `not ready` when
TFLite-Micro cannot allocate the model, status codes, the frame time-out) is the C that
ships to the ESP32; Python only moves bytes and runs the runtime behind engine.h. So its
outputs are TFLite-Micro's and its protocol is the firmware's. Like a dev board whose
auto-reset circuit pulses EN when a port is opened, it boots each time a host connects.

INFO names the chip it stands for ("virtual-esp32", with that chip's clock) and its
latency is host time around the invoke; it has no cycle counter (cycles read 0, and the
bench records none). A paced, faulty link in front of it is devices/linkemu.py's.
"""
from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass

from ..errors import UserError
from ..targets.boards import BOARDS
from . import hostrt
from .transports import PtyTransport


@dataclass
class SimOptions:
    """What the virtual board is (the link in front of it: linkemu.LinkOptions)."""
    chip: str = "esp32"
    rx_buffer_bytes: int = 4096
    arena_bytes: int | None = None  # None: what TFLite-Micro records, plus room (hostrt.TflmEngine)

    def check(self):
        if self.chip not in BOARDS:
            raise UserError(f"unknown chip '{self.chip}'; choose from {', '.join(BOARDS)}")
        if not 64 <= self.rx_buffer_bytes <= 0xFFFF:
            raise UserError(f"--rx-buffer-bytes must be in 64..65535, not {self.rx_buffer_bytes}")
        if self.arena_bytes is not None and self.arena_bytes < 1:
            raise UserError(f"--arena-bytes must be 1 or more, not {self.arena_bytes}")
        return self


def core(so_path, model_bytes: bytes, opts: SimOptions, protocol: str = "esptiny") -> hostrt.Core:
    """The C core carrying this model, TFLite-Micro's host runtime behind it, speaking
    esptiny's protocol or MLPerf Tiny's."""
    chip = BOARDS[opts.chip]
    return hostrt.Core(so_path, model_bytes, hostrt.TflmEngine(model_bytes, opts.arena_bytes),
                       f"virtual-{opts.chip}", chip.cpu_mhz, opts.rx_buffer_bytes, protocol)


def serve(c: hostrt.Core, transport, stopped=lambda: False):
    """Serve hosts one after another until stopped()."""
    try:
        while not stopped():
            if not transport.wait_host(stopped):
                return
            c.serve(transport, stopped)
            transport.end_session()
    finally:
        transport.close()


@contextmanager
def start(model_path, opts: SimOptions, build_dir, start_timeout: float = 60.0,
          protocol: str = "esptiny"):
    """A virtual board in a subprocess for the duration of the block; yields its pty's path.
    The C core is built into build_dir first (once per source change)."""
    opts.check()
    so = hostrt.build(build_dir)
    cmd = [sys.executable, "-m", "esptiny.devices.sim", str(so), str(model_path), json.dumps(asdict(opts)),
           protocol]
    with tempfile.TemporaryFile("w+") as err:  # a file, not a pipe nobody drains
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                                text=True)
        try:
            ready, _, _ = select.select([proc.stdout], [], [], start_timeout)
            line = proc.stdout.readline().strip() if ready else ""
            if not line.startswith("/"):
                proc.kill()
                proc.wait()
                err.seek(0)
                lines = err.read().strip().splitlines()
                raise UserError(f"the virtual board did not start: {lines[-1] if lines else 'no output'}")
            yield line
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            proc.stdout.close()


def _main(argv):
    """`python -m esptiny.devices.sim SO MODEL OPTIONS_JSON PROTOCOL`: what start() runs."""
    import signal
    so, model_path, spec, protocol = argv
    opts = SimOptions(**json.loads(spec)).check()
    with open(model_path, "rb") as f:
        c = core(so, f.read(), opts, protocol)
    transport = PtyTransport()
    stop, parent = [], os.getppid()  # set by SIGTERM; the C loop returns every POLL_MS to look
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    print(transport.url, flush=True)
    serve(c, transport, lambda: bool(stop) or os.getppid() != parent)  # or whoever started us went


if __name__ == "__main__":
    try:
        _main(sys.argv[1:])
    except UserError as e:
        print(f"esptiny sim: error: {e}", file=sys.stderr)
        sys.exit(1)
