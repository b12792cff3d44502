"""The host's protocol code against docs/protocol-vectors.txt (the C tests read the same
file), payload round trips, and the parser's recovery from noise, whatever the chunking."""
import struct

import pytest
from esptiny.link import protocol as P
from esptiny.paths import DOCS
from hypothesis import given, settings
from hypothesis import strategies as st


def _vectors():
    kinds = {"frame": [], "stream": [], "transfer": []}
    for line in (DOCS / "protocol-vectors.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        kind, name, *rest = line.split()
        kinds[kind].append(pytest.param(*rest, id=name))
    assert all(kinds.values())
    return kinds["frame"], kinds["stream"]


FRAMES, STREAMS = _vectors()


def _hex(s: str) -> bytes:
    return b"" if s == "-" else bytes.fromhex(s)


def _events(events) -> list:
    out = []
    for ev in events:
        if isinstance(ev, P.Frame):
            out.append(f"F:{ev.type:02x}:{ev.seq}:{len(ev.payload)}")
        else:
            out.append(f"E:{ev.code}:{ev.seq}")
    return out


@pytest.mark.parametrize("ftype,seq,payload,frame", FRAMES)
def test_frame_vector_encodes_byte_equal(ftype, seq, payload, frame):
    assert P.encode_frame(int(ftype, 16), int(seq), _hex(payload)) == _hex(frame)


@pytest.mark.parametrize("ftype,seq,payload,frame", FRAMES)
def test_frame_vector_parses_back(ftype, seq, payload, frame):
    events = P.Parser().feed(_hex(frame))
    assert events == [P.Frame(int(ftype, 16), int(seq), _hex(payload))]


@pytest.mark.parametrize("max_payload,chunks,expected", STREAMS)
def test_stream_vector_events(max_payload, chunks, expected):
    parser = P.Parser(int(max_payload))
    events = []
    for chunk in chunks.split(","):
        events += parser.timeout() if chunk == "T" else parser.feed(bytes.fromhex(chunk))
    assert _events(events) == ([] if expected == "-" else expected.split(";"))


def test_crc32_check_value():
    assert P.crc32(b"123456789") == 0xCBF43926


def _tensor(dtype, shape, scale, zp):
    return P.TensorInfo(dtype, shape, scale, zp)


def test_info_round_trip():
    info = P.Info(model_crc32=0xDEADBEEF, model_bytes=70208, arena_bytes=20480,
                  arena_used_bytes=19776, cpu_mhz=240, max_payload=4096, rx_buffer_bytes=4096,
                  input=_tensor(P.DTYPE_CODES["int8"], (1, 28, 28, 1), 0.00392156862745098, -128),
                  output=_tensor(P.DTYPE_CODES["int8"], (1, 10), 0.0027988, -15),
                  chip="virtual-esp32s3", firmware_version="esptiny-sim 0.1.0", status=0, engine=0)
    packed = info.pack()
    assert len(packed) == 64 + 1 + len("virtual-esp32s3") + 1 + len("esptiny-sim 0.1.0")
    back = P.Info.unpack(packed)
    # floats travel as binary32: compare through the same rounding
    f32 = struct.unpack("<f", struct.pack("<f", info.input.scale))[0]
    assert back.input.scale == f32 and back.input.shape == (1, 28, 28, 1)
    assert back.output.zero_point == -15 and back.output.nbytes == 10
    assert (back.model_crc32, back.arena_used_bytes, back.rx_buffer_bytes, back.chip) == \
        (0xDEADBEEF, 19776, 4096, "virtual-esp32s3")
    assert back.pack() == packed and back.detail == ""


def _vector_payload(name: str) -> bytes:
    line = next(l for l in (DOCS / "protocol-vectors.txt").read_text().splitlines()
                if l.startswith(f"frame {name} "))
    return _hex(line.split()[4])


def test_piece_vectors_pack_and_unpack():
    """INPUT_PART, INPUT_ACK, OUTPUT_REQ and OUTPUT_PART as the vectors spell them."""
    image = bytes(range(0x10, 0x20))
    assert P.pack_input_part(7, 0, image[:6]) == _vector_payload("input_part_first")
    assert P.pack_input_part(7, 6, image[6:11]) == _vector_payload("input_part_middle")
    assert P.pack_input_part(7, 11, image[11:]) == _vector_payload("input_part_last")
    assert P.unpack_input_ack(_vector_payload("input_ack")) == (7, 11)
    assert P.pack_output_req(23, 4, 6) == _vector_payload("output_req")
    assert P.unpack_output_part(_vector_payload("output_part")) == (23, 4, bytes.fromhex("7c7d7e7f8081"))
    with pytest.raises(ValueError):
        P.unpack_input_ack(b"\x00" * 5)
    with pytest.raises(ValueError):
        P.unpack_output_part(b"\x00" * 5)


def test_info_vector_with_detail():
    """INFO of a board whose engine is not ready, detail last (docs/protocol.md)."""
    payload = _vector_payload("info_rsp_detail")
    info = P.Info.unpack(payload)
    assert (info.status, info.engine, info.model_crc32, info.model_bytes) == (3, 0, 0xDEADBEEF, 106232)
    assert (info.arena_bytes, info.arena_used_bytes, info.cpu_mhz) == (20192, 0, 240)
    assert (info.max_payload, info.rx_buffer_bytes) == (4096, 8214)
    assert info.protocol_version == 2 and info.flags == P.INFO_FLAG_PIECES and info.pieces
    assert (info.input.shape, info.input.zero_point) == ((1, 28, 28, 1), -128)
    assert (info.output.shape, info.output.scale, info.output.zero_point) == ((1, 10), 0.125, 5)
    assert (info.chip, info.firmware_version) == ("esp32", "esptiny-fw 0.1.0")
    assert P.STATUS_NAMES[info.status] == "op not registered"
    assert info.detail == "RESHAPE (op 3) not registered"
    assert info.pack() == payload
    # without the detail it is the INFO every earlier firmware sends
    old = payload[:-(1 + len(info.detail))]
    assert P.Info.unpack(old).detail == "" and P.Info.unpack(old).pack() == old


def test_info_detail_is_checked_and_one_line():
    old = _vector_payload("info_rsp_detail")[:-30]
    assert P.Info.unpack(old + b"\x03a\nb" + b"later fields").detail == "a?b"
    for bad in (b"\x00", b"\x05abc", bytes([P.INFO_STR_MAX + 1]) + b"x" * (P.INFO_STR_MAX + 1)):
        with pytest.raises(ValueError, match="detail"):
            P.Info.unpack(old + bad)
    long = P.Info.unpack(old + bytes([P.INFO_STR_MAX]) + b"x" * P.INFO_STR_MAX)
    assert len(long.detail) == P.INFO_STR_MAX and len(long.pack()) == len(old) + 1 + P.INFO_STR_MAX


def test_info_rejects_truncated_payload():
    with pytest.raises(ValueError):
        P.Info.unpack(b"\x01\x00" * 10)


def test_infer_result_round_trip():
    r = P.InferResult(cycles=2**40 + 7, micros=1234, output=bytes(range(10)))
    assert P.InferResult.unpack(r.pack()) == r
    with pytest.raises(ValueError):
        P.InferResult.unpack(b"\x00" * 11)


def test_profile_vectors():
    """PROFILE_REQ and PROFILE_RSP (docs/protocol.md, "PROFILE"): fields as the vector says."""
    assert _vector_payload("profile_req") == P.pack_profile_req(1)
    payload = _vector_payload("profile_rsp")
    page = P.ProfilePage.unpack(payload)
    assert (P.COUNTER_UNITS[page.unit], P.PROFILE_STATE_NAMES[page.state]) == ("instructions", "recorded")
    assert (page.total, page.first, len(page.steps)) == (3, 1, 2)
    conv_pool, fc = page.steps
    assert (conv_pool.op_indices, conv_pool.op_codes) == ((2, 3), (3, 17))
    assert (conv_pool.counter, conv_pool.arena_live_bytes) == (1234567890123, 6272)
    assert (fc.op_indices, fc.op_codes, fc.counter, fc.arena_live_bytes) == ((4,), (9,), 45678, 1296)
    assert page.pack() == payload


def test_profile_reply_is_checked():
    payload = _vector_payload("profile_rsp")
    for bad in (payload[:7], payload[:-1], payload + b"\0",
                payload[:2] + b"\x02\x00" + payload[4:],      # 2 records from 1 of 2 steps
                b"\x07" + payload[1:],                       # no such unit
                payload[:8] + b"\x03" + payload[9:]):        # 3 ops in one step
        with pytest.raises(ValueError):
            P.ProfilePage.unpack(bad)
    assert P.profile_per_reply(P.DEFAULT_MAX_PAYLOAD) == 185
    with pytest.raises(ValueError):
        P.ProfileStep((1, 2, 3), (1, 2, 3), 0, 0).pack()


# ---- property: frames survive noise and any chunking --------------------------------

MAX = 64
frame_st = st.tuples(st.integers(0, 255), st.integers(0, 0xFFFF), st.binary(max_size=MAX))
clean_noise = st.binary(max_size=40).map(lambda b: b.replace(b"\xa5", b"\x00"))
# Hostile noise: magic bytes, fake headers whose length swallows the frames that follow
# (up to MAX) or is oversize (above MAX), cut-off frames.
fake_header = st.builds(lambda t, n: P.MAGIC + struct.pack("<BHH", t, 7, n),
                        st.integers(0, 255), st.integers(0, 2 * MAX))
cut_frame = st.builds(lambda f, k: f[:k], frame_st.map(lambda f: P.encode_frame(*f)), st.integers(0, 20))
hostile_noise = st.lists(st.one_of(st.binary(max_size=8), st.just(P.MAGIC), st.just(P.MAGIC[:1]),
                                   fake_header, cut_frame), max_size=4).map(b"".join)


def _chunked(data: bytes, cuts) -> list:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


def _parse(parser, chunks) -> list:
    events = []
    for c in chunks:
        events += parser.feed(c)
    for _ in range(10 * len(b"".join(chunks)) + 1):  # end of stream: the link goes quiet
        if parser.buf[:2] != P.MAGIC:
            break
        events += parser.timeout()
    return events


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(clean_noise, frame_st), max_size=8), st.lists(st.integers(0, 10**6), max_size=12))
def test_frames_between_text_noise_parse_back_exactly(items, cuts):
    """Noise without the first magic byte (boot text, say) never hides or invents a frame."""
    stream = b"".join(noise + P.encode_frame(t, s, p) for noise, (t, s, p) in items)
    events = _parse(P.Parser(MAX), _chunked(stream, cuts))
    assert events == [P.Frame(t, s & 0xFFFF, p) for _, (t, s, p) in items]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(hostile_noise, frame_st), max_size=8),
       st.lists(st.integers(0, 10**6), max_size=12))
def test_frames_survive_arbitrary_noise_and_chunking(items, cuts):
    """Any noise (magic bytes and fake headers included): every real frame is still found,
    in order, and chunking changes nothing."""
    stream = b"".join(noise + P.encode_frame(t, s, p) for noise, (t, s, p) in items)
    whole = _parse(P.Parser(MAX), [stream])
    chunked = _parse(P.Parser(MAX), _chunked(stream, cuts))
    assert whole == chunked
    frames = [e for e in whole if isinstance(e, P.Frame)]
    wanted = [P.Frame(t, s & 0xFFFF, p) for _, (t, s, p) in items]
    it = iter(frames)  # wanted is a subsequence of what was found (noise may hold a valid frame)
    assert all(any(f == w for f in it) for w in wanted)
