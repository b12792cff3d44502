"""A serial link with faults in front of the native firmware, for the benchmarks: the host
opens a pseudo-terminal, this proxy forwards to firmware-native's own pty, pacing bytes as a
UART at `baud` (10 bits a byte, full duplex; 0: no pacing) and drawing faults per byte from a
seeded generator: `drop` loses a byte, `corrupt` changes it, both ways. `reboot_at`
restarts the firmware process on the Nth request (well-formed frames from the host, after
the faults; that one lost, as on
a brown-out: the new process sends READY); `hang_at` stops forwarding anything from the Nth
request on until the host reopens the port, which, as on a dev board's auto-reset circuit,
restarts the firmware. A reboot's READY is left intact so the host can see it.

It stands in until the device branch's link-emulation layer (devices/linkemu.py) lands in
front of every device; it does not touch devices/sim.py."""
from __future__ import annotations

import os
import select
import threading
import time
import tty
from collections import deque
from contextlib import ExitStack, contextmanager

import numpy as np
from esptiny.devices import native
from esptiny.devices.transports import PtyTransport
from esptiny.link import protocol as P

READY_FRAME_BYTES = P.OVERHEAD + 6  # a READY frame: u8 version, u8 status, u32 CRC32


class FaultLink:
    def __init__(self, exe, baud=0, corrupt=0.0, drop=0.0, seed=0, reboot_at=(), hang_at=None):
        self.exe = exe
        self.byte_s = 10.0 / baud if baud else 0.0
        self.corrupt, self.drop = corrupt, drop
        self.rng = np.random.default_rng(seed)
        self.reboot_at, self.hang_at = set(reboot_at), hang_at
        self.host = PtyTransport()
        self.url = self.host.path
        self.requests = self.reboots = self.hangs = 0
        self.corrupted = self.dropped = 0
        self._stop = False
        self._stack = None
        self._dev = None
        self._hung = False
        self._clean = 0  # device bytes left untouched (a fresh READY)
        self._parser = P.Parser(0xFFFF)
        self._q = {"to_dev": deque(), "to_host": deque()}
        self._clock = {"to_dev": 0.0, "to_host": 0.0}
        self.thread = threading.Thread(target=self._serve, daemon=True, name="faultlink")

    # the firmware process
    def _boot(self):
        if self._stack is not None:
            self._stack.close()
            self.reboots += 1
        self._stack = ExitStack()
        path = self._stack.enter_context(native.serve(self.exe))
        self._dev = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self._dev)
        self._stack.callback(os.close, self._dev)
        self._q["to_dev"].clear()
        self._q["to_host"].clear()
        self._parser = P.Parser(0xFFFF)
        self._clean = READY_FRAME_BYTES
        self._hung = False

    def _faults(self, data: bytes, to_host: bool) -> bytes:
        if not data or not (self.corrupt or self.drop):
            return data
        a = np.frombuffer(data, np.uint8).copy()
        start = 0
        if to_host and self._clean:
            start = min(self._clean, len(a))
            self._clean -= start
        tail = a[start:]
        flip = self.rng.random(len(tail)) < self.corrupt
        if flip.any():
            tail[flip] ^= self.rng.integers(1, 256, int(flip.sum()), dtype=np.uint8)
            self.corrupted += int(flip.sum())
        keep = np.ones(len(a), bool)
        keep[start:] = self.rng.random(len(tail)) >= self.drop
        self.dropped += int((~keep).sum())
        return a[keep].tobytes()

    def _queue(self, way: str, data: bytes, now: float):
        if not data:
            return
        start = max(self._clock[way], now)
        self._clock[way] = start + len(data) * self.byte_s
        self._q[way].append((self._clock[way], data))

    def _from_host(self, data: bytes, now: float):
        """Count requests as the device would parse them; reboot or hang at theirs."""
        for ev in self._parser.feed(data):
            if not isinstance(ev, P.Frame):
                continue
            self.requests += 1
            if self.requests in self.reboot_at:
                self._boot()
                return
            if self.hang_at is not None and self.requests == self.hang_at:
                self.hangs += 1
                self._hung = True
                return
        self._queue("to_dev", data, now)

    def _flush(self, now: float):
        for way, fd in (("to_dev", self._dev), ("to_host", self.host.master)):
            q = self._q[way]
            while q and q[0][0] <= now:
                t, data = q.popleft()
                try:
                    n = os.write(fd, data)
                except BlockingIOError:
                    n = 0
                except OSError:
                    return
                if n < len(data):
                    q.appendleft((t, data[n:]))
                    break

    def _serve(self):
        try:
            while not self._stop:
                if not self.host.wait_host(lambda: self._stop):
                    return
                self._boot()
                while not self._stop:
                    now = time.monotonic()
                    due = [q[0][0] for q in self._q.values() if q]
                    wait = 0.05 if not due else max(0.0, min(due) - now)
                    r, _, _ = select.select([self.host.master, self._dev], [], [], min(wait, 0.05))
                    now = time.monotonic()
                    if self.host.master in r:
                        data = self.host.read()
                        if data is None:
                            break  # the host closed the port
                        if self.host.flushed:  # reopened: the board resets
                            self.host.flushed = False
                            self._boot()
                        elif not self._hung:
                            self._from_host(self._faults(data, False), now)
                    if self._dev in r:
                        try:
                            data = os.read(self._dev, 65536)
                        except OSError:
                            data = b""
                        if data and not self._hung:
                            self._queue("to_host", self._faults(data, True), now)
                    self._flush(time.monotonic())
                if self._stack is not None:
                    self._stack.close()
                    self._stack = None
        finally:
            if self._stack is not None:
                self._stack.close()
            self.host.close()

    def stop(self):
        self._stop = True
        self.thread.join(10)


@contextmanager
def started(model_bytes: bytes, build_dir, **options):
    """Build the native firmware for the model, serve it behind the faulty link; yields
    the FaultLink (its .url is the pty the host opens)."""
    link = FaultLink(native.build(model_bytes, build_dir), **options)
    link.thread.start()
    try:
        yield link
    finally:
        link.stop()
