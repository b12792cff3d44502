"""The virtual board: the firmware's own C core (built for this host) with TFLite-Micro's
host runtime behind engine.h, over a real pseudo-terminal; its replies, errors and status
are the C's. The link emulation in front of it is tests/test_linkemu.py's."""
import time
from contextlib import contextmanager

import numpy as np
import pytest
import serial
from esptiny.devices import hostrt, sim
from esptiny.errors import UserError
from esptiny.link import protocol as P
from esptiny.model import tflite, tflm
from needs import require


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    require("gcc")
    require("make")
    return tmp_path_factory.mktemp("sim-build")


@pytest.fixture(scope="module")
def model_path(tiny_run):
    return tiny_run.variant_path("int8")


@pytest.fixture(scope="module")
def model(model_path):
    return model_path.read_bytes()


@pytest.fixture(scope="module")
def images(tiny_run, model):
    d_in, _ = tflite.io_details(model)
    return tflite.to_input(tiny_run.dataset().x_test[:24], d_in)


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

    def boot(self):
        """The READY an open brings. The board boots when the host connects and again on
        the input flush pyserial does on open (a dev board's auto-reset), so a loaded
        machine may show both: wait, then take every READY there is."""
        got = self.events(1)
        time.sleep(0.3)
        got += self.parser.feed(self.ser.read(4096))
        assert got and all((e.type, e.seq) == (P.READY, 0) for e in got), got
        return got[-1]

    def close(self):
        self.ser.close()


@contextmanager
def booted(model_path, build, **options):
    """A virtual board, opened, its READY read; yields (Host, READY)."""
    with sim.start(model_path, sim.SimOptions(**options), build) as url:
        h = Host(url)
        try:
            yield h, h.boot()
        finally:
            h.close()


def _frames(events):
    return [(e.type, e.seq) for e in events if isinstance(e, P.Frame)]


def test_the_core_is_built_once(build):
    so = hostrt.build(build)
    mtime = so.stat().st_mtime_ns
    assert hostrt.build(build) == so and so.stat().st_mtime_ns == mtime  # same sources: no rebuild
    lib = hostrt.load(so)  # the C's struct layout is what Python mirrors (asserted in load)
    assert lib.espt_hostrt_info_size() == 68 + P.INFO_STR_MAX + 1


def test_info_describes_the_model(model_path, model, build):
    with booted(model_path, build, chip="esp32c3", rx_buffer_bytes=2048) as (h, ready):
        assert (ready.type, ready.seq, ready.payload) == (P.READY, 0, P.pack_ready(0, P.crc32(model)))
        h.send(P.INFO_REQ, 1)
        (rsp,) = h.events(1)
    i = P.Info.unpack(rsp.payload)
    d_in, d_out = tflite.io_details(model)
    assert (i.status, i.engine, i.protocol_version, i.detail, i.pieces) == (0, 0, 2, "", True)
    assert i.model_crc32 == P.crc32(model) and i.model_bytes == len(model)
    assert (i.chip, i.cpu_mhz, i.rx_buffer_bytes, i.max_payload) == ("virtual-esp32c3", 160, 2048, 4096)
    assert i.firmware_version == "esptiny-fw 0.1.0"  # the C core's, firmware/core/device.h
    assert i.input.shape == tuple(d_in["shape"]) and i.input.dtype == P.DTYPE_CODES["int8"]
    assert i.output.shape == tuple(d_out["shape"]) and i.output.nbytes == int(np.prod(d_out["shape"]))
    assert np.float32(i.input.scale) == np.float32(d_in["quantization"][0])
    assert i.input.zero_point == d_in["quantization"][1]
    used = tflm.arena_bytes(model)["total"]
    assert i.arena_used_bytes == used and i.arena_bytes == -(-used // 1024) * 1024 + 1024


def test_replies_are_the_firmwares(model_path, model, build, images):
    x = images[:3]
    corrupt = bytearray(P.encode_frame(P.PING_REQ, 40, b"hello"))
    corrupt[9] ^= 0xFF
    with booted(model_path, build) as (h, _):
        stream = (P.encode_frame(P.INFO_REQ, 1) + P.encode_frame(P.PING_REQ, 2, b"abc")
                  + b"".join(P.encode_frame(P.INFER_REQ, 10 + k, x[k].tobytes()) for k in range(3))
                  + P.encode_frame(0x42, 30) + P.encode_frame(P.INFER_REQ, 31, b"\x00" * 5)
                  + bytes(corrupt) + P.encode_frame(P.PING_REQ, 41, b"z"))
        h.ser.write(stream)
        r = h.events(9)
    assert _frames(r) == [
        (P.INFO_RSP, 1), (P.PONG, 2), (P.INFER_RSP, 10), (P.INFER_RSP, 11), (P.INFER_RSP, 12),
        (P.ERROR, 30), (P.ERROR, 31), (P.ERROR, 40), (P.PONG, 41)]
    assert r[1].payload == b"abc" and r[8].payload == b"z"
    want = tflm.run(model, x)
    for k in range(3):
        res = P.InferResult.unpack(r[2 + k].payload)
        assert np.array_equal(np.frombuffer(res.output, np.int8).reshape(want[k].shape), want[k])
        assert res.micros > 0 and res.cycles == 0  # host time only: no cycle counter
    assert P.unpack_error(r[5].payload) == (P.ERR_UNKNOWN_TYPE, "unknown type 0x42")
    assert P.unpack_error(r[6].payload) == (P.ERR_BAD_LENGTH, "INFER_REQ of 5 bytes, input takes 784")
    assert P.unpack_error(r[7].payload) == (P.ERR_CRC, "crc")


def test_arena_too_small_is_reported_not_fatal(model_path, build, images):
    with booted(model_path, build, arena_bytes=2048) as (h, ready):
        assert ready.payload[1] == P.STATUS_ARENA_TOO_SMALL
        h.send(P.INFER_REQ, 5, images[0].tobytes())
        h.send(P.INFO_REQ, 6)
        err, info = h.events(2)
    assert (err.type, err.seq) == (P.ERROR, 5)
    assert P.unpack_error(err.payload) == (P.ERR_NOT_READY, "not ready: arena too small")
    i = P.Info.unpack(info.payload)
    assert (i.status, i.arena_bytes, i.arena_used_bytes) == (1, 2048, 0)
    assert i.detail.startswith("TFLite-Micro could not allocate in 2048 B")


def test_invalid_model_is_reported(tmp_path, build):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x18\x00\x00\x00TFL3" + b"\x00" * 64)
    with booted(bad, build) as (h, ready):
        assert ready.payload[1] == P.STATUS_MODEL_INVALID
        h.send(P.INFER_REQ, 1, b"\x00")
        (err,) = h.events(1)
    assert P.unpack_error(err.payload) == (P.ERR_NOT_READY, "not ready: model invalid")


def test_every_open_boots_it(model_path, model, build, images):
    with sim.start(model_path, sim.SimOptions(), build) as url:
        for _ in range(2):
            h = Host(url)
            h.boot()
            for k in range(len(images)):
                h.send(P.INFER_REQ, 100 + k, images[k].tobytes())
            ev = h.events(len(images))
            assert _frames(ev) == [(P.INFER_RSP, 100 + k) for k in range(len(images))]
            outs = np.stack([np.frombuffer(P.InferResult.unpack(e.payload).output, np.int8) for e in ev])
            assert np.array_equal(outs, tflm.run(model, images).reshape(len(images), -1))
            h.close()


def test_truncated_frame_times_out_with_its_seq(model_path, build):
    with booted(model_path, build) as (h, _):
        h.ser.write(P.encode_frame(P.PING_REQ, 77, b"x" * 20)[:15])
        t0 = time.monotonic()
        (err,) = h.events(1, within=2)
        assert 0.15 < time.monotonic() - t0 < 1.5  # the C's 200 ms frame time-out
    assert (err.type, err.seq) == (P.ERROR, 77)
    assert P.unpack_error(err.payload)[0] == P.ERR_TRUNCATED


def test_bad_options_are_one_line_errors():
    for bad in ({"chip": "esp8266"}, {"rx_buffer_bytes": 10}, {"arena_bytes": 0}):
        with pytest.raises(UserError):
            sim.SimOptions(**bad).check()
