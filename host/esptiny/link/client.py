"""The host end of one serial link: open the port (resetting the board as esptool does),
the READY/INFO handshake, the model check, then the pipelined request stream.

It keeps as many requests in flight as the board's RX buffer holds, so a fast board is
limited by the link and a slow one by its compute. Replies are matched by seq; the device
answers in order, so a reply to a later request means every earlier one still in flight
was lost. Lost, failed or timed-out requests are resent (bounded per image); a READY
mid-run means the board rebooted and everything in flight is resent. A late reply to a
request given up on is still accepted, a second reply for a finished image ignored.
"""
from __future__ import annotations

import errno
import threading
import time
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass

import numpy as np

from ..crc import crc32
from ..errors import UserError
from . import protocol as P

PROBE_AFTER_S = 1.0  # no READY by then: ask INFO (the board may have booted long ago)
HANDSHAKE_MAX_PAYLOAD = 1024


class LinkError(Exception):
    """A session cannot go on; the run keeps its partial result."""


class Stopped(Exception):
    """Another session failed: stop this one quietly."""


@dataclass
class Settings:
    baud: int = 921600
    reset: bool = True
    retries: int = 10
    timeout: float = 2.0
    ready_timeout: float = 10.0


# ---- one board ----------------------------------------------------------------------

class Session:
    """One board on one port: handshake, then the pipelined stream."""

    def __init__(self, url: str, label: str, settings: Settings, paced: bool = True):
        self.url, self.label, self.s = url, label, settings
        self.paced = paced  # False: a pseudo-terminal with no UART behind it
        self.ser = None
        self.info: P.Info | None = None
        self.seq = 0
        self.counts = Counter()  # retries, timeouts, reboots, stale replies, errors by name
        self.images = 0
        self.seconds = 0.0
        self.max_latency_s = None
        self.noise_bytes = 0

    # Port handling
    def open(self):
        import serial
        try:
            ser = serial.serial_for_url(self.url, do_not_open=True, baudrate=self.s.baud,
                                        timeout=0, write_timeout=10, exclusive=True)
            ser.dtr = False  # opening must not hold the board in reset or in the bootloader
            ser.rts = False
            ser.open()
        except (serial.SerialException, ValueError, OSError) as e:
            raise UserError(f"cannot open port {self.url}: {one_line(e)}") from None
        self.ser = ser
        try:
            self.fd = ser.fileno()
        except (AttributeError, NotImplementedError, serial.SerialException):
            self.fd = None  # rfc2217:// and loop:// have no descriptor: poll instead
        if self.s.reset:
            self._reset_board()

    def _reset_board(self):
        """Pulse EN through RTS with IO0 (DTR) high: reset into the application, as esptool's
        HardReset does (esptool/reset.py) on dev boards' auto-reset circuit. Ports without modem lines
        (pseudo-terminals: ENOTTY; sockets: ignored) are left alone. No input flush after
        the pulse: what comes now is the new boot, READY included."""
        import serial
        try:
            self.ser.dtr = False
            self.ser.rts = True
            time.sleep(0.1)
            self.ser.rts = False
        except OSError as e:
            if e.errno not in (errno.ENOTTY, errno.EINVAL):
                raise UserError(f"{self.label}: cannot reset through DTR/RTS: {one_line(e)}") from None
        except serial.SerialException as e:
            raise UserError(f"{self.label}: cannot reset through DTR/RTS: {one_line(e)}") from None

    def close(self):
        if self.ser is not None:
            try:
                self.ser.close()
            except Exception:  # closing a port that vanished: nothing left to do
                pass
            self.ser = None

    def _write(self, data: bytes):
        import serial
        try:
            self.ser.write(data)
        except serial.SerialTimeoutException:
            raise LinkError(f"{self.label}: writing timed out (is the board reading?)") from None
        except (serial.SerialException, OSError) as e:
            raise LinkError(f"{self.label}: the port failed: {one_line(e)}") from None

    def _read(self, wait: float) -> bytes:
        import select

        import serial
        try:
            if self.fd is not None:
                if not select.select([self.fd], [], [], wait)[0]:
                    return b""
                return self.ser.read(65536)
            data = self.ser.read(max(1, self.ser.in_waiting))
            if not data:
                time.sleep(min(wait, 0.002))
            return data
        except (serial.SerialException, OSError) as e:
            raise LinkError(f"{self.label}: the port failed: {one_line(e)}") from None

    def _receive(self, parser: P.Parser, wait: float, last_rx: float) -> tuple:
        """Read what came within `wait` into the parser: (events, now, time of the last
        byte). A partial frame after P.FRAME_TIMEOUT_S of quiet is timed out once per quiet
        period, as the device does."""
        data = self._read(wait)
        now = time.monotonic()
        if data:
            return parser.feed(data), now, now
        if parser.pending() and now - last_rx > P.FRAME_TIMEOUT_S:
            return parser.timeout(), now, now
        return [], now, last_rx

    def _next_seq(self, busy=()) -> int:
        """1..65534: 0 is READY's, 65535 an error's 'unknown'; skip seqs still out."""
        while True:
            self.seq = self.seq % 0xFFFE + 1
            if self.seq not in busy:
                return self.seq

    # Handshake
    def connect(self):
        """READY (skipping boot text), then INFO. A board that booted long ago sends no
        READY: after PROBE_AFTER_S we ask INFO anyway."""
        self.open()
        parser = P.Parser(HANDSHAKE_MAX_PAYLOAD)
        t0 = time.monotonic()
        deadline, probe_at, last_rx = t0 + self.s.ready_timeout, t0 + PROBE_AFTER_S, t0
        ready = None
        try:
            while time.monotonic() < deadline:
                events, now, last_rx = self._receive(parser, 0.02, last_rx)
                for ev in events:
                    if isinstance(ev, P.Frame) and ev.type == P.READY:
                        ready, probe_at = ev, now
                    elif isinstance(ev, P.Frame) and ev.type == P.INFO_RSP and ev.seq == self.seq:
                        try:
                            self.info = P.Info.unpack(ev.payload)
                        except ValueError as e:
                            raise UserError(f"{self.label}: {e}") from None
                        self.noise_bytes = parser.noise_bytes
                        return self.info
                if now >= probe_at:
                    self._write(P.encode_frame(P.INFO_REQ, self._next_seq()))
                    probe_at = now + PROBE_AFTER_S
        except LinkError as e:
            raise UserError(str(e)) from None
        if ready is not None:
            raise UserError(f"{self.label}: sent READY but never answered INFO within "
                            f"{self.s.ready_timeout:g}s")
        hint = "is the firmware flashed and --baud right?" if self.s.reset else \
            "is the firmware flashed? try --reset"
        raise UserError(f"no READY from {self.url} within {self.s.ready_timeout:g}s; {hint}")

    def check(self, variant: str, model_bytes: bytes, in_d: dict, out_d: dict):
        """The board must run this variant: same input, same output, same model bytes."""
        info = self.info
        if info.protocol_version != P.PROTOCOL_VERSION:
            raise UserError(f"{self.label} speaks protocol version {info.protocol_version}; "
                            f"this esptiny speaks {P.PROTOCOL_VERSION}: reflash the firmware")
        for what, t, d in (("input", info.input, in_d), ("output", info.output, out_d)):
            ours = (str(np.dtype(d["dtype"])), tuple(int(s) for s in d["shape"]))
            theirs = (P.DTYPE_NAMES.get(t.dtype, f"type {t.dtype}"), tuple(t.shape))
            if info.status != P.STATUS_MODEL_INVALID and ours != theirs:
                raise UserError(f"variant '{variant}' {what} is {ours[0]} {ours[1]} but the model on "
                                f"{self.label} has {theirs[0]} {theirs[1]}")
        crc = crc32(model_bytes)
        if info.model_crc32 != crc:
            raise UserError(f"{self.label} carries another model (CRC32 {info.model_crc32:08x}, "
                            f"{info.model_bytes} bytes) than variant '{variant}' (CRC32 {crc:08x}, "
                            f"{len(model_bytes)} bytes); flash this variant or bench the one it runs")
        if info.status != P.STATUS_READY:
            why = P.STATUS_NAMES.get(info.status, f"status {info.status}")
            if info.detail:
                why += f": {info.detail}"
            raise UserError(f"{self.label} is not ready: {why} (arena {info.arena_bytes} bytes)")
        if info.input.nbytes > info.max_payload:
            raise UserError(f"{self.label} accepts payloads up to {info.max_payload} bytes; the "
                            f"input needs {info.input.nbytes}")

    # The stream
    def stream(self, work, payload, accept, is_done, stop: threading.Event):
        """Send the images `work` hands out, pipelined; accept(i, InferResult) each reply."""
        info, s = self.info, self.s
        req_len = P.OVERHEAD + info.input.nbytes
        budget = info.rx_buffer_bytes
        parser = P.Parser(max(P.INFER_RSP_HEAD.size + info.output.nbytes, P.ERROR_MAX_BYTES))
        inflight = OrderedDict()  # seq -> image, in send order
        retired = {}  # seq -> image: given up on, but a late reply still counts
        active, tries = Counter(), Counter()
        retry_q = deque()
        in_bytes = 0
        exhausted = False
        t_start = last_rx = last_progress = time.monotonic()

        def requeue(i, reason):
            if is_done(i) or active[i] or i in retry_q:
                return
            self.counts[f"retry: {reason}"] += 1
            if tries[i] > s.retries:
                raise LinkError(f"{self.label}: image {i} got no good reply in {tries[i]} "
                                 f"attempts (last: {reason}); raise --retries for a noisy link")
            retry_q.append(i)

        def retire(seq, reason):
            nonlocal in_bytes
            i = inflight.pop(seq)
            in_bytes -= req_len
            active[i] -= 1
            retired[seq] = i
            requeue(i, reason)

        while True:
            if stop.is_set():
                raise Stopped()
            while not inflight or in_bytes + req_len <= budget:  # fill the pipeline
                i = None
                while retry_q and i is None:
                    i = retry_q.popleft()
                    i = None if is_done(i) else i
                if i is None and not exhausted:
                    i = work()
                    exhausted = i is None
                if i is None:
                    break
                tries[i] += 1
                seq = self._next_seq(inflight)
                retired.pop(seq, None)
                if not inflight:
                    last_progress = time.monotonic()
                self._write(P.encode_frame(P.INFER_REQ, seq, payload(i)))
                inflight[seq] = i
                active[i] += 1
                in_bytes += req_len
            if not inflight:
                break
            events, now, last_rx = self._receive(parser, 0.01, last_rx)
            for ev in events:
                if isinstance(ev, P.ParseError):
                    self.counts[f"host {P.ERROR_NAMES[ev.code]}"] += 1
                    continue
                last_progress = now
                if ev.type == P.INFER_RSP:
                    if ev.seq in inflight:
                        for seq in list(inflight):  # replies come in order: earlier ones are lost
                            if seq == ev.seq:
                                break
                            retire(seq, "lost")
                        i = inflight.pop(ev.seq)
                        in_bytes -= req_len
                        active[i] -= 1
                    elif ev.seq in retired:
                        i = retired.pop(ev.seq)
                    else:
                        self.counts["stale replies"] += 1
                        continue
                    try:
                        r = P.InferResult.unpack(ev.payload)
                        if len(r.output) != info.output.nbytes:
                            raise ValueError("output size")
                    except ValueError:
                        requeue(i, "malformed reply")
                        continue
                    if accept(i, r):
                        self.images += 1
                        self.max_latency_s = max(self.max_latency_s or 0.0, r.micros / 1e6)
                    else:
                        self.counts["duplicate replies"] += 1
                elif ev.type == P.ERROR:
                    code, _ = P.unpack_error(ev.payload)
                    name = P.ERROR_NAMES.get(code, f"error {code}")
                    self.counts[f"device {name}"] += 1
                    if code == P.ERR_NOT_READY:
                        raise LinkError(f"{self.label}: the board says it is not ready")
                    if ev.seq in inflight:
                        retire(ev.seq, name)
                elif ev.type == P.READY:
                    self.counts["reboots"] += 1
                    if len(ev.payload) >= 6:
                        crc = int.from_bytes(ev.payload[2:6], "little")
                        if crc != info.model_crc32:
                            raise LinkError(f"{self.label} rebooted with another model (CRC32 {crc:08x})")
                    for seq in list(inflight):
                        retire(seq, "reboot")
            if inflight and now - last_progress > self._reply_timeout(in_bytes):
                self.counts["timeouts"] += 1
                last_progress = now
                for seq in list(inflight):
                    retire(seq, "time-out")
        self.seconds = time.monotonic() - t_start

    def _reply_timeout(self, in_bytes: int) -> float:
        """Quiet time after which what is in flight is given up: the floor, the time the
        link needs for what is queued, and twice the slowest inference seen (a slow
        model is not a lost request). Before any reply the floor is at least 5 s."""
        floor = self.s.timeout if self.max_latency_s is not None else max(self.s.timeout, 5.0)
        return floor + in_bytes * 10 / self.s.baud + 2 * (self.max_latency_s or 0.0)

    def link_rate(self) -> float:
        """Images/s the link allows: a UART is full duplex, so the longer of request and
        reply (framing included) at baud/10 bytes a second. Unbounded on an unpaced link."""
        if not self.paced:
            return float("inf")
        req = P.OVERHEAD + self.info.input.nbytes
        rsp = P.OVERHEAD + P.INFER_RSP_HEAD.size + self.info.output.nbytes
        return self.s.baud / 10 / max(req, rsp)



def one_line(e) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__
