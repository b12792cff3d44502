"""The virtual board: the firmware's serial protocol on a pseudo-terminal or a TCP socket,
inferring with TFLite-Micro's host runtime, so its outputs are TFLite-Micro's.

It behaves as the firmware core does (docs/protocol.md): the same parser
(protocol.Parser, with its frame time-out), one reply per request in order, READY at
boot, INFO with the emulated chip's figures, ERROR `not ready` when TFLite-Micro cannot
allocate the model. Like a dev board whose auto-reset circuit pulses EN when a port is
opened, it boots (ROM text, then READY) each time a host connects.

Link emulation (off unless asked): `baud` paces bytes both ways as a UART does (10 bits a
byte, full duplex); faults are drawn per byte with a seeded generator: `drop_rate` loses
a byte, `corrupt_rate` flips bits in it, on the bytes the device receives (`fault_on`
"rx"), sends ("tx") or both. The boot output (ROM text, READY) is left intact, so that
a reboot is always visible to the host. `reset_after` reboots the board on receiving
its Nth request (frames of any type count; that request is lost, as on a brown-out,
and so is whatever arrives while it boots); `hang_after` stops it answering after N
requests (a hung board) until the host reopens the port.

Latency it reports is host time (perf_counter_ns around invoke), scaled to the emulated
chip's clock for the cycle count: simulated, not a prediction (costmodel.py estimates).
"""
from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np

from ..crc import crc32
from ..errors import UserError
from ..link import protocol as P
from ..targets.boards import BOARDS
from .transports import PtyTransport, SocketTransport

FIRMWARE_VERSION = "esptiny-sim 0.1.0"
NUMPY_TO_DTYPE = {np.dtype(name): code for name, code in P.DTYPE_CODES.items()}
DTYPE_TO_NUMPY = {v: k for k, v in NUMPY_TO_DTYPE.items()}
NO_TENSOR = P.TensorInfo(P.DTYPE_CODES["int8"], (1,), 0.0, 0)
FAULT_SIDES = ("rx", "tx", "both")


@dataclass
class SimOptions:
    chip: str = "esp32"
    baud: int = 0  # 0: no pacing (as fast as the host); else a UART at this rate
    rx_buffer_bytes: int = 4096
    max_payload: int = P.DEFAULT_MAX_PAYLOAD
    arena_bytes: int | None = None  # None: what TFLite-Micro records, rounded up to 1 KiB
    corrupt_rate: float = 0.0
    drop_rate: float = 0.0
    fault_on: str = "both"
    reset_after: tuple = ()
    hang_after: int | None = None
    boot_ms: int = 100
    frame_timeout_ms: int = 200
    seed: int = 0
    listen: str | None = None  # socket://HOST:PORT; None: a pseudo-terminal

    def check(self):
        if self.chip not in BOARDS:
            raise UserError(f"unknown chip '{self.chip}'; choose from {', '.join(BOARDS)}")
        for name in ("corrupt_rate", "drop_rate"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise UserError(f"--{name.replace('_', '-')} is a per-byte probability in [0, 1), not {v}")
        if self.fault_on not in FAULT_SIDES:
            raise UserError(f"--fault-on is one of {', '.join(FAULT_SIDES)}, not {self.fault_on}")
        if self.baud < 0:
            raise UserError(f"--baud must be 0 (no pacing) or a rate, not {self.baud}")
        if not 64 <= self.max_payload <= 0xFFFF:
            raise UserError(f"max payload {self.max_payload} outside 64..65535")
        if self.rx_buffer_bytes < 64:
            raise UserError(f"--rx-buffer-bytes must be at least 64, not {self.rx_buffer_bytes}")
        if any(n < 1 for n in self.reset_after) or (self.hang_after is not None and self.hang_after < 0):
            raise UserError("--reset-after and --hang-after count requests: 1 or more")
        return self


# ---- the device: the firmware core's behaviour, transport-free ---------------------

class Device:
    """The protocol core over TFLite-Micro's host runtime: events in, reply frames out."""

    def __init__(self, model_bytes: bytes, opts: SimOptions):
        self.model = bytes(model_bytes)
        self.opts = opts
        self.engine = None
        self.info = self._init_engine()
        self.parser = P.Parser(opts.max_payload)
        self.in_dtype = DTYPE_TO_NUMPY.get(self.info.input.dtype)

    def _init_engine(self) -> P.Info:
        """What espt_engine_init does: load, allocate, fill INFO even when it fails."""
        from ..model import tflm
        chip = BOARDS[self.opts.chip]
        status, used, arena = P.STATUS_READY, 0, self.opts.arena_bytes or 0
        tin = tout = NO_TENSOR
        try:
            probe = tflm.interpreter(self.model)
            tin, tout = (self._tensor(probe.get_input_details(0)),
                         self._tensor(probe.get_output_details(0)))
            used = tflm.arena_bytes(self.model)["total"]
        except Exception:  # anything TFLite-Micro rejects is an invalid model to the board
            status = P.STATUS_MODEL_INVALID
        if status == P.STATUS_READY:
            arena = arena or -(-used // 1024) * 1024
            try:
                self.engine = tflm.interpreter(self.model, arena_size=arena)
                d = self.engine.get_input_details(0)
                self.engine.set_input(np.zeros(d["shape"], d["dtype"]), 0)
                self.engine.invoke()  # allocation problems surface here at the latest
            except Exception:
                self.engine, status, used = None, P.STATUS_ARENA_TOO_SMALL, 0
        return P.Info(model_crc32=crc32(self.model), model_bytes=len(self.model),
                      arena_bytes=arena, arena_used_bytes=used if status == P.STATUS_READY else 0,
                      cpu_mhz=chip.cpu_mhz, max_payload=self.opts.max_payload,
                      rx_buffer_bytes=self.opts.rx_buffer_bytes, input=tin, output=tout,
                      chip=f"virtual-{self.opts.chip}", firmware_version=FIRMWARE_VERSION,
                      status=status, engine=P.ENGINE_CODES["tflm"])

    @staticmethod
    def _tensor(d: dict) -> P.TensorInfo:
        dtype = NUMPY_TO_DTYPE.get(np.dtype(d["dtype"]))
        shape = tuple(int(s) for s in d["shape"])
        if dtype is None or not 1 <= len(shape) <= 4:
            raise ValueError(f"tensor {d['dtype']} {shape} does not fit INFO")
        q = d.get("quantization_parameters") or {}
        scales, zps = q.get("scales", []), q.get("zero_points", [])
        return P.TensorInfo(dtype, shape, float(scales[0]) if len(scales) else 0.0,
                            int(zps[0]) if len(zps) else 0)

    def ready_frame(self) -> bytes:
        return P.encode_frame(P.READY, 0, P.pack_ready(self.info.status, self.info.model_crc32))

    def reset(self):
        self.parser = P.Parser(self.opts.max_payload)

    def reply(self, event) -> bytes:
        """The one reply a parsed frame or a parse error gets."""
        if isinstance(event, P.ParseError):
            return self._error(event.seq, event.code, P.ERROR_NAMES[event.code])
        f = event
        if f.type == P.INFO_REQ:
            return P.encode_frame(P.INFO_RSP, f.seq, self.info.pack())
        if f.type == P.PING_REQ:
            return P.encode_frame(P.PONG, f.seq, f.payload)
        if f.type != P.INFER_REQ:
            return self._error(f.seq, P.ERR_UNKNOWN_TYPE, f"unknown type 0x{f.type:02x}")
        if self.engine is None:
            return self._error(f.seq, P.ERR_NOT_READY,
                               f"not ready: {P.STATUS_NAMES[self.info.status]}")
        if len(f.payload) != self.info.input.nbytes:
            return self._error(f.seq, P.ERR_BAD_LENGTH, f"INFER_REQ of {len(f.payload)} bytes, "
                               f"input takes {self.info.input.nbytes}")
        x = np.frombuffer(f.payload, self.in_dtype).reshape(self.info.input.shape)
        try:
            self.engine.set_input(x, 0)
            t0 = time.perf_counter_ns()  # only the invoke is timed, as on the device
            self.engine.invoke()
            ns = time.perf_counter_ns() - t0
            out = self.engine.get_output(0).tobytes()
        except Exception:  # TFLite-Micro's runtime raises RuntimeError; any failure is the device's
            return self._error(f.seq, P.ERR_INVOKE_FAILED, "invoke failed")
        result = P.InferResult(ns * self.info.cpu_mhz // 1000, ns // 1000, out)
        return P.encode_frame(P.INFER_RSP, f.seq, result.pack())

    @staticmethod
    def _error(seq: int, code: int, text: str) -> bytes:
        """ERROR with the firmware core's texts (firmware/core/device.c)."""
        return P.encode_frame(P.ERROR, seq, P.pack_error(code, text))


# ---- the board: a device behind an emulated UART -----------------------------------

class Faults:
    """Per-byte drop and corruption, from one seeded generator."""

    def __init__(self, opts: SimOptions):
        self.rng = np.random.default_rng(opts.seed)
        self.drop, self.corrupt = opts.drop_rate, opts.corrupt_rate
        self.sides = {"rx", "tx"} if opts.fault_on == "both" else {opts.fault_on}
        self.dropped = self.corrupted = 0

    def apply(self, data: bytes, side: str) -> bytes:
        if side not in self.sides or not data or not (self.drop or self.corrupt):
            return data
        a = np.frombuffer(data, np.uint8).copy()
        flip = self.rng.random(len(a)) < self.corrupt
        if flip.any():  # xor with a non-zero mask: the byte really changes
            a[flip] ^= self.rng.integers(1, 256, int(flip.sum()), dtype=np.uint8)
            self.corrupted += int(flip.sum())
        keep = self.rng.random(len(a)) >= self.drop
        self.dropped += int((~keep).sum())
        return a[keep].tobytes()


class Board:
    """A Device behind a (paced, faulty) serial link, serving one host at a time."""

    def __init__(self, model_bytes: bytes, opts: SimOptions, log=None):
        self.opts = opts.check()
        self.device = Device(model_bytes, opts)
        self.byte_s = 10.0 / opts.baud if opts.baud else 0.0
        self.faults = Faults(opts)
        self.requests = 0
        self.reboots = 0
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

    # Serving: wait for a host, boot, answer until it hangs up; again.
    def serve(self, transport):
        try:
            while not self._stop:
                if not transport.wait_host(lambda: self._stop):
                    return
                self.log("host connected: booting")
                self.stats = {"rx_bytes": 0, "rx_idle_s": 0.0, "t0": time.monotonic()}
                self._session(transport)
                transport.end_session()
                st = self.stats
                self.log(f"host disconnected after {time.monotonic() - st['t0']:.1f}s: "
                         f"{st['rx_bytes']:,} bytes received, {self.requests} requests so far"
                         + (f", link idle {st['rx_idle_s']:.2f}s between bytes" if self.byte_s else ""))
        finally:
            transport.close()
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _boot_text(self, reason: str) -> bytes:
        chip = self.opts.chip
        return (f"ESP-ROM:{chip} (esptiny virtual board)\r\n"
                f"rst:{reason},boot:0x8 (SPI_FAST_FLASH_BOOT)\r\n"
                f"I (31) boot: TFLite-Micro host runtime, model crc32 "
                f"{self.device.info.model_crc32:08x}\r\n").encode()

    def _session(self, t):
        now = time.monotonic()
        self.wire = deque()  # received, still travelling: [start time, bytes]
        self.rx_clock = now
        self.tx = deque()  # to send: (time the last byte is out, bytes)
        self.tx_clock = now
        self.hung = False
        self._reboot(now, "0x1 (POWERON)")
        last_rx = now
        while not self._stop:
            now = time.monotonic()
            wake = self._next_wake(now, last_rx)
            want_write = bool(self.tx) and self.tx[0][0] <= now
            r, w, _ = select.select([t, self._wake_r], [t] if want_write else [], [],
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
            if self.boot_until is not None:
                if now < self.boot_until:
                    self.wire.clear()  # a booting board's UART is not listening
                    self.rx_clock = now
                else:
                    self.boot_until = None
                    self._send(self.device.ready_frame(), now, faults=False)
            arrived = self._arrived(now)
            # Quiet is measured from when the device listens again (as the firmware does):
            # serving may take longer than the frame time-out.
            if arrived:
                self._handle(self.device.parser.feed(arrived), now)
                last_rx = time.monotonic()
            elif (self.device.parser.pending() and not self.wire
                  and now - last_rx >= self.opts.frame_timeout_ms / 1000):
                self._handle(self.device.parser.timeout(), now)
                last_rx = time.monotonic()
            if not self._flush(t, time.monotonic()):
                return

    def _reboot(self, now: float, reason: str):
        self.reboots += 1
        self.hung = False
        self.device.reset()
        self._cut_tx(now)
        self.wire.clear()
        self.boot_until = now + self.opts.boot_ms / 1000
        self._send(self._boot_text(reason), now, faults=False)

    def _handle(self, events, now: float):
        for ev in events:
            if self.hung or self.boot_until is not None:
                return  # a hung or rebooting board answers nothing more
            if isinstance(ev, P.Frame):
                self.requests += 1
                if self.requests in self.opts.reset_after:
                    self.log(f"request {self.requests}: brown-out reset")
                    self._reboot(time.monotonic(), "0xf (BROWN_OUT_RST)")
                    return
                if self.opts.hang_after is not None and self.requests == self.opts.hang_after + 1:
                    self.log(f"request {self.requests}: hung")
                    self.hung = True
                    return
            self._send(self.device.reply(ev), time.monotonic())

    # The emulated UART: bytes arrive and leave at baud/10 bytes a second.
    def _receive(self, data: bytes, now: float):
        if not data:
            return
        start = max(self.rx_clock, now)
        if self.stats["rx_bytes"]:
            self.stats["rx_idle_s"] += start - self.rx_clock  # the link had nothing to carry
        self.stats["rx_bytes"] += len(data)
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

    def _send(self, frame: bytes, now: float, faults: bool = True):
        data = self.faults.apply(frame, "tx") if faults else frame
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
        """Bytes the parser needs before it can emit something: no use waking earlier."""
        buf = self.device.parser.buf
        if len(buf) >= P.HEADER_BYTES and buf[:2] == P.MAGIC:
            length = P.HEADER.unpack_from(buf)[3]
            if length <= self.opts.max_payload:
                return max(1, P.HEADER_BYTES + length + P.CRC_BYTES - len(buf))
        return 1

    def _next_wake(self, now: float, last_rx: float):
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
        elif self.device.parser.pending():
            times.append(last_rx + self.opts.frame_timeout_ms / 1000)
        if self.byte_s and times:  # pacing: no busy loop on sub-millisecond waits
            times = [max(x, now + 0.0005) if x > now else x for x in times]
        return min(times) if times else None


# ---- running one: in the foreground, or as a subprocess for a bench ----------------

def serve(model_bytes: bytes, opts: SimOptions, announce, log=None):
    """Run a virtual board until interrupted; announce(url) once it can be opened."""
    board = Board(model_bytes, opts, log)
    transport = SocketTransport(opts.listen) if opts.listen else PtyTransport()
    announce(transport.url)
    try:
        board.serve(transport)
    except KeyboardInterrupt:
        pass
    return board


@contextmanager
def start(model_path, opts: SimOptions, start_timeout: float = 60.0):
    """A virtual board in a subprocess for the duration of the block; yields its URL."""
    opts.check()
    cmd = [sys.executable, "-m", "esptiny.devices.sim", str(model_path), json.dumps(asdict(opts))]
    with tempfile.TemporaryFile("w+") as err:  # a file, not a pipe nobody drains
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                                text=True)
        try:
            ready, _, _ = select.select([proc.stdout], [], [], start_timeout)
            line = proc.stdout.readline().strip() if ready else ""
            if not line.startswith(("/", "socket://")):
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
    """`python -m esptiny.devices.sim MODEL OPTIONS_JSON`: what start() runs."""
    import signal
    model_path, spec = argv
    opts = SimOptions(**{**json.loads(spec), "reset_after": tuple(json.loads(spec)["reset_after"])})
    with open(model_path, "rb") as f:
        model = f.read()
    board = Board(model, opts)
    transport = SocketTransport(opts.listen) if opts.listen else PtyTransport()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # unblocks select; serve() closes
    print(transport.url, flush=True)
    board.serve(transport)


if __name__ == "__main__":
    try:
        _main(sys.argv[1:])
    except UserError as e:
        print(f"esptiny sim: error: {e}", file=sys.stderr)
        sys.exit(1)
