"""Link emulation: one layer that stands in front of any device esptiny starts (the
virtual board, the native firmware, the emulated core) and makes its link behave like a
dev board's UART, a bad cable or a flaky board. The device behind is unchanged: the
layer is a proxy between a new port (a pseudo-terminal, or a TCP listener) and the
device's own port.

What it does, all off unless asked (LinkOptions):
- `baud`: paces bytes both ways as a UART does (10 bits a byte, full duplex).
- `corrupt_rate`, `drop_rate`: per-byte faults from one generator seeded with `seed`
  (a corrupted byte is XORed with a non-zero mask), on the bytes the device receives
  (`fault_on` "rx"), sends ("tx") or "both". What a reboot prints (the boot text and the
  device's READY frame) is left intact, so that a reboot is always visible to the host.
- `reset_after`: reboots the device on receiving its Nth request (frames of any type
  count, N = 1, 2, ...; that request is lost, as on a brown-out, and so is whatever
  arrives while it boots). The device really reboots: it is reconnected (the virtual
  board boots on every open) or restarted (the native firmware, QEMU), so its C core
  starts again and sends READY.
- `hang_after`: the device stops answering after N requests (a hung board) until the
  host reopens the port, which reboots it.
- Boot: every time a host opens the port the device reboots, like a dev board whose
  auto-reset circuit pulses EN; `boot_text` prints ROM-like lines first (noise the host
  must skip), and for `boot_ms` the device hears nothing.

API, for tests and benchmarks:

    opts = LinkOptions(baud=921600, corrupt_rate=5e-4, drop_rate=5e-4, reset_after=(3000, 6000),
                       hang_after=8000, seed=1).check()
    with front(lambda: native.port(model, build_dir), opts, reboot="restart") as (url, link):
        ...  # open url with pyserial (or esptiny's client); link.requests, link.reboots,
             # link.hangs, link.faults.dropped / .corrupted count what happened

`front(start, opts, reboot)`: start() is a context manager yielding the device's URL (a
pty path or socket://HOST:PORT); reboot is "reopen" (the device boots when its port is
opened again: the virtual board) or "restart" (leave start()'s block and enter a new one).
`serve(start, opts, reboot, announce)` runs the same in the foreground (`esptiny sim`).
devices/ports.py puts the layer in front of a device when `--device-option`s ask for it.
"""
from __future__ import annotations

import copy
import os
import select
import signal
import socket
import termios
import threading
import time
import tty
from collections import deque
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, fields
from urllib.parse import urlparse

import numpy as np

from ..errors import UserError
from ..link import protocol as P
from .transports import PtyTransport, SocketTransport

FAULT_SIDES = ("rx", "tx", "both")
REBOOTS = ("reopen", "restart")
READY_FRAME_BYTES = P.OVERHEAD + len(P.pack_ready(0, 0))
FRAME_TIMEOUT_S = P.FRAME_TIMEOUT_S
PENDING_MAX_S = 5.0  # a reset or hang waits at most this long for the replies before it


@dataclass
class LinkOptions:
    baud: int = 0  # 0: no pacing (as fast as the host); else a UART at this rate
    corrupt_rate: float = 0.0
    drop_rate: float = 0.0
    fault_on: str = "both"
    reset_after: tuple = ()
    hang_after: int | None = None
    boot_ms: int = 100
    boot_text: bool = True
    seed: int = 0
    listen: str | None = None  # socket://HOST:PORT; None: a pseudo-terminal
    chip: str = field(default="esp32", repr=False)  # what the boot text names

    def check(self):
        for name in ("corrupt_rate", "drop_rate"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise UserError(f"{name} is a per-byte probability in [0, 1), not {v}")
        if self.fault_on not in FAULT_SIDES:
            raise UserError(f"fault_on is one of {', '.join(FAULT_SIDES)}, not {self.fault_on}")
        if self.baud < 0:
            raise UserError(f"baud must be 0 (no pacing) or a rate, not {self.baud}")
        if self.boot_ms < 0:
            raise UserError(f"boot_ms must be 0 or more, not {self.boot_ms}")
        self.reset_after = tuple(int(n) for n in self.reset_after)
        if any(n < 1 for n in self.reset_after) or (self.hang_after is not None and self.hang_after < 0):
            raise UserError("reset_after counts requests from 1, hang_after from 0")
        return self

    def active(self) -> bool:
        """Whether the link does anything a direct connection would not."""
        return bool(self.baud or self.corrupt_rate or self.drop_rate or self.reset_after
                    or self.hang_after is not None or self.listen)


OPTION_NAMES = tuple(f.name for f in fields(LinkOptions))


class Faults:
    """Per-byte drop and corruption, from one seeded generator."""

    def __init__(self, opts: LinkOptions):
        self.rng = np.random.default_rng(opts.seed)
        self.drop, self.corrupt = opts.drop_rate, opts.corrupt_rate
        self.sides = {"rx", "tx"} if opts.fault_on == "both" else {opts.fault_on}
        self.dropped = self.corrupted = 0
        self.offset = {"rx": 0, "tx": 0}  # bytes seen on each side, faulty or not
        self.hits = {"rx": [], "tx": []}  # offsets of the bytes corrupted or dropped

    def apply(self, data: bytes, side: str) -> bytes:
        at = self.offset[side]
        self.offset[side] += len(data)
        if side not in self.sides or not data or not (self.drop or self.corrupt):
            return data
        a = np.frombuffer(data, np.uint8).copy()
        flip = self.rng.random(len(a)) < self.corrupt
        if flip.any():  # xor with a non-zero mask: the byte really changes
            a[flip] ^= self.rng.integers(1, 256, int(flip.sum()), dtype=np.uint8)
            self.corrupted += int(flip.sum())
        keep = self.rng.random(len(a)) >= self.drop
        self.dropped += int((~keep).sum())
        self.hits[side] += (at + np.flatnonzero(flip | ~keep)).tolist()
        return a[keep].tobytes()


class Conn:
    """This end of the device's port: a pty path opened raw, or socket://HOST:PORT."""

    def __init__(self, url: str):
        self.sock = self.fd = None
        if url.startswith("socket://"):
            u = urlparse(url)
            self.sock = socket.create_connection((u.hostname, u.port), timeout=10)
            self.sock.setblocking(False)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        else:
            self.fd = os.open(url, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
            tty.setraw(self.fd)
            termios.tcflush(self.fd, termios.TCIFLUSH)  # as pyserial does: a board resets

    def fileno(self):
        return self.sock.fileno() if self.sock else self.fd

    def read(self) -> bytes | None:
        try:
            data = self.sock.recv(65536) if self.sock else os.read(self.fd, 65536)
        except BlockingIOError:
            return b""
        except OSError:
            return None
        return data or None

    def write_all(self, data: bytes) -> bool:
        while data:
            try:
                n = self.sock.send(data) if self.sock else os.write(self.fd, data)
            except BlockingIOError:
                select.select([], [self], [], 1.0)
                continue
            except OSError:
                return False
            data = data[n:]
        return True

    def close(self):
        if self.sock:
            self.sock.close()
        elif self.fd is not None:
            os.close(self.fd)
        self.sock = self.fd = None


class Upstream:
    """The device behind the link and how it reboots."""

    def __init__(self, start, reboot: str):
        if reboot not in REBOOTS:
            raise ValueError(reboot)
        self.start, self.reboot = start, reboot
        self.stack = None
        self.url = None
        self.conn = None
        self.fresh = False  # started, never connected to: already as good as rebooted

    def started(self):
        """Start the device (if it is not running): errors reach the caller."""
        if self.url is None:
            self.stack = ExitStack()
            self.url = self.stack.enter_context(self.start())
            self.fresh = True

    def up(self):
        self.started()
        self.conn = Conn(self.url)
        self.fresh = False

    def down(self, restart: bool):
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if restart and self.stack is not None and not self.fresh:
            self.stack.close()
            self.stack, self.url = None, None

    def close(self):
        self.fresh = False
        self.down(restart=True)


class Link:
    """A host-facing port in front of an Upstream, emulating the link (module docstring)."""

    def __init__(self, upstream: Upstream, opts: LinkOptions, log=None):
        self.opts = opts.check()
        self.up = upstream
        self.byte_s = 10.0 / opts.baud if opts.baud else 0.0
        self.faults = Faults(opts)
        self.requests = 0
        self.reboots = 0
        self.hangs = 0
        self.log = log or (lambda msg: None)
        self._stop = False
        self._wake_r, self._wake_w = os.pipe()  # stop() wakes a select() waiting forever

    def stop(self):
        """Stop serving (from another thread or a signal handler)."""
        self._stop = True
        try:
            os.write(self._wake_w, b"x")
        except OSError:  # already stopped: the pipe is closed
            pass

    def serve(self, transport):
        """Wait for a host, reboot the device, carry bytes until the host hangs up; again."""
        try:
            while not self._stop:
                if not transport.wait_host(lambda: self._stop):
                    return
                self.log("host connected: booting")
                self._session(transport)
                transport.end_session()
                self.log(f"host disconnected: {self.requests} requests so far")
        finally:
            transport.close()
            self.up.close()
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _boot_text(self, reason: str) -> bytes:
        if not self.opts.boot_text:
            return b""
        return (f"ESP-ROM:{self.opts.chip} (esptiny link emulation)\r\n"
                f"rst:{reason},boot:0x8 (SPI_FAST_FLASH_BOOT)\r\n"
                f"I (31) boot: esptiny firmware\r\n").encode()

    def _session(self, t):
        now = time.monotonic()
        self.wire = deque()  # received, still travelling: [start time, bytes]
        self.rx_clock = now
        self.tx = deque()  # to send: (time the last byte is out, bytes)
        self.tx_clock = now
        self.counter = P.Parser(P.DEFAULT_MAX_PAYLOAD)  # counts the requests the device gets
        self.last_rx = now
        self._reboot(now, "0x1 (POWERON)")
        while not self._stop:
            now = time.monotonic()
            wake = self._next_wake(now)
            want_write = bool(self.tx) and self.tx[0][0] <= now
            rd = [t, self._wake_r] + ([self.up.conn] if self.up.conn else [])
            r, _, _ = select.select(rd, [t] if want_write else [], [],
                                    None if wake is None else max(0.0, wake - now))
            now = time.monotonic()
            if self._wake_r in r:
                return
            if t in r:
                data = t.read()
                if data is None:
                    return
                if getattr(t, "flushed", False):  # the host (re)opened the port: a reset
                    t.flushed = False
                    self._reboot(now, "0x1 (POWERON)")
                self._receive(self.faults.apply(data, "rx"), now)
            elif t.hung_up():
                return
            if self.up.conn is not None and self.up.conn in r:
                self._from_device(self.up.conn.read(), now)
            if self.boot_until is not None and now >= self.boot_until:
                self.boot_until = None
                try:
                    self.up.up()  # the device boots: its READY comes next
                except (OSError, UserError) as e:  # it would not start: a dead board, silent
                    self.log(f"the device did not come back: {e}")
                self.intact = READY_FRAME_BYTES
            self._to_device(self._arrived(now), now)
            if self.pending is not None:
                self._strike(time.monotonic())
            if not self._flush(t, time.monotonic()):
                return

    def _reboot(self, now: float, reason: str):
        self.reboots += 1
        self.hung = False
        self.intact = 0
        self.pending = None  # (action, replies it waits for, deadline)
        self.forwarded = self.replies = 0  # requests and replies since the boot
        self.replies_seen = P.Parser(P.DEFAULT_MAX_PAYLOAD)
        self.up.down(restart=self.up.reboot == "restart")
        self._cut_tx(now)
        self.wire.clear()
        self.counter = P.Parser(P.DEFAULT_MAX_PAYLOAD)
        self.boot_until = now + self.opts.boot_ms / 1000
        self._send(self._boot_text(reason), now, faults=False)

    # ---- bytes to the device: counted, with the reset and hang triggers ----------------
    def _to_device(self, data: bytes, now: float):
        if self.boot_until is not None or self.hung or self.up.conn is None:
            if data:
                self.last_rx = now
            return  # a booting or hung board's UART is not listening
        if not data:
            if self.counter.pending() and not self.wire and now - self.last_rx >= FRAME_TIMEOUT_S:
                self.counter.timeout()  # as the device's frame time-out drops a partial frame
                self.last_rx = now
            return
        self.last_rx = now
        if self.pending is not None:
            return  # lost: the board is about to reset or hang
        before = self.requests
        cut, action = self._count(data)
        data = data[:cut]
        self.forwarded += self.requests - before - (1 if action else 0)
        if data and not self.up.conn.write_all(data):
            self.up.down(restart=False)  # the device went away: silence, as a dead board
        if action:
            # It strikes once the device has answered what came before (as it would have
            # on a UART, where the next request takes time to arrive).
            self.pending = (action, self.forwarded, now + PENDING_MAX_S)

    def _strike(self, now: float):
        action, needed, deadline = self.pending
        if self.replies < needed and now < deadline:
            return
        self.pending = None
        if action == "reset":
            self.log(f"request {self.requests}: brown-out reset")
            self._reboot(now, "0xf (BROWN_OUT_RST)")
        else:
            self.log(f"request {self.requests}: hung")
            self.hung = True
            self.hangs += 1

    def _trigger(self, n: int):
        if n in self.opts.reset_after:
            return "reset"
        if self.opts.hang_after is not None and n == self.opts.hang_after + 1:
            return "hang"
        return None

    def _count(self, data: bytes) -> tuple:
        """Count the requests in data; (bytes to forward, "reset" | "hang" | None). The
        request that trips a trigger loses its last byte, so the device never gets it."""
        saved = copy.deepcopy(self.counter) if self.opts.reset_after or self.opts.hang_after is not None else None
        frames = sum(isinstance(e, P.Frame) for e in self.counter.feed(data))
        if saved is None or not any(self._trigger(self.requests + k) for k in range(1, frames + 1)):
            self.requests += frames
            return len(data), None
        self.counter = saved  # again byte by byte, to find where the trigger's request ends
        for i in range(len(data)):
            for e in self.counter.feed(data[i:i + 1]):
                if isinstance(e, P.Frame):
                    self.requests += 1
                    action = self._trigger(self.requests)
                    if action:
                        return i, action
        raise AssertionError("a request counted once was not found again")

    # ---- bytes from the device --------------------------------------------------------
    def _from_device(self, data, now: float):
        if data is None:  # the device closed its end (the native firmware exits)
            self.up.down(restart=False)
            return
        if not data or self.hung or self.boot_until is not None:
            return
        self.replies += sum(isinstance(e, P.Frame) and e.type != P.READY
                            for e in self.replies_seen.feed(data))
        keep, self.intact = data[:self.intact], max(0, self.intact - len(data))
        self._send(keep, now, faults=False)
        self._send(data[len(keep):], now)

    # ---- the emulated UART: bytes arrive and leave at baud/10 bytes a second -----------
    def _receive(self, data: bytes, now: float):
        if not data:
            return
        start = max(self.rx_clock, now)
        self.rx_clock = start + len(data) * self.byte_s
        self.wire.append([start, data])

    def _arrived(self, now: float) -> bytes:
        out = []
        while self.wire:
            start, data = self.wire[0]
            n = len(data) if not self.byte_s else min(len(data), int((now - start) / self.byte_s + 1e-9))
            if n <= 0:
                break
            out.append(data[:n])
            if n == len(data):
                self.wire.popleft()
            else:
                self.wire[0] = [start + n * self.byte_s, data[n:]]
                break
        return b"".join(out)

    def _send(self, data: bytes, now: float, faults: bool = True):
        if faults:
            data = self.faults.apply(data, "tx")
        if not data:
            return
        start = max(self.tx_clock, now)
        self.tx_clock = start + len(data) * self.byte_s
        self.tx.append((self.tx_clock, data))

    def _cut_tx(self, now: float):
        """A reset loses what the UART has not sent yet; what is already out stays out
        (the frame being sent is cut where the reset caught it)."""
        kept = deque()
        for done, data in self.tx:
            if done <= now:
                kept.append((done, data))
            else:
                left = int((done - now) / self.byte_s) + 1 if self.byte_s else 0
                if left < len(data):
                    kept.append((now, data[:len(data) - left]))
                break
        self.tx = kept
        self.tx_clock = now

    def _flush(self, t, now: float) -> bool:
        while self.tx and self.tx[0][0] <= now:
            done, data = self.tx[0]
            n = t.write(data)
            if n is None:
                return False
            if n < len(data):
                self.tx[0] = (done, data[n:])
                return True
            self.tx.popleft()
        return True

    def _bytes_needed(self) -> int:
        """Bytes the counter needs to complete the frame it holds: no use waking earlier."""
        buf = self.counter.buf
        if len(buf) >= P.HEADER_BYTES and buf[:2] == P.MAGIC:
            length = P.HEADER.unpack_from(buf)[3]
            if length <= P.DEFAULT_MAX_PAYLOAD:
                return max(1, P.HEADER_BYTES + length + P.CRC_BYTES - len(buf))
        return 1

    def _next_wake(self, now: float):
        times = []
        if self.boot_until is not None:
            times.append(self.boot_until)
        if self.tx and self.tx[0][0] > now:  # a due write waits on select's writability
            times.append(self.tx[0][0])
        if self.wire:
            need, t = self._bytes_needed(), None
            for start, data in self.wire:
                if need <= len(data):
                    t = start + need * self.byte_s
                    break
                need -= len(data)
            times.append(t if t is not None else self.rx_clock)
        elif self.counter.pending():
            times.append(self.last_rx + FRAME_TIMEOUT_S)
        if self.pending is not None:
            times.append(min(self.pending[2], now + 0.01))
        if self.byte_s and times:  # pacing: no busy loop on sub-millisecond waits
            times = [max(x, now + 0.0005) if x > now else x for x in times]
        return min(times) if times else None


def _started(start, opts: LinkOptions, reboot: str, log):
    """A Link with its device started (its errors reach the caller) and the host's port."""
    link = Link(Upstream(start, reboot), opts, log)
    link.up.started()
    try:
        return link, SocketTransport(opts.listen) if opts.listen else PtyTransport()
    except BaseException:
        link.up.close()
        raise


@contextmanager
def front(start, opts: LinkOptions, reboot: str, log=None):
    """The link in front of the device start() starts, served from a thread for the
    block; yields (the host's URL, the Link, whose counters say what happened)."""
    link, t = _started(start, opts, reboot, log)
    th = threading.Thread(target=link.serve, args=(t,), daemon=True, name="link emulation")
    th.start()
    try:
        yield t.url, link
    finally:
        link.stop()
        th.join(30)


def serve(start, opts: LinkOptions, reboot: str, announce, log=None) -> Link:
    """The link in front of a device in the foreground until interrupted; announce(url)
    once the host can open it."""
    link, t = _started(start, opts, reboot, log)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: link.stop())  # stop the device too, cleanly
    announce(t.url)
    try:
        link.serve(t)
    except KeyboardInterrupt:
        pass
    return link
