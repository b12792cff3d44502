"""The device's parser (firmware/core/protocol.c) and the host's (host/esptiny/protocol.py)
emit exactly the same events on any stream, so the two cannot drift apart.

The C side is firmware/build/parse-events (`make -C firmware parse-events`, ASan+UBSan):
one "MAX_PAYLOAD CHUNKS" line in, one EVENTS line out, in the syntax of
docs/protocol-vectors.txt. One process serves every stream of the run (a co-process fed
line by line, so hypothesis still shrinks a mismatch to a small stream).
"""
import string
import struct
import subprocess

import pytest
from esptiny.link import protocol as P
from esptiny.paths import DOCS, FIRMWARE
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from needs import missing, require

PROGRAM = FIRMWARE / "build" / "parse-events"
C_MAX_PAYLOAD = 4096  # the program's ESPT_MAX_PAYLOAD (the default build)


@pytest.fixture(scope="module")
def program():
    for tool in ("gcc", "make"):
        require(tool)
    r = subprocess.run(["make", "-s", "-C", str(FIRMWARE), "parse-events"],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        if "asan" in r.stderr or "ubsan" in r.stderr:
            missing(f"gcc's sanitizer libraries (libasan, libubsan): {r.stderr.strip()[-300:]}")
        pytest.fail(f"make -C firmware parse-events failed:\n{r.stdout}{r.stderr}")
    return PROGRAM


class CParser:
    """build/parse-events as a co-process: one stream per line, its events back."""

    def __init__(self, path):
        self.path = path
        self.proc = None

    def events(self, max_payload: int, chunks: list) -> list:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen([str(self.path)], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         text=True)
        line = f"{max_payload} {','.join(chunks)}\n"
        try:
            self.proc.stdin.write(line)
            self.proc.stdin.flush()
            out = self.proc.stdout.readline()
        except BrokenPipeError:
            out = ""
        if not out.endswith("\n"):
            self.proc.kill()
            err = self.proc.communicate()[1]
            self.proc = None
            raise AssertionError(f"parse-events died on {line[:200]!r}:\n{err[-3000:]}")
        out = out.strip()
        return [] if out == "-" else out.split(";")

    def close(self):
        if self.proc is not None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
            assert self.proc.returncode == 0, self.proc.stderr.read()


@pytest.fixture(scope="module")
def c_parser(program):
    c = CParser(program)
    yield c
    c.close()


def _events(events) -> list:
    """Python events in the vectors' EVENTS syntax."""
    return [f"F:{e.type:02x}:{e.seq}:{len(e.payload)}" if isinstance(e, P.Frame)
            else f"E:{e.code}:{e.seq}" for e in events]


def python_events(max_payload: int, chunks: list) -> list:
    parser = P.Parser(max_payload)
    events = []
    for c in chunks:
        events += parser.timeout() if c == "T" else parser.feed(bytes.fromhex(c))
    return _events(events)


# ---- the C program against the vectors ------------------------------------------

def _stream_vectors():
    out = []
    for line in (DOCS / "protocol-vectors.txt").read_text().splitlines():
        f = line.split()
        if f and f[0] == "stream":
            out.append(f[1:])  # name, max_payload, chunks, events
    assert len(out) >= 12
    return out


def test_program_reproduces_every_stream_vector(program):
    vectors = _stream_vectors()
    r = subprocess.run([str(program)], input="".join(f"{m} {c}\n" for _, m, c, _ in vectors),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    got = r.stdout.splitlines()
    assert len(got) == len(vectors)
    for (name, _, _, want), line in zip(vectors, got):
        assert line == want, name


def test_program_refuses_what_it_cannot_mirror(program):
    """Above ESPT_MAX_PAYLOAD the core clamps (its buffer is that big), the host does not."""
    r = subprocess.run([str(program)], input=f"{C_MAX_PAYLOAD + 1} a55a\n",
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "ESPT_MAX_PAYLOAD" in r.stderr
    r = subprocess.run([str(program)], input="64 a55,T\n", capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1 and "malformed" in r.stderr


# ---- random streams: both parsers, same events ----------------------------------

MAGIC = P.MAGIC
BOOT_TEXT = [
    b"ets Jun  8 2016 00:22:57\r\n",
    b"rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n",
    b"configsip: 0, SPIWP:0xee\r\nmode:DIO, clock div:2\r\nload:0x3fff0030,len:1184\r\n",
    b"I (29) boot: ESP-IDF v5.1.2 2nd stage bootloader\r\n",
    b"\x1b[0;32mI (312) cpu_start: Starting scheduler on PRO CPU.\x1b[0m\r\n",
]
u16 = st.integers(0, 0xFFFF)
small_payload = st.lists(st.one_of(st.binary(max_size=12), st.just(MAGIC), st.just(MAGIC[:1]),
                                   st.just(MAGIC * 2)), max_size=6).map(b"".join)
# Long payloads cheaply: a short pattern repeated, around the limits (the C buffer holds
# ESPT_MAX_PAYLOAD + 11 bytes, so a 4096-byte frame fills it exactly).
long_payload = st.builds(lambda pat, n: (pat * (n // len(pat) + 1))[:n],
                         st.binary(min_size=1, max_size=8),
                         st.one_of(st.integers(0, 4200), st.sampled_from([4095, 4096, 4097])))
payload = st.one_of(small_payload, small_payload, small_payload, long_payload)
frame = st.builds(P.encode_frame, st.integers(0, 255), u16, payload)


@st.composite
def damaged_frame(draw):
    f = bytearray(draw(frame))
    i = draw(st.integers(0, len(f) - 1))
    how = draw(st.sampled_from(["flip", "drop", "dup", "cut", "len"]))
    if how == "flip":
        f[i] ^= 1 << draw(st.integers(0, 7))
    elif how == "drop":
        del f[i]
    elif how == "dup":
        f.insert(i, f[i])
    elif how == "cut":
        del f[i:]
    else:  # another length: oversize, or swallowing what follows, or short
        f[5:7] = struct.pack("<H", draw(st.one_of(st.integers(0, 400), u16)))
    return bytes(f)


ascii_noise = st.one_of(st.sampled_from(BOOT_TEXT),
                        st.text(string.printable, max_size=60).map(str.encode))
fake_header = st.builds(lambda t, s, n: MAGIC + struct.pack("<BHH", t, s, n),
                        st.integers(0, 255), u16, st.one_of(st.integers(0, 400), u16))
long_noise = st.builds(lambda pat, n: pat * n, st.binary(min_size=1, max_size=6),
                       st.integers(0, 1500))
piece = st.one_of(frame, frame, frame, damaged_frame(), damaged_frame(), ascii_noise,
                  st.binary(max_size=48), fake_header, st.just(MAGIC), st.just(MAGIC[:1]),
                  long_noise)


@st.composite
def streams(draw):
    """(max_payload, CHUNKS as a list): frames and noise, then a few bits flipped, bytes
    dropped or doubled across the whole stream, cut anywhere, time-outs anywhere."""
    max_payload = draw(st.one_of(st.integers(0, 300), st.integers(0, 300), st.integers(0, 300),
                                 st.integers(301, C_MAX_PAYLOAD), st.just(C_MAX_PAYLOAD)))
    data = bytearray(b"".join(draw(st.lists(piece, min_size=1, max_size=10))))
    for pos, bit, how in draw(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 7),
                                                 st.sampled_from(["flip", "drop", "dup"])),
                                       max_size=3)):
        if data:
            i = pos % len(data)
            if how == "flip":
                data[i] ^= 1 << bit
            elif how == "drop":
                del data[i]
            else:
                data.insert(i, data[i])
    cuts = draw(st.lists(st.tuples(st.integers(0, 10**6), st.booleans()), max_size=12))
    points = {}
    for pos, timeout in cuts:
        p = pos % (len(data) + 1)
        points[p] = points.get(p, False) or timeout
    chunks, start = [], 0
    for p in sorted(points) + [len(data)]:
        if p > start:
            chunks.append(data[start:p].hex())
            start = p
        if points.get(p):
            chunks.append("T")
    chunks += ["T"] * draw(st.integers(0, 3))  # the link goes quiet at the end
    return max_payload, chunks


BIG = P.encode_frame(0x03, 7, bytes(range(256)) * 16)  # 4096 bytes: fills the C buffer


@settings(max_examples=300, deadline=None, derandomize=False,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@example(stream=(C_MAX_PAYLOAD, [(b"noise" * 900 + BIG + MAGIC + BIG[:-1] + BIG).hex(), "T"]))
@example(stream=(C_MAX_PAYLOAD, [(MAGIC * 3000).hex(), "T", "T", BIG.hex()]))
@example(stream=(0, [(P.encode_frame(1, 2) + P.encode_frame(3, 4, b"x")).hex(), "T"]))
@example(stream=(192, ["a5", "T", "5a", "T", "a55a01", "T", "T", "0200", "T"]))
@given(stream=streams())
def test_c_and_python_parsers_emit_the_same_events(c_parser, stream):
    max_payload, chunks = stream
    assert c_parser.events(max_payload, chunks) == python_events(max_payload, chunks)
