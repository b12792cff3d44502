"""The serial protocol, host side: frames, the resynchronising parser, message payloads.

docs/protocol.md is the specification; firmware/core/protocol.c is the device side.
Both are tested against docs/protocol-vectors.txt.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from ..crc import crc32
from ..model import reader
from . import spec

_LIMITS = spec.values("LIMITS")
_FRAMES = spec.values("FRAME_TYPES")
_ERRORS = spec.values("ERRORS")
_STATUSES = spec.values("STATUSES")

PROTOCOL_VERSION = _LIMITS["PROTOCOL_VERSION"]
MAGIC = bytes([_LIMITS["MAGIC0"], _LIMITS["MAGIC1"]])
HEADER = struct.Struct("<2sBHH")  # magic, type, seq, payload length
HEADER_BYTES = _LIMITS["HEADER_BYTES"]
CRC_BYTES = _LIMITS["CRC_BYTES"]
OVERHEAD = HEADER_BYTES + CRC_BYTES
SEQ_UNKNOWN = _LIMITS["SEQ_UNKNOWN"]
DEFAULT_MAX_PAYLOAD = _LIMITS["DEFAULT_MAX_PAYLOAD"]
FRAME_TIMEOUT_S = _LIMITS["DEFAULT_FRAME_TIMEOUT_MS"] / 1000
ERROR_TEXT_MAX = _LIMITS["ERROR_TEXT_MAX"]
ERROR_MAX_BYTES = 2 + ERROR_TEXT_MAX  # u8 code, u8 0, the text
INFO_STR_MAX = _LIMITS["INFO_STR_MAX"]
INFO_FLAG_PIECES = _LIMITS["INFO_FLAG_PIECES"]
PIECE_HEAD_BYTES = _LIMITS["PIECE_HEAD_BYTES"]
OUTPUT_REQ_BYTES = _LIMITS["OUTPUT_REQ_BYTES"]
PROFILE_HEAD_BYTES = _LIMITS["PROFILE_HEAD_BYTES"]
PROFILE_RECORD_BYTES = _LIMITS["PROFILE_RECORD_BYTES"]
PROFILE_OPS_MAX = _LIMITS["PROFILE_OPS_MAX"]
assert HEADER.size == HEADER_BYTES

# Frame types: host -> device below 0x80, device -> host from 0x80.
INFO_REQ, INFER_REQ, PING_REQ = _FRAMES["INFO_REQ"], _FRAMES["INFER_REQ"], _FRAMES["PING_REQ"]
READY, INFO_RSP, INFER_RSP = _FRAMES["READY"], _FRAMES["INFO_RSP"], _FRAMES["INFER_RSP"]
PONG, ERROR = _FRAMES["PONG"], _FRAMES["ERROR"]
INPUT_PART, OUTPUT_REQ = _FRAMES["INPUT_PART"], _FRAMES["OUTPUT_REQ"]
INPUT_ACK, OUTPUT_PART = _FRAMES["INPUT_ACK"], _FRAMES["OUTPUT_PART"]
PROFILE_REQ, PROFILE_RSP = _FRAMES["PROFILE_REQ"], _FRAMES["PROFILE_RSP"]

# Error codes carried by ERROR frames, and their names.
ERR_CRC, ERR_OVERSIZE, ERR_TRUNCATED = _ERRORS["CRC"], _ERRORS["OVERSIZE"], _ERRORS["TRUNCATED"]
ERR_UNKNOWN_TYPE, ERR_BAD_LENGTH = _ERRORS["UNKNOWN_TYPE"], _ERRORS["BAD_LENGTH"]
ERR_NOT_READY, ERR_INVOKE_FAILED = _ERRORS["NOT_READY"], _ERRORS["INVOKE_FAILED"]
ERR_NO_OUTPUT = _ERRORS["NO_OUTPUT"]
ERROR_NAMES = spec.texts("ERRORS")

# INFO's status and engine bytes.
STATUS_READY, STATUS_ARENA_TOO_SMALL = _STATUSES["READY"], _STATUSES["ARENA_TOO_SMALL"]
STATUS_MODEL_INVALID = _STATUSES["MODEL_INVALID"]
STATUS_NAMES = spec.texts("STATUSES")
ENGINE_NAMES = spec.texts("ENGINES")
ENGINE_CODES = {name: code for code, name in ENGINE_NAMES.items()}

# Tensor types INFO carries: TFLite TensorType codes, named and sized by TFLite's schema.
DTYPE_NAMES = {code: reader.type_name(code) for code in spec.values("DTYPES").values()}
DTYPE_SIZES = {code: reader.numpy_dtype(code).itemsize for code in DTYPE_NAMES}
DTYPE_CODES = {name: code for code, name in DTYPE_NAMES.items()}

# PROFILE's counter units and states.
COUNTER_UNITS = spec.texts("COUNTER_UNITS")
_PROFILE_STATES = spec.values("PROFILE_STATES")
PROFILE_RECORDED, PROFILE_OFF = _PROFILE_STATES["RECORDED"], _PROFILE_STATES["OFF"]
PROFILE_EMPTY = _PROFILE_STATES["EMPTY"]
PROFILE_STATE_NAMES = spec.texts("PROFILE_STATES")


def encode_frame(ftype: int, seq: int, payload: bytes = b"") -> bytes:
    if not 0 <= len(payload) <= 0xFFFF:
        raise ValueError(f"payload of {len(payload)} bytes does not fit a frame")
    body = struct.pack("<BHH", ftype, seq & 0xFFFF, len(payload)) + payload
    return MAGIC + body + struct.pack("<I", crc32(body))


@dataclass(frozen=True)
class Frame:
    type: int
    seq: int
    payload: bytes


@dataclass(frozen=True)
class ParseError:
    """The parser rejected the bytes at the head of its buffer."""
    code: int
    seq: int  # from the rejected header: a hint, not to be trusted


class Parser:
    """Byte stream -> Frames and ParseErrors, skipping noise and resynchronising.

    The algorithm (docs/protocol.md, "Parsing") is the device's too, so the host and
    the virtual board see a stream exactly as the firmware does.
    """

    def __init__(self, max_payload: int = DEFAULT_MAX_PAYLOAD):
        self.max_payload = max_payload
        self.buf = bytearray()
        self.noise_bytes = 0

    def feed(self, data: bytes) -> list:
        self.buf += data
        return self._scan()

    def timeout(self) -> list:
        """The link went quiet: a partial frame at the head will never complete."""
        events = []
        if len(self.buf) >= 2 and self.buf[:2] == MAGIC:
            seq = self._header()[2] if len(self.buf) >= HEADER_BYTES else SEQ_UNKNOWN
            events.append(ParseError(ERR_TRUNCATED, seq))
            del self.buf[:1]
            events += self._scan()
        return events

    def pending(self) -> int:
        return len(self.buf)

    def _header(self):
        return HEADER.unpack_from(self.buf)

    def _sync(self):
        i = self.buf.find(MAGIC)
        if i < 0:  # keep a trailing first magic byte: the second may follow
            i = len(self.buf) - 1 if self.buf[-1:] == MAGIC[:1] else len(self.buf)
        self.noise_bytes += i
        del self.buf[:i]

    def _scan(self) -> list:
        events = []
        while True:
            self._sync()
            if len(self.buf) < HEADER_BYTES:
                return events
            _, ftype, seq, length = self._header()
            if length > self.max_payload:
                events.append(ParseError(ERR_OVERSIZE, seq))
                del self.buf[:1]
                continue
            end = HEADER_BYTES + length
            if len(self.buf) < end + CRC_BYTES:
                return events
            (crc,) = struct.unpack_from("<I", self.buf, end)
            if crc != crc32(bytes(self.buf[2:end])):
                events.append(ParseError(ERR_CRC, seq))
                del self.buf[:1]
                continue
            events.append(Frame(ftype, seq, bytes(self.buf[HEADER_BYTES:end])))
            del self.buf[:end + CRC_BYTES]


# ---- payloads -------------------------------------------------------------

TENSOR = struct.Struct("<BB4Hfi")  # dtype, ndims, dims[4], scale, zero point
INFO_FIXED = struct.Struct("<BBBBIIIIIHH")
INFER_RSP_HEAD = struct.Struct("<QI")  # cycles, microseconds


@dataclass(frozen=True)
class TensorInfo:
    dtype: int
    shape: tuple
    scale: float
    zero_point: int

    @property
    def nbytes(self) -> int:
        n = DTYPE_SIZES[self.dtype]
        for d in self.shape:
            n *= d
        return n

    def pack(self) -> bytes:
        if not 1 <= len(self.shape) <= 4:
            raise ValueError(f"tensor of rank {len(self.shape)}: INFO carries ranks 1 to 4")
        dims = list(self.shape) + [1] * (4 - len(self.shape))
        return TENSOR.pack(self.dtype, len(self.shape), *dims, self.scale, self.zero_point)

    @classmethod
    def unpack(cls, data: bytes, offset: int = 0) -> "TensorInfo":
        dtype, ndims, *rest = TENSOR.unpack_from(data, offset)
        dims, scale, zp = rest[:4], rest[4], rest[5]
        if not 1 <= ndims <= 4:
            raise ValueError(f"bad tensor rank {ndims}")
        return cls(dtype, tuple(dims[:ndims]), scale, zp)


def _pack_str(s: str) -> bytes:
    b = s.encode()[:255]
    return bytes([len(b)]) + b


def _one_line(b: bytes) -> str:
    """The device's text as one printable line (it is untrusted bytes)."""
    return "".join(c if c.isprintable() else "?" for c in b.decode(errors="replace"))


@dataclass(frozen=True)
class Info:
    model_crc32: int
    model_bytes: int
    arena_bytes: int
    arena_used_bytes: int
    cpu_mhz: int
    max_payload: int
    rx_buffer_bytes: int
    input: TensorInfo
    output: TensorInfo
    chip: str
    firmware_version: str
    status: int = 0
    engine: int = 0
    protocol_version: int = PROTOCOL_VERSION
    detail: str = ""  # why the engine is not ready; sent only when there is one
    flags: int = 0  # INFO_FLAG_*

    @property
    def pieces(self) -> bool:
        """The device takes INPUT_PART and OUTPUT_REQ (tensors of any size)."""
        return bool(self.flags & INFO_FLAG_PIECES)

    def pack(self) -> bytes:
        fixed = INFO_FIXED.pack(self.protocol_version, self.status, self.engine, self.flags,
                                self.model_crc32, self.model_bytes, self.arena_bytes,
                                self.arena_used_bytes, self.cpu_mhz, self.max_payload,
                                self.rx_buffer_bytes)
        detail = self.detail.encode()[:INFO_STR_MAX]
        return (fixed + self.input.pack() + self.output.pack()
                + _pack_str(self.chip) + _pack_str(self.firmware_version)
                + (bytes([len(detail)]) + detail if detail else b""))

    @classmethod
    def unpack(cls, data: bytes) -> "Info":
        try:
            (pv, status, engine, flags, crc, mbytes, arena, used, mhz, maxp,
             rxb) = INFO_FIXED.unpack_from(data)
            off = INFO_FIXED.size
            tin = TensorInfo.unpack(data, off)
            tout = TensorInfo.unpack(data, off + TENSOR.size)
            off += 2 * TENSOR.size
            chip = data[off + 1:off + 1 + data[off]].decode(errors="replace")
            off += 1 + data[off]
            ver = data[off + 1:off + 1 + data[off]].decode(errors="replace")
            off += 1 + data[off]
            detail = ""
            if off < len(data):  # optional; what may follow it is for later versions
                n = data[off]
                if not 0 < n <= INFO_STR_MAX or off + 1 + n > len(data):
                    raise ValueError(f"detail of {n} bytes at offset {off}")
                detail = _one_line(data[off + 1:off + 1 + n])
        except (struct.error, IndexError, ValueError) as e:
            raise ValueError(f"malformed INFO payload ({len(data)} bytes): {e}") from None
        return cls(crc, mbytes, arena, used, mhz, maxp, rxb, tin, tout, chip, ver,
                   status, engine, pv, detail, flags)


@dataclass(frozen=True)
class InferResult:
    cycles: int
    micros: int
    output: bytes = field(repr=False)

    def pack(self) -> bytes:
        return INFER_RSP_HEAD.pack(self.cycles, self.micros) + self.output

    @classmethod
    def unpack(cls, data: bytes) -> "InferResult":
        if len(data) < INFER_RSP_HEAD.size:
            raise ValueError(f"INFER reply of {len(data)} bytes is shorter than its head")
        cycles, micros = INFER_RSP_HEAD.unpack_from(data)
        return cls(cycles, micros, data[INFER_RSP_HEAD.size:])


def pack_error(code: int, message: str = "") -> bytes:
    return bytes([code, 0]) + message.encode()[:64]


def unpack_error(data: bytes) -> tuple:
    code = data[0] if data else 0
    return code, data[2:].decode(errors="replace")


def pack_ready(status: int, model_crc32: int) -> bytes:
    return struct.pack("<BBI", PROTOCOL_VERSION, status, model_crc32)


# ---- tensors in pieces (docs/protocol.md, "Tensors in pieces") -------------------------

PIECE_HEAD = struct.Struct("<HI")  # tag, offset (INPUT_PART, OUTPUT_PART; INPUT_ACK: tag, have)
OUTPUT_REQ_FMT = struct.Struct("<HIH")  # tag, offset, len
assert PIECE_HEAD.size == PIECE_HEAD_BYTES and OUTPUT_REQ_FMT.size == OUTPUT_REQ_BYTES


def pack_input_part(tag: int, offset: int, data: bytes) -> bytes:
    return PIECE_HEAD.pack(tag & 0xFFFF, offset) + data


def unpack_input_ack(data: bytes) -> tuple:
    """(tag, have): the bytes of that transfer the device holds, contiguous from 0."""
    if len(data) != PIECE_HEAD_BYTES:
        raise ValueError(f"INPUT_ACK of {len(data)} bytes, not {PIECE_HEAD_BYTES}")
    return PIECE_HEAD.unpack(data)


def pack_output_req(tag: int, offset: int, length: int) -> bytes:
    return OUTPUT_REQ_FMT.pack(tag & 0xFFFF, offset, length)


def unpack_output_part(data: bytes) -> tuple:
    """(tag, offset, bytes)."""
    if len(data) < PIECE_HEAD_BYTES:
        raise ValueError(f"OUTPUT_PART of {len(data)} bytes is shorter than its head")
    tag, offset = PIECE_HEAD.unpack_from(data)
    return tag, offset, data[PIECE_HEAD_BYTES:]


# ---- PROFILE ----------------------------------------------------------------

PROFILE_HEAD = struct.Struct("<BBHHH")  # unit, state, steps, first, count
PROFILE_RECORD = struct.Struct(f"<BB{PROFILE_OPS_MAX}H{PROFILE_OPS_MAX}HQI")
NO_OP = 0xFFFF  # an unused op slot
assert (PROFILE_HEAD.size, PROFILE_RECORD.size) == (PROFILE_HEAD_BYTES, PROFILE_RECORD_BYTES)


def pack_profile_req(first: int) -> bytes:
    return struct.pack("<H", first)


def profile_per_reply(max_payload: int) -> int:
    """Records one PROFILE_RSP of max_payload bytes carries."""
    return (max_payload - PROFILE_HEAD_BYTES) // PROFILE_RECORD_BYTES


@dataclass(frozen=True)
class ProfileStep:
    op_indices: tuple   # the operators' positions in the model (a fused step has two)
    op_codes: tuple     # their TFLite BuiltinOperator codes
    counter: int        # the board's counter over the step (Profile.unit)
    arena_live_bytes: int

    def pack(self) -> bytes:
        n = len(self.op_indices)
        if not 1 <= n <= PROFILE_OPS_MAX or len(self.op_codes) != n:
            raise ValueError(f"a profile step names 1 to {PROFILE_OPS_MAX} ops, not {n}")
        pad = (NO_OP,) * (PROFILE_OPS_MAX - n)
        return PROFILE_RECORD.pack(n, 0, *self.op_indices, *pad, *self.op_codes, *pad,
                                   self.counter, self.arena_live_bytes)

    @classmethod
    def unpack(cls, data: bytes, offset: int = 0) -> "ProfileStep":
        n, _, *rest = PROFILE_RECORD.unpack_from(data, offset)
        if not 1 <= n <= PROFILE_OPS_MAX:
            raise ValueError(f"profile record names {n} ops")
        idx, codes = rest[:PROFILE_OPS_MAX], rest[PROFILE_OPS_MAX:2 * PROFILE_OPS_MAX]
        return cls(tuple(idx[:n]), tuple(codes[:n]), rest[-2], rest[-1])


@dataclass(frozen=True)
class ProfilePage:
    """One PROFILE_RSP: records [first, first + len(steps)) of `total`."""
    unit: int
    state: int
    total: int
    first: int
    steps: tuple

    def pack(self) -> bytes:
        return (PROFILE_HEAD.pack(self.unit, self.state, self.total, self.first, len(self.steps))
                + b"".join(s.pack() for s in self.steps))

    @classmethod
    def unpack(cls, data: bytes) -> "ProfilePage":
        if len(data) < PROFILE_HEAD.size:
            raise ValueError(f"PROFILE reply of {len(data)} bytes is shorter than its head")
        unit, state, total, first, count = PROFILE_HEAD.unpack_from(data)
        if len(data) != PROFILE_HEAD.size + count * PROFILE_RECORD.size:
            raise ValueError(f"PROFILE reply of {len(data)} bytes for {count} records")
        if first + count > total:
            raise ValueError(f"PROFILE records {first}..{first + count} past the {total} steps")
        if unit not in COUNTER_UNITS or state not in PROFILE_STATE_NAMES:
            raise ValueError(f"PROFILE reply with unit {unit}, state {state}")
        steps = tuple(ProfileStep.unpack(data, PROFILE_HEAD.size + k * PROFILE_RECORD.size)
                      for k in range(count))
        return cls(unit, state, total, first, steps)
