"""The virtual board: the firmware's replies from TFLite-Micro's host runtime, over real
pseudo-terminals and sockets, with its link emulation (pacing, faults, reboots)."""
import os
import threading
import time
from contextlib import contextmanager

import numpy as np
import pytest
import serial
from esptiny.devices import sim
from esptiny.link import protocol as P
from esptiny.model import tflite, tflm


@pytest.fixture(scope="module")
def model(tiny_run):
    return tiny_run.variant_path("int8").read_bytes()


@pytest.fixture(scope="module")
def images(tiny_run, model):
    d_in, _ = tflite.io_details(model)
    return tflite.to_input(tiny_run.dataset().x_test[:24], d_in)


@contextmanager
def board(model, **options):
    """A virtual board served from a thread; yields (url, Board)."""
    b = sim.Board(model, sim.SimOptions(**options))
    t = sim.SocketTransport(options["listen"]) if options.get("listen") else sim.PtyTransport()
    th = threading.Thread(target=b.serve, args=(t,), daemon=True)
    th.start()
    try:
        yield t.url, b
    finally:
        b.stop()
        th.join(10)
        assert not th.is_alive()


class Host:
    """A minimal host: pyserial, the protocol parser, events with a deadline."""

    def __init__(self, url):
        self.ser = serial.serial_for_url(url, 921600, timeout=0.02)
        self.parser = P.Parser(P.DEFAULT_MAX_PAYLOAD)

    def send(self, ftype, seq, payload=b""):
        self.ser.write(P.encode_frame(ftype, seq, payload))

    def events(self, n, within=5.0):
        got, end = [], time.monotonic() + within
        while len(got) < n and time.monotonic() < end:
            got += self.parser.feed(self.ser.read(4096))
        return got

    def close(self):
        self.ser.close()


def _frames(events):
    return [(e.type, e.seq) for e in events if isinstance(e, P.Frame)]


def _replies(device, stream: bytes):
    return [P.Parser().feed(device.reply(ev))[0] for ev in device.parser.feed(stream)]


# ---- the device, without a link -----------------------------------------------------

def test_info_describes_the_model(model):
    d = sim.Device(model, sim.SimOptions(chip="esp32c3", rx_buffer_bytes=2048))
    i = d.info
    d_in, d_out = tflite.io_details(model)
    assert (i.status, i.engine, i.protocol_version, i.pieces) == (0, 0, 2, False)  # no pieces yet
    assert i.model_crc32 == P.crc32(model) and i.model_bytes == len(model)
    assert (i.chip, i.cpu_mhz, i.rx_buffer_bytes, i.max_payload) == ("virtual-esp32c3", 160, 2048, 4096)
    assert i.input.shape == tuple(d_in["shape"]) and i.input.dtype == P.DTYPE_CODES["int8"]
    assert i.output.shape == tuple(d_out["shape"]) and i.output.nbytes == int(np.prod(d_out["shape"]))
    assert np.float32(i.input.scale) == np.float32(d_in["quantization"][0])
    assert i.input.zero_point == d_in["quantization"][1]
    used = tflm.arena_bytes(model)["total"]
    assert i.arena_used_bytes == used and i.arena_bytes == -(-used // 1024) * 1024 + 1024


def test_replies_follow_the_firmware(model, images):
    d = sim.Device(model, sim.SimOptions())
    x = images[:3]
    good = b"".join(P.encode_frame(P.INFER_REQ, 10 + k, x[k].tobytes()) for k in range(3))
    corrupt = bytearray(P.encode_frame(P.PING_REQ, 40, b"hello"))
    corrupt[9] ^= 0xFF
    stream = (P.encode_frame(P.INFO_REQ, 1) + P.encode_frame(P.PING_REQ, 2, b"abc") + good
              + P.encode_frame(0x42, 30) + P.encode_frame(P.INFER_REQ, 31, b"\x00" * 5)
              + bytes(corrupt) + P.encode_frame(P.PING_REQ, 41, b"z"))
    r = _replies(d, stream)
    assert [(f.type, f.seq) for f in r] == [
        (P.INFO_RSP, 1), (P.PONG, 2), (P.INFER_RSP, 10), (P.INFER_RSP, 11), (P.INFER_RSP, 12),
        (P.ERROR, 30), (P.ERROR, 31), (P.ERROR, 40), (P.PONG, 41)]
    assert r[1].payload == b"abc" and r[8].payload == b"z"
    want = tflm.run(model, x)
    for k in range(3):
        res = P.InferResult.unpack(r[2 + k].payload)
        assert np.array_equal(np.frombuffer(res.output, np.int8).reshape(want[k].shape), want[k])
        assert res.micros > 0 and res.cycles >= res.micros * 240 - 240
    assert P.unpack_error(r[5].payload) == (P.ERR_UNKNOWN_TYPE, "unknown type 0x42")
    assert P.unpack_error(r[6].payload) == (P.ERR_BAD_LENGTH, "INFER_REQ of 5 bytes, input takes 784")
    assert P.unpack_error(r[7].payload) == (P.ERR_CRC, "crc")


def test_arena_too_small_is_reported_not_fatal(model, images):
    d = sim.Device(model, sim.SimOptions(arena_bytes=2048))
    assert (d.info.status, d.info.arena_bytes, d.info.arena_used_bytes) == (1, 2048, 0)
    (r,) = _replies(d, P.encode_frame(P.INFER_REQ, 5, images[0].tobytes()))
    assert (r.type, r.seq) == (P.ERROR, 5)
    assert P.unpack_error(r.payload) == (P.ERR_NOT_READY, "not ready: arena too small")
    (info,) = _replies(d, P.encode_frame(P.INFO_REQ, 6))
    assert P.Info.unpack(info.payload).status == 1


def test_invalid_model_is_reported():
    d = sim.Device(b"\x18\x00\x00\x00TFL3" + b"\x00" * 64, sim.SimOptions())
    assert d.info.status == 2
    assert P.unpack_error(_replies(d, P.encode_frame(P.INFER_REQ, 1, b"\x00"))[0].payload)[0] == P.ERR_NOT_READY


def test_faults_are_seeded_and_per_byte():
    data = bytes(range(256)) * 400
    opts = sim.SimOptions(drop_rate=0.01, corrupt_rate=0.01, seed=7)
    a, b = sim.Faults(opts), sim.Faults(opts)
    out = a.apply(data, "rx")
    assert out == b.apply(data, "rx")
    assert 800 < a.dropped < 1250 and 800 < a.corrupted < 1250  # 1% of 102,400 bytes
    assert len(out) == len(data) - a.dropped
    assert sim.Faults(sim.SimOptions(drop_rate=0.5, fault_on="tx")).apply(data, "rx") == data


# ---- over a pseudo-terminal ----------------------------------------------------------

def test_pty_boots_on_open_and_serves_a_pipeline(model, images):
    with board(model) as (url, _):
        assert url.startswith("/dev/")
        for _ in range(2):  # every open is a reset: boot text, then READY
            h = Host(url)
            (ready,) = h.events(1)
            assert (ready.type, ready.seq) == (P.READY, 0)
            assert ready.payload == P.pack_ready(0, P.crc32(model))
            assert h.parser.noise_bytes > 40  # the boot text was skipped
            h.send(P.INFO_REQ, 1)
            for k in range(len(images)):
                h.send(P.INFER_REQ, 100 + k, images[k].tobytes())
            ev = h.events(1 + len(images))
            assert _frames(ev) == [(P.INFO_RSP, 1)] + [(P.INFER_RSP, 100 + k) for k in range(len(images))]
            outs = np.stack([np.frombuffer(P.InferResult.unpack(e.payload).output, np.int8) for e in ev[1:]])
            assert np.array_equal(outs, tflm.run(model, images).reshape(len(images), -1))
            h.close()


def test_input_flush_is_a_reset(model):
    """pyserial flushes its input on open: if the board booted in between, it boots again
    (a dev board's auto-reset), so its boot text and READY are not lost."""
    import termios
    with board(model) as (url, b):
        fd = os.open(url, os.O_RDWR | os.O_NOCTTY)
        try:
            time.sleep(0.05)  # the board has booted and printed its ROM text ...
            termios.tcflush(fd, termios.TCIFLUSH)  # ... which the host throws away
            time.sleep(0.4)
            parser = P.Parser()
            assert _frames(parser.feed(os.read(fd, 4096))) == [(P.READY, 0)]
            assert parser.noise_bytes > 40 and b.reboots == 2
        finally:
            os.close(fd)


def test_truncated_frame_times_out_with_its_seq(model):
    with board(model) as (url, _):
        h = Host(url)
        h.events(1)
        h.ser.write(P.encode_frame(P.PING_REQ, 77, b"x" * 20)[:15])
        t0 = time.monotonic()
        (err,) = h.events(1, within=2)
        assert 0.15 < time.monotonic() - t0 < 1.5
        assert (err.type, err.seq) == (P.ERROR, 77)
        assert P.unpack_error(err.payload)[0] == P.ERR_TRUNCATED
        h.close()


def test_baud_paces_both_directions(model, images):
    baud, n = 115200, 8
    with board(model, baud=baud) as (url, _):
        h = Host(url)
        h.events(1)
        t0 = time.monotonic()
        for k in range(n):
            h.send(P.INFER_REQ, k + 1, images[k].tobytes())
        ev = h.events(n, within=10)
        elapsed = time.monotonic() - t0
        wire = n * (P.OVERHEAD + 784) * 10 / baud  # 0.55 s
        assert len(ev) == n and wire * 0.97 < elapsed < wire + 1.5
        h.close()


def test_reset_after_reboots_and_loses_the_request(model):
    with board(model, reset_after=(3,), boot_ms=150) as (url, b):
        h = Host(url)
        h.events(1)
        for seq in (1, 2, 3, 4):
            h.send(P.PING_REQ, seq, b"p")
        ev = h.events(3, within=3)
        assert _frames(ev) == [(P.PONG, 1), (P.PONG, 2), (P.READY, 0)]  # 3 lost, 4 sent during boot
        h.send(P.PING_REQ, 5, b"q")
        assert _frames(h.events(1)) == [(P.PONG, 5)]
        assert b.reboots == 2 and b.requests == 4  # power-on and brown-out; 4 arrived while booting
        h.close()


def test_hang_after_stops_answering_until_reopened(model):
    with board(model, hang_after=2) as (url, _):
        h = Host(url)
        h.events(1)
        for seq in (1, 2, 3):
            h.send(P.PING_REQ, seq, b"p")
        assert _frames(h.events(3, within=1.0)) == [(P.PONG, 1), (P.PONG, 2)]
        h.close()
        h = Host(url)
        assert _frames(h.events(1)) == [(P.READY, 0)]
        h.send(P.PING_REQ, 4, b"p")
        assert _frames(h.events(1)) == [(P.PONG, 4)]
        h.close()


def test_socket_listener(model):
    with board(model, listen="socket://127.0.0.1:0") as (url, _):
        assert url.startswith("socket://127.0.0.1:") and not url.endswith(":0")
        h = Host(url)
        assert _frames(h.events(1)) == [(P.READY, 0)]
        h.send(P.PING_REQ, 9, b"abc")
        assert _frames(h.events(1)) == [(P.PONG, 9)]
        h.close()


def test_bad_options_are_one_line_errors(model):
    from esptiny.errors import UserError
    for bad in ({"chip": "esp8266"}, {"drop_rate": 1.5}, {"fault_on": "up"}, {"reset_after": (0,)}):
        with pytest.raises(UserError):
            sim.SimOptions(**bad).check()
