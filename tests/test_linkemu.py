"""The link emulation layer (devices/linkemu.py) in front of the virtual board and the
native firmware: pacing, seeded faults on each side, reboots, hangs, boot noise, each
with exact counts; and how `--device-option` reaches it."""
import time

import numpy as np
import pytest
from esptiny.devices import linkemu, native, ports, sim
from esptiny.errors import UserError
from esptiny.link import protocol as P
from needs import require
from test_sim import Host, _frames

PING = 20  # payload bytes of each ping
PING_FRAME = P.OVERHEAD + PING


@pytest.fixture(scope="module")
def model_path(tiny_run):
    return tiny_run.variant_path("int8")


@pytest.fixture(scope="module")
def starts(model_path, tmp_path_factory):
    """How to start each device: the virtual board ("reopen") and the native firmware
    ("restart"), both built once."""
    require("gcc")
    require("make")
    build = tmp_path_factory.mktemp("linkemu-build")
    exe = native.build(model_path.read_bytes(), build / "native")
    return {"sim": (lambda: sim.start(model_path, sim.SimOptions(), build / "sim"), "reopen"),
            "native": (lambda: native.serve(exe), "restart")}


DEVICES = ("sim", "native")


def _front(starts, device, **options):
    start, reboot = starts[device]
    return linkemu.front(start, linkemu.LinkOptions(**options), reboot)


def _pings(h, seqs, within=5.0):
    for s in seqs:
        h.send(P.PING_REQ, s, bytes([s % 256]) * PING)
    return h.events(len(seqs), within)


def test_faults_are_seeded_and_per_byte():
    data = bytes(range(256)) * 400
    opts = linkemu.LinkOptions(drop_rate=0.01, corrupt_rate=0.01, seed=7)
    a, b = linkemu.Faults(opts), linkemu.Faults(opts)
    out = a.apply(data, "rx")
    assert out == b.apply(data, "rx")
    assert 800 < a.dropped < 1250 and 800 < a.corrupted < 1250  # 1% of 102,400 bytes
    assert len(out) == len(data) - a.dropped
    assert len(set(a.hits["rx"])) == len(a.hits["rx"]) <= a.dropped + a.corrupted
    assert linkemu.Faults(linkemu.LinkOptions(drop_rate=0.5, fault_on="tx")).apply(data, "rx") == data


@pytest.mark.parametrize("device", DEVICES)
def test_boot_text_then_ready_on_every_open(starts, device):
    with _front(starts, device) as (url, link):
        for k in range(2):
            h = Host(url)
            (ready,) = h.events(1)
            assert (ready.type, ready.seq) == (P.READY, 0) and ready.payload[1] == P.STATUS_READY
            assert h.parser.noise_bytes > 40  # the boot text was skipped
            assert _frames(_pings(h, [1, 2])) == [(P.PONG, 1), (P.PONG, 2)]
            h.close()
            time.sleep(0.1)
            assert link.reboots == k + 1


@pytest.mark.parametrize("device", DEVICES)
def test_reset_after_reboots_the_device_and_loses_the_request(starts, device):
    with _front(starts, device, reset_after=(3,), boot_ms=150) as (url, link):
        h = Host(url)
        h.events(1)
        ev = _pings(h, [1, 2, 3, 4], within=3)
        assert _frames(ev) == [(P.PONG, 1), (P.PONG, 2), (P.READY, 0)]  # 3 lost, 4 sent during boot
        assert _frames(_pings(h, [5])) == [(P.PONG, 5)]  # the rebooted C core answers
        assert (link.reboots, link.requests) == (2, 4)  # power-on and brown-out; 4 was lost
        h.close()


@pytest.mark.parametrize("device", DEVICES)
def test_hang_after_stops_answering_until_reopened(starts, device):
    with _front(starts, device, hang_after=2) as (url, link):
        h = Host(url)
        h.events(1)
        assert _frames(_pings(h, [1, 2, 3], within=1.0)) == [(P.PONG, 1), (P.PONG, 2)]
        assert link.hangs == 1
        h.close()
        h = Host(url)
        assert _frames(h.events(1)) == [(P.READY, 0)]
        assert _frames(_pings(h, [4])) == [(P.PONG, 4)]
        assert (link.reboots, link.requests, link.hangs) == (2, 4, 1)
        h.close()


def _pong_stream(seqs) -> bytes:
    return b"".join(P.encode_frame(P.PONG, s, bytes([s % 256]) * PING) for s in seqs)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", ("drop_rate", "corrupt_rate"))
def test_tx_faults_hit_exactly_the_bytes_counted(starts, device, kind):
    """The device's 60 replies leave it whole; the host gets them with exactly the bytes
    the layer dropped missing, or exactly as many bytes changed as it corrupted."""
    seqs = list(range(1, 61))
    with _front(starts, device, fault_on="tx", seed=5, **{kind: 0.01}) as (url, link):
        h = Host(url)
        h.events(1)
        for s in seqs:
            h.send(P.PING_REQ, s, bytes([s % 256]) * PING)
        got, end = bytearray(), time.monotonic() + 3
        while time.monotonic() < end and len(got) < len(seqs) * PING_FRAME:
            got += h.ser.read(4096)
        got += h.ser.read(4096)
        h.close()
    want = _pong_stream(seqs)
    f = link.faults
    assert f.offset["tx"] == len(want) and f.offset["rx"] == len(seqs) * PING_FRAME
    if kind == "drop_rate":
        assert f.dropped > 0 and f.corrupted == 0 and len(got) == len(want) - f.dropped
        assert bytes(got) == bytes(b for i, b in enumerate(want) if i not in set(f.hits["tx"]))
    else:
        assert f.corrupted > 0 and len(got) == len(want)
        diff = np.flatnonzero(np.frombuffer(bytes(got), np.uint8) != np.frombuffer(want, np.uint8))
        assert diff.tolist() == f.hits["tx"]


@pytest.mark.parametrize("device", DEVICES)
def test_rx_faults_lose_exactly_the_requests_they_hit(starts, device):
    """Each request the layer damaged on its way in gets no PONG from the C core; every
    other one gets exactly one, in order."""
    seqs = list(range(1, 81))
    with _front(starts, device, fault_on="rx", corrupt_rate=0.004, drop_rate=0.004, seed=11) as (url, link):
        h = Host(url)
        h.events(1)
        ev = []
        for s in seqs:  # one at a time, so each damaged frame is the C's alone to reject
            h.send(P.PING_REQ, s, bytes([s % 256]) * PING)
            ev += h.events(1, within=0.4)
        ev += h.events(100, within=0.5)
        h.close()
    hit = {seqs[o // PING_FRAME] for o in link.faults.hits["rx"]}
    assert 3 <= len(hit) <= 40
    pongs = [e.seq for e in ev if isinstance(e, P.Frame) and e.type == P.PONG]
    assert pongs == [s for s in seqs if s not in hit]
    assert link.requests == len(pongs)  # a damaged frame is no request (its CRC fails)


@pytest.mark.parametrize("device", DEVICES)
def test_baud_paces_both_directions(starts, device):
    baud, n, size = 115200, 8, 2000
    with _front(starts, device, baud=baud) as (url, _):
        h = Host(url)
        h.events(1)
        t0 = time.monotonic()
        for k in range(n):
            h.send(P.PING_REQ, k + 1, b"p" * size)
        ev = h.events(n, within=10)
        elapsed = time.monotonic() - t0
        wire = 2 * n * (P.OVERHEAD + size) * 10 / baud  # 2.8 s: request and reply each way
        # full duplex: replies overlap the requests that follow; only the last one does not
        assert len(ev) == n and wire / 2 < elapsed < wire / 2 + (P.OVERHEAD + size) * 10 / baud + 1.0
        h.close()


def test_socket_listener(starts):
    with _front(starts, "sim", listen="socket://127.0.0.1:0") as (url, _):
        assert url.startswith("socket://127.0.0.1:") and not url.endswith(":0")
        h = Host(url)
        assert _frames(h.events(1)) == [(P.READY, 0)]
        assert _frames(_pings(h, [9])) == [(P.PONG, 9)]
        h.close()


def test_bad_options_are_one_line_errors():
    for bad in ({"drop_rate": 1.5}, {"fault_on": "up"}, {"reset_after": (0,)}, {"baud": -1}):
        with pytest.raises(UserError):
            linkemu.LinkOptions(**bad).check()


def test_device_options_are_checked_by_name_and_type():
    assert ports.check_options("native", {"corrupt_rate": "5e-4", "reset_after": "3000,6000",
                                          "hang_after": "8000", "boot_text": "off"}) == \
        {"corrupt_rate": 5e-4, "reset_after": (3000, 6000), "hang_after": 8000, "boot_text": False}
    assert ports.check_options("sim", {"arena_bytes": "2048"}) == {"arena_bytes": 2048}
    with pytest.raises(UserError, match=r"unknown option 'arena_bytes' for --port native; it takes baud"):
        ports.check_options("native", {"arena_bytes": "2048"})
    with pytest.raises(UserError, match=r"device option drop_rate=lots: a number expected"):
        ports.check_options("qemu-rv32", {"drop_rate": "lots"})
    with pytest.raises(UserError, match=r"--device-option applies to a device esptiny starts"):
        ports.check_options("/dev/ttyUSB0", {"baud": "9600"})
    assert ports.link_paced("native", {"baud": 921600}) and not ports.link_paced("native", {})
