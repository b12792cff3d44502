"""Tensors in pieces (docs/protocol.md): the transfer vectors, replayed by the host's codec
against the firmware's own C (the native firmware with the test engine, out[i] = sum(in)
+ i), and a differential test: random runs of pieces, duplicates, gaps and output requests
sent to the C device and to the rules as docs/protocol.md writes them (a model here), reply
for reply."""
import os
import select
import subprocess
import time

import pytest
from esptiny.link import protocol as P
from esptiny.paths import DOCS, FIRMWARE
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from needs import require

IN_BYTES, OUT_BYTES = 16, 10  # the test engine's default tensors


def _transfers():
    out = []
    for line in (DOCS / "protocol-vectors.txt").read_text().splitlines():
        if line.startswith("transfer "):
            _, name, steps = line.split()
            out.append(pytest.param(steps, id=name))
    assert len(out) >= 10
    return out


@pytest.fixture(scope="module")
def firmware(tmp_path_factory):
    for tool in ("gcc", "make"):
        require(tool)
    exe = tmp_path_factory.mktemp("fw") / "firmware-native-test"
    r = subprocess.run(["make", "-s", "-C", str(FIRMWARE), "native", f"OUT={exe}"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return exe


class Device:
    """firmware-native --stdio: requests in, replies out, one at a time."""

    def __init__(self, exe):
        self.proc = subprocess.Popen([str(exe), "--stdio"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.parser = P.Parser(P.DEFAULT_MAX_PAYLOAD)
        self.pending = []
        assert self.reply().type == P.READY

    def reply(self, timeout=5.0) -> P.Frame:
        deadline = time.monotonic() + timeout
        while not self.pending:
            left = deadline - time.monotonic()
            assert left > 0, "the device did not answer"
            if select.select([self.proc.stdout], [], [], left)[0]:
                data = os.read(self.proc.stdout.fileno(), 65536)
                assert data, "the device closed its output"
                self.pending += self.parser.feed(data)
        ev = self.pending.pop(0)
        assert isinstance(ev, P.Frame), ev
        return ev

    def ask(self, ftype, seq, payload) -> P.Frame:
        self.proc.stdin.write(P.encode_frame(ftype, seq, payload))
        self.proc.stdin.flush()
        return self.reply()

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=5)


@pytest.fixture
def device(firmware):
    d = Device(firmware)
    yield d
    d.close()


def _image_bytes(offset, n) -> bytes:
    return bytes(0x10 + k if k < IN_BYTES else 0 for k in range(offset, offset + n))


def _spelled(ev: P.Frame) -> str:
    """A reply in the vectors' syntax, decoded by the host's codec."""
    if ev.type == P.INPUT_ACK:
        tag, have = P.unpack_input_ack(ev.payload)
        return f"A:{ev.seq}:{tag}:{have}"
    if ev.type == P.INFER_RSP:
        return f"R:{ev.seq}:{P.InferResult.unpack(ev.payload).output.hex()}"
    if ev.type == P.OUTPUT_PART:
        tag, offset, data = P.unpack_output_part(ev.payload)
        return f"D:{ev.seq}:{tag}:{offset}:{data.hex()}"
    if ev.type == P.ERROR:
        return f"E:{ev.seq}:{P.unpack_error(ev.payload)[0]}"
    return f"?:{ev.type:02x}:{ev.seq}"


def _request(spec: str):
    kind, *f = spec.split(":")
    f = [int(v) for v in f]
    if kind == "I":
        return P.INFER_REQ, f[0], _image_bytes(0, IN_BYTES)
    seq, tag, offset, n = f
    if kind == "P":
        return P.INPUT_PART, seq, P.pack_input_part(tag, offset, _image_bytes(offset, n))
    return P.OUTPUT_REQ, seq, P.pack_output_req(tag, offset, n)


@pytest.mark.parametrize("steps", _transfers())
def test_transfer_vector_on_the_firmware(device, steps):
    for step in steps.split(";"):
        request, want = step.split(">")
        assert _spelled(device.ask(*_request(request))) == want, request


# ---- differential: the C device against the rules as written ---------------------------

class Rules:
    """docs/protocol.md, "Tensors in pieces", for a ready test engine."""

    def __init__(self):
        self.open, self.tag, self.have = False, 0, 0
        self.out_tag = None  # None: no valid output
        self.input = bytearray(IN_BYTES)

    def output(self) -> bytes:
        s = sum(self.input)
        return bytes((s + i) % 256 for i in range(OUT_BYTES))

    def reply(self, ftype, seq, payload) -> str:
        if ftype == P.INFER_REQ:
            self.open, self.input[:] = False, payload
            return self._infer(seq)
        if ftype == P.OUTPUT_REQ:
            tag, offset, n = P.OUTPUT_REQ_FMT.unpack(payload)
            if self.out_tag is None or tag != self.out_tag:
                return f"E:{seq}:{P.ERR_NO_OUTPUT}"
            if n == 0 or offset + n > OUT_BYTES:
                return f"E:{seq}:{P.ERR_BAD_LENGTH}"
            return f"D:{seq}:{tag}:{offset}:{self.output()[offset:offset + n].hex()}"
        tag, offset = P.PIECE_HEAD.unpack_from(payload)
        data = payload[P.PIECE_HEAD_BYTES:]
        if not data or offset + len(data) > IN_BYTES:
            return f"E:{seq}:{P.ERR_BAD_LENGTH}"
        if offset == 0:
            self.open, self.tag, self.have = True, tag, 0
        if not self.open or tag != self.tag:
            return f"A:{seq}:{tag}:0"
        end = offset + len(data)
        if offset > self.have or end <= self.have:
            return f"A:{seq}:{tag}:{self.have}"
        self.input[self.have:end] = data[self.have - offset:]
        self.have, self.out_tag = end, None
        if end < IN_BYTES:
            return f"A:{seq}:{tag}:{end}"
        self.open = False
        return self._infer(seq)

    def _infer(self, seq) -> str:
        self.out_tag = seq
        return f"R:{seq}:{self.output().hex()}"


_piece = st.tuples(st.just(P.INPUT_PART), st.integers(0, 3),
                   st.integers(0, IN_BYTES + 2), st.integers(0, IN_BYTES))
_outreq = st.tuples(st.just(P.OUTPUT_REQ), st.integers(0, 3),
                    st.integers(0, OUT_BYTES + 1), st.integers(0, OUT_BYTES + 1))
_whole = st.tuples(st.just(P.INFER_REQ), st.just(0), st.just(0), st.just(0))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.one_of(_piece, _piece, _outreq, _whole), min_size=1, max_size=40),
       salt=st.integers(0, 255))
def test_device_follows_the_rules(device, ops, salt):
    rules = Rules()
    device.ask(P.INFER_REQ, 1, bytes(IN_BYTES))  # a known state: no open transfer
    rules.reply(P.INFER_REQ, 1, bytes(IN_BYTES))
    for k, (ftype, tag, offset, n) in enumerate(ops, start=2):
        seq = (k % 60000) + 2
        data = bytes((salt + offset + j * 13) % 256 for j in range(n))
        if ftype == P.INPUT_PART:
            payload = P.pack_input_part(tag, offset, data)
        elif ftype == P.OUTPUT_REQ:
            # tags: the seq of a recent INFER_RSP is reachable as `seq - tag`
            payload = P.pack_output_req(max(seq - 1 - tag, 0), offset, n)
        else:
            payload = bytes((salt + j) % 256 for j in range(IN_BYTES))
        assert _spelled(device.ask(ftype, seq, payload)) == rules.reply(ftype, seq, payload), (k, ftype)
