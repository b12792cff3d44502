"""The host end of one serial link: open the port (resetting the board as esptool does),
the READY/INFO handshake, the model check, then the pipelined request stream.

It keeps as many requests in flight as the board's RX buffer holds, so a fast board is
limited by the link and a slow one by its compute. Replies are matched by seq; the device
answers in order, so a reply to a later request means every earlier one still in flight
was lost. Lost, failed or timed-out requests are resent; a READY mid-run means the board
rebooted and everything in flight is resent. A late reply to a request given up on is
still accepted, a second reply for a finished image ignored. A tensor a frame cannot
carry travels in pieces (docs/protocol.md, "Tensors in pieces"), one image at a time,
each piece resent on its own.

Retry policy: a session gives up only when the link stops making progress: no image
finished and no piece taken for `stall_timeout` seconds, the port reopened (the board
reset) whenever nothing at all came back for two reply time-outs.
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
MIN_PIECE = 64  # bytes: the smallest piece a noisy link shrinks to
GROW_AFTER = 8  # good pieces in a row before the piece size doubles again


class LinkError(Exception):
    """A session cannot go on; the run keeps its partial result."""


class Stopped(Exception):
    """Another session failed: stop this one quietly."""


@dataclass
class Settings:
    baud: int = 921600
    reset: bool = True
    retries: int | None = None  # resends per image; None: no bound (the stall decides)
    timeout: float = 2.0
    ready_timeout: float = 10.0
    stall_timeout: float = 30.0  # seconds without progress before the session gives up


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
        self.piece = None  # current INPUT_PART size (adaptive)

    # Port handling
    def open(self):
        import serial
        try:
            # pyserial's rfc2217:// refuses a write time-out on write()
            write_timeout = None if self.url.lower().startswith("rfc2217://") else 10
            ser = serial.serial_for_url(self.url, do_not_open=True, baudrate=self.s.baud,
                                        timeout=0, write_timeout=write_timeout, exclusive=True)
            ser.dtr = False  # opening must not hold the board in reset or in the bootloader
            ser.rts = False
            ser.open()
        except (serial.SerialException, ValueError, OSError) as e:
            raise UserError(f"cannot open port {self.url}: {one_line(e)}") from None
        self.ser = ser
        try:
            self.fd = ser.fileno()
        except (AttributeError, NotImplementedError, OSError, serial.SerialException):
            # (rfc2217:// raises io.UnsupportedOperation, an OSError)
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
        if not self.fits_one_frame() and not info.pieces:
            raise UserError(f"{self.label} takes tensors in one frame only (payloads up to "
                            f"{info.max_payload} bytes; input {info.input.nbytes}, output "
                            f"{info.output.nbytes}): reflash it with this esptiny's firmware")

    def fits_one_frame(self) -> bool:
        info = self.info
        return (info.input.nbytes <= info.max_payload
                and P.INFER_RSP_HEAD.size + info.output.nbytes <= info.max_payload)

    # The stream
    def stream(self, work, payload, accept, is_done, stop: threading.Event):
        """Send the images `work` hands out, pipelined; accept(i, InferResult) each reply."""
        if not self.fits_one_frame():
            return self._stream_pieces(work, payload, accept, is_done, stop)
        info = self.info
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
        watch = _Watchdog(self, t_start)

        def requeue(i, reason):
            if is_done(i) or active[i] or i in retry_q:
                return
            self.counts[f"retry: {reason}"] += 1
            self._check_tries(i, tries[i], reason)
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
                i, exhausted = _next_image(retry_q, is_done, work, exhausted)
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
                    watch.progress(now)
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
            if watch.check(now, any(isinstance(ev, P.Frame) for ev in events)):
                parser = P.Parser(parser.max_payload)  # a reopened port: what is out is lost
                for seq in list(inflight):
                    retire(seq, "reopen")
                last_progress = last_rx = time.monotonic()
        self.seconds = time.monotonic() - t_start

    def _check_tries(self, i, tries, reason):
        if self.s.retries is not None and tries > self.s.retries:
            raise LinkError(f"{self.label}: image {i} got no good reply in {tries} "
                            f"attempts (last: {reason}); raise --retries for a noisy link")

    # Tensors in pieces
    def _piece_limits(self) -> tuple:
        """(largest INPUT_PART data, largest OUTPUT_PART data): a frame's payload, and at
        least two pieces in the RX buffer so the link never waits for an ack."""
        info = self.info
        room = info.max_payload - P.PIECE_HEAD_BYTES
        half = info.rx_buffer_bytes // 2 - P.OVERHEAD - P.PIECE_HEAD_BYTES
        return max(MIN_PIECE, min(room, half)), room

    def _stream_pieces(self, work, payload, accept, is_done, stop):
        """One image at a time (the device holds one transfer), its pieces pipelined."""
        retry_q = deque()
        tries = Counter()
        t0 = time.monotonic()
        up = _Upload(self, _Watchdog(self, t0))
        exhausted = False
        while True:
            if stop.is_set():
                raise Stopped()
            i, exhausted = _next_image(retry_q, is_done, work, exhausted)
            if i is None:
                break
            tries[i] += 1
            r = up.run(i, payload(i), stop, lambda reason: self._check_tries(i, tries[i], reason))
            if accept(i, r):
                self.images += 1
                self.max_latency_s = max(self.max_latency_s or 0.0, r.micros / 1e6)
            else:
                self.counts["duplicate replies"] += 1
        self.seconds = time.monotonic() - t0

    def reopen(self):
        """Close and reopen the port (resetting the board as at the start), then the
        handshake again; the board must still carry the same model."""
        crc = self.info.model_crc32
        self.close()
        self.connect()
        if self.info.model_crc32 != crc:
            raise LinkError(f"{self.label} came back with another model (CRC32 {self.info.model_crc32:08x})")

    def _reply_timeout(self, in_bytes: int) -> float:
        """Quiet time after which what is in flight is given up: the floor, the time the
        link needs for what is queued, and twice the slowest inference seen (a slow
        model is not a lost request). Before any reply the floor is at least 5 s."""
        floor = self.s.timeout if self.max_latency_s is not None else max(self.s.timeout, 5.0)
        return floor + in_bytes * 10 / self.s.baud + 2 * (self.max_latency_s or 0.0)

    def link_rate(self) -> float:
        """Images/s the link allows: a UART is full duplex, so the longer of request and
        reply (framing included; in pieces, each piece's framing at the largest piece
        size) at baud/10 bytes a second. Unbounded on an unpaced link."""
        if not self.paced:
            return float("inf")
        n_in, n_out = self.info.input.nbytes, self.info.output.nbytes
        if self.fits_one_frame():
            req = P.OVERHEAD + n_in
            rsp = P.OVERHEAD + P.INFER_RSP_HEAD.size + n_out
        else:
            piece_in, piece_out = self._piece_limits()
            k_in = -(-n_in // piece_in)
            req = n_in + k_in * (P.OVERHEAD + P.PIECE_HEAD_BYTES)
            rsp = (k_in - 1) * (P.OVERHEAD + P.PIECE_HEAD_BYTES) + P.OVERHEAD + P.INFER_RSP_HEAD.size
            if P.INFER_RSP_HEAD.size + n_out <= self.info.max_payload:
                rsp += n_out
            else:
                k_out = -(-n_out // piece_out)
                req += k_out * (P.OVERHEAD + P.OUTPUT_REQ_BYTES)
                rsp += n_out + k_out * (P.OVERHEAD + P.PIECE_HEAD_BYTES)
        return self.s.baud / 10 / max(req, rsp)


class _Watchdog:
    """The retry policy: progress (an image finished, a piece taken) resets the clock;
    two reply time-outs with no frame at all reopen the port; `stall_timeout` seconds
    without progress end the session with one line saying so."""

    def __init__(self, sess: Session, now: float):
        self.sess = sess
        self.last_progress = self.last_frame = now
        self.reopens = 0

    def progress(self, now: float):
        self.last_progress = self.last_frame = now

    def check(self, now: float, got_frame: bool) -> bool:
        """True when the port was reopened (everything in flight is lost)."""
        sess, s = self.sess, self.sess.s
        if got_frame:
            self.last_frame = now
        if now - self.last_progress > s.stall_timeout:
            raise LinkError(f"{sess.label}: the link made no progress for {s.stall_timeout:g}s "
                            f"(no image finished, {self.reopens} port reopens, "
                            f"{sum(v for k, v in sess.counts.items() if k.startswith('retry'))} "
                            f"resends); giving up")
        if now - self.last_frame <= 2 * sess._reply_timeout(0):
            return False
        self.reopens += 1
        sess.counts["reopens"] += 1
        try:
            sess.reopen()
        except UserError as e:  # no READY this time: the stall clock keeps running
            sess.counts["failed reopens"] += 1
            if "another model" in str(e):
                raise LinkError(str(e)) from None
        self.last_frame = time.monotonic()
        return True


class _Upload:
    """One image through the device in pieces: its input (go back to the device's `have`
    on a loss), then its output, inline or pulled in pieces."""

    def __init__(self, sess: Session, watch: _Watchdog):
        self.sess, self.watch = sess, watch
        self.piece_in, self.piece_out = sess._piece_limits()
        if sess.piece is None:
            sess.piece = self.piece_in
        self.good_run = 0
        self.tag = 0
        self.parser = P.Parser(sess.info.max_payload)
        self.last_rx = time.monotonic()

    def _shrink(self):
        self.sess.piece = max(MIN_PIECE, self.sess.piece // 2)
        self.good_run = 0

    def _grow(self):
        self.good_run += 1
        if self.good_run >= GROW_AFTER:
            self.sess.piece = min(self.piece_in, self.sess.piece * 2)
            self.good_run = 0

    def run(self, i, data: bytes, stop, on_retry) -> P.InferResult:
        sess, info, counts = self.sess, self.sess.info, self.sess.counts
        n_in, n_out = info.input.nbytes, info.output.nbytes
        assert len(data) == n_in
        budget = max(info.rx_buffer_bytes, 2 * (P.OVERHEAD + P.PIECE_HEAD_BYTES + MIN_PIECE))
        inflight = OrderedDict()  # seq -> (kind, generation, offset, n)
        st = {"sent": 0, "have": 0, "gen": 0, "bytes": 0}
        out = bytearray(n_out)
        missing = {}  # output offset -> n, not yet received
        head = None   # (cycles, micros, seq) once INFER_RSP came
        last_reply = time.monotonic()

        def restart(reason):
            nonlocal head
            counts[f"retry: {reason}"] += 1
            on_retry(reason)
            self.tag = self.tag % 0xFFFF + 1
            st.update(sent=0, have=0, gen=st["gen"] + 1)
            head = None
            missing.clear()

        def failed(entry, reason, have=None):
            kind, gen, offset, n = entry
            if kind == "out":
                counts[f"retry: output {reason}"] += 1
                return
            if gen != st["gen"] or head is not None:
                return  # already gone back past it
            counts[f"retry: piece {reason}"] += 1
            st["sent"] = min(st["sent"], offset if have is None else have)
            st["gen"] += 1
            self._shrink()

        def drop(seq):
            entry = inflight.pop(seq)
            st["bytes"] -= _request_bytes(entry)
            return entry

        restart_reason = None
        self.tag = self.tag % 0xFFFF + 1
        while True:
            if stop.is_set():
                raise Stopped()
            if restart_reason:
                restart(restart_reason)
                restart_reason = None
            # fill the pipeline
            while True:
                if head is None and st["sent"] < n_in:
                    off = st["sent"]
                    n = min(sess.piece, n_in - off)
                    entry = ("in", st["gen"], off, n)
                    frame_payload = P.pack_input_part(self.tag, off, data[off:off + n])
                    ftype = P.INPUT_PART
                elif head is not None:
                    want = [o for o in missing if not any(e[0] == "out" and e[2] == o for e in inflight.values())]
                    if not want:
                        break
                    off = want[0]
                    entry = ("out", 0, off, missing[off])
                    frame_payload = P.pack_output_req(head[2], off, missing[off])
                    ftype = P.OUTPUT_REQ
                else:
                    break
                if inflight and st["bytes"] + _request_bytes(entry) > budget:
                    break
                seq = sess._next_seq(inflight)
                if not inflight:
                    last_reply = time.monotonic()
                sess._write(P.encode_frame(ftype, seq, frame_payload))
                inflight[seq] = entry
                st["bytes"] += _request_bytes(entry)
                if entry[0] == "in":
                    st["sent"] = off + entry[3]
            events, now, self.last_rx = sess._receive(self.parser, 0.01, self.last_rx)
            for ev in events:
                if isinstance(ev, P.ParseError):
                    counts[f"host {P.ERROR_NAMES[ev.code]}"] += 1
                    continue
                if ev.type == P.READY:
                    counts["reboots"] += 1
                    for seq in list(inflight):
                        drop(seq)
                    restart_reason = "reboot"
                    continue
                if ev.seq not in inflight:
                    counts["stale replies"] += 1
                    continue
                last_reply = now
                for seq in list(inflight):  # replies come in order: earlier ones are lost
                    if seq == ev.seq:
                        break
                    failed(drop(seq), "lost")
                entry = drop(ev.seq)
                kind, gen, off, n = entry
                if ev.type == P.ERROR:
                    code, _ = P.unpack_error(ev.payload)
                    name = P.ERROR_NAMES.get(code, f"error {code}")
                    counts[f"device {name}"] += 1
                    if code == P.ERR_NOT_READY:
                        raise LinkError(f"{sess.label}: the board says it is not ready")
                    if code == P.ERR_NO_OUTPUT:
                        restart_reason = "output gone"
                    else:
                        failed(entry, name)
                elif kind == "in" and ev.type == P.INPUT_ACK:
                    try:
                        tag, have = P.unpack_input_ack(ev.payload)
                    except ValueError:
                        failed(entry, "malformed reply")
                        continue
                    if tag == self.tag and have >= off + n:
                        st["have"] = max(st["have"], have)
                        self.watch.progress(now)
                        self._grow()
                    else:
                        failed(entry, "refused", have if tag == self.tag else 0)
                elif kind == "in" and ev.type == P.INFER_RSP and head is None:
                    try:
                        r = P.InferResult.unpack(ev.payload)
                    except ValueError:
                        failed(entry, "malformed reply")
                        continue
                    st["have"] = n_in
                    self.watch.progress(now)
                    self._grow()
                    if len(r.output) == n_out:
                        return r
                    if r.output:
                        failed(entry, "malformed reply")
                        continue
                    head = (r.cycles, r.micros, ev.seq)
                    missing.update((o, min(self.piece_out, n_out - o)) for o in range(0, n_out, self.piece_out))
                elif kind == "out" and ev.type == P.OUTPUT_PART and head is not None:
                    try:
                        tag, o, part = P.unpack_output_part(ev.payload)
                    except ValueError:
                        failed(entry, "malformed reply")
                        continue
                    if tag != head[2] or o != off or len(part) != n:
                        failed(entry, "malformed reply")
                        continue
                    out[o:o + n] = part
                    missing.pop(o, None)
                    self.watch.progress(now)
                    if not missing:
                        return P.InferResult(head[0], head[1], bytes(out))
                else:
                    failed(entry, "unexpected reply")
            if inflight and now - last_reply > sess._reply_timeout(st["bytes"]):
                counts["timeouts"] += 1
                for seq in list(inflight):
                    failed(drop(seq), "time-out")
                if head is None:
                    st["sent"] = min(st["sent"], st["have"])
                last_reply = now
            if self.watch.check(now, any(isinstance(ev, P.Frame) for ev in events)):
                inflight.clear()
                st["bytes"] = 0
                self.parser = P.Parser(info.max_payload)
                self.last_rx = last_reply = time.monotonic()
                restart_reason = "reopen"


def _request_bytes(entry) -> int:
    kind, _, _, n = entry
    return P.OVERHEAD + (P.PIECE_HEAD_BYTES + n if kind == "in" else P.OUTPUT_REQ_BYTES)



def one_line(e) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _next_image(retry_q, is_done, work, exhausted: bool) -> tuple:
    """The next image to send, a retry before new work: (image or None, work exhausted)."""
    i = None
    while retry_q and i is None:
        i = retry_q.popleft()
        i = None if is_done(i) else i
    if i is None and not exhausted:
        i = work()
        exhausted = i is None
    return i, exhausted
