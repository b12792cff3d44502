"""The firmware's own C core in this process: firmware/core (protocol, device loop) with
the host-runtime board and engine (firmware/boards/hostrt, firmware/engines/hostrt),
built with the host's gcc as a shared library and driven through ctypes.

The C does everything the device does (parsing, replies, errors, READY, INFO, status,
timing the invoke); Python supplies only what a chip would: bytes in and out (the board
callbacks, over a transport), and an inference runtime (the engine callbacks, over
TFLite-Micro's host runtime). One Core a process: the C keeps its state in statics.
"""
from __future__ import annotations

import ctypes as C
import hashlib
import select
from pathlib import Path

import numpy as np

from .. import atomic, paths, toolchain
from ..link import protocol as P

LIB = "libesptiny-hostrt.so"
SOURCES = ("core", "boards/hostrt", "engines/hostrt")
POLL_MS = 10


def build(build_dir) -> Path:
    """Build the shared library into build_dir (skipped when every source is what the last
    build used, by their SHA-256); compiler errors are one line (toolchain.run)."""
    build_dir = Path(build_dir).resolve()
    so = build_dir / LIB
    srcs = [f for d in SOURCES for f in sorted((paths.FIRMWARE / d).glob("*.[ch]"))]
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in srcs)).hexdigest()
    stamp = build_dir / "sources.sha256"
    if so.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return so
    make = toolchain.which("make", "building the virtual board's firmware core")
    toolchain.which("gcc", "building the virtual board's firmware core")
    build_dir.mkdir(parents=True, exist_ok=True)
    with atomic.atomic_path(so) as tmp:
        toolchain.run([make, "--no-print-directory", "-C", paths.FIRMWARE, "hostrt",
                       f"HOSTRT_SO={tmp}", f"BUILD={build_dir / 'obj'}"],
                      "building the virtual board's firmware core", log=build_dir / "build.log")
    atomic.write_text(stamp, digest + "\n")
    return so


# ---- engine.h's structs, mirrored (checked against the C at load) ------------------

class TensorInfo(C.Structure):
    _fields_ = [("dtype", C.c_uint8), ("rank", C.c_uint8), ("dims", C.c_uint16 * 4),
                ("scale", C.c_float), ("zero_point", C.c_int32), ("bytes", C.c_uint32)]


class ModelInfo(C.Structure):
    _fields_ = [("status", C.c_uint8), ("engine", C.c_uint8), ("model_crc32", C.c_uint32),
                ("model_bytes", C.c_uint32), ("arena_bytes", C.c_uint32),
                ("arena_used_bytes", C.c_uint32), ("input", TensorInfo), ("output", TensorInfo),
                ("detail", C.c_char * (P.INFO_STR_MAX + 1))]


READ_FN = C.CFUNCTYPE(C.c_int, C.POINTER(C.c_uint8), C.c_size_t, C.c_uint32)
WRITE_FN = C.CFUNCTYPE(C.c_int, C.POINTER(C.c_uint8), C.c_size_t)
INIT_FN = C.CFUNCTYPE(C.c_int, C.POINTER(ModelInfo))
SET_INPUT_FN = C.CFUNCTYPE(C.c_int, C.POINTER(C.c_uint8), C.c_size_t)
INVOKE_FN = C.CFUNCTYPE(C.c_int)
GET_OUTPUT_FN = C.CFUNCTYPE(C.c_int, C.POINTER(C.c_uint8), C.c_size_t)


class EngineCallbacks(C.Structure):
    _fields_ = [("init", INIT_FN), ("set_input", SET_INPUT_FN), ("invoke", INVOKE_FN),
                ("get_output", GET_OUTPUT_FN)]


def load(so_path) -> C.CDLL:
    lib = C.CDLL(str(so_path))
    lib.espt_hostrt_board.argtypes = [READ_FN, WRITE_FN, C.c_char_p, C.c_uint32, C.c_uint32]
    lib.espt_hostrt_engine.argtypes = [C.POINTER(EngineCallbacks), C.c_char_p, C.c_size_t]
    lib.espt_hostrt_info_size.restype = lib.espt_hostrt_info_detail_offset.restype = C.c_size_t
    lib.espt_device_poll.argtypes = lib.espt_mlperf_poll.argtypes = [C.c_uint32]
    assert (lib.espt_hostrt_info_size(), lib.espt_hostrt_info_detail_offset()) == \
        (C.sizeof(ModelInfo), ModelInfo.detail.offset), "engine.h changed: update hostrt.ModelInfo"
    return lib


# ---- the engine: TFLite-Micro's host runtime --------------------------------------

NUMPY_TO_DTYPE = {np.dtype(name): code for name, code in P.DTYPE_CODES.items()}


class TflmEngine:
    """engine.h over TFLite-Micro's host runtime. Set up again at every (re)boot.

    arena_bytes None: what TFLite-Micro records for the model, rounded up to 1 KiB, plus
    1 KiB (allocation also needs temporary planning memory the recorded total leaves out:
    992 B for a 640-wide dense autoencoder whose arena is 3,984 B)."""

    def __init__(self, model_bytes: bytes, arena_bytes: int | None = None):
        from ..errors import UserError
        from ..model import tflm
        self.model = bytes(model_bytes)
        self.interp = None
        self.refused = None
        try:  # verified and run once in a child: a model that would crash it never gets here
            self.used = tflm.arena_bytes(self.model)["total"]
        except UserError as e:
            self.used, self.refused = 0, str(e)
        self.arena = arena_bytes or (-(-self.used // 1024) * 1024 + 1024 if self.used else 0)

    def init(self, info) -> int:
        from tflite_micro.python.tflite_micro import runtime
        self.interp = None
        info.arena_bytes = self.arena
        if self.refused:
            return self._fail(info, P.STATUS_MODEL_INVALID, self.refused)
        try:
            probe = runtime.Interpreter.from_bytes(self.model)
            self._tensor(info.input, probe.get_input_details(0))
            self._tensor(info.output, probe.get_output_details(0))
        except Exception as e:  # anything the runtime rejects is an invalid model to the board
            return self._fail(info, P.STATUS_MODEL_INVALID, str(e))
        try:
            interp = runtime.Interpreter.from_bytes(self.model, arena_size=self.arena)
            d = interp.get_input_details(0)
            interp.set_input(np.zeros(d["shape"], d["dtype"]), 0)
            interp.invoke()  # allocation problems surface here at the latest
        except Exception as e:  # the runtime could not allocate in this arena
            return self._fail(info, P.STATUS_ARENA_TOO_SMALL,
                              f"TFLite-Micro could not allocate in {self.arena} B "
                              f"({(str(e).splitlines() or [''])[0]})")
        self.interp = interp
        self.in_shape, self.in_dtype = tuple(d["shape"]), np.dtype(d["dtype"])
        info.arena_used_bytes = self.used
        return P.STATUS_READY

    @staticmethod
    def _fail(info, status: int, why: str) -> int:
        info.detail = why.encode("ascii", "replace")[:P.INFO_STR_MAX]
        return status

    @staticmethod
    def _tensor(t: TensorInfo, d: dict):
        shape = [int(s) for s in d["shape"]]
        dtype = NUMPY_TO_DTYPE.get(np.dtype(d["dtype"]), 0xFF)  # unknown: the C says invalid
        if not 1 <= len(shape) <= 4 or max(shape) > 0xFFFF:
            raise ValueError(f"tensor {d['dtype']} {shape} does not fit INFO")
        q = d.get("quantization_parameters") or {}
        scales, zps = q.get("scales", []), q.get("zero_points", [])
        t.dtype, t.rank = dtype, len(shape)
        for k, s in enumerate(shape):
            t.dims[k] = s
        t.scale = float(scales[0]) if len(scales) else 0.0
        t.zero_point = int(zps[0]) if len(zps) else 0
        t.bytes = int(np.prod(shape)) * np.dtype(d["dtype"]).itemsize

    def set_input(self, data: bytes) -> int:
        self.interp.set_input(np.frombuffer(data, self.in_dtype).reshape(self.in_shape), 0)
        return 0

    def invoke(self) -> int:
        self.interp.invoke()
        return 0

    def get_output(self, n: int) -> bytes:
        return self.interp.get_output(0).tobytes()


# ---- the core, driven over a transport ----------------------------------------------

class Core:
    """The C device loop with `engine` behind engine.h, serving sessions on a transport
    (devices/transports.py). Every host connection boots it (READY), and so does the
    input flush pyserial does on open (a dev board's auto-reset)."""

    def __init__(self, so_path, model_bytes: bytes, engine, chip: str, cpu_mhz: int,
                 rx_buffer_bytes: int, protocol: str = "esptiny"):
        self.lib = load(so_path)
        # the loop firmware_main.h would pick: esptiny's device or the MLPerf Tiny API
        self._init, self._poll = (self.lib.espt_mlperf_init, self.lib.espt_mlperf_poll) \
            if protocol == "mlperf-tiny" else (self.lib.espt_device_init, self.lib.espt_device_poll)
        self.engine = engine
        self.boots = 0
        self.t = None
        self.pending = b""
        self.rebooting = False
        # Kept referenced: ctypes frees a callback the C still holds otherwise.
        self._cbs = (READ_FN(self._read), WRITE_FN(self._write))
        self._ecb = EngineCallbacks(INIT_FN(self._guard(lambda p: engine.init(p.contents), P.STATUS_MODEL_INVALID)),
                                    SET_INPUT_FN(self._guard(lambda d, n: engine.set_input(C.string_at(d, n)))),
                                    INVOKE_FN(self._guard(engine.invoke)),
                                    GET_OUTPUT_FN(self._guard(self._get_output)))
        self.lib.espt_hostrt_board(*self._cbs, chip.encode(), cpu_mhz, rx_buffer_bytes)
        model = bytes(model_bytes)
        assert self.lib.espt_hostrt_engine(C.byref(self._ecb), model, len(model)) == 0

    @staticmethod
    def _guard(fn, failed: int = -1):
        """An exception must not cross into the C: it becomes the engine's failure code."""
        def call(*a):
            try:
                return fn(*a)
            except Exception:
                return failed
        return call

    def _get_output(self, out, n) -> int:
        data = self.engine.get_output(n)
        if len(data) != n:
            return -1
        C.memmove(out, data, n)
        return 0

    def serve(self, transport, stopped) -> None:
        """Boot and serve one host until it hangs up (or stopped() says so)."""
        self.t, self.pending = transport, b""
        self.rebooting = True
        while self.rebooting and not stopped():
            self.rebooting = False
            self.boots += 1
            rc = self._init()
            while rc >= 0 and not stopped():
                rc = self._poll(POLL_MS)

    # board.h's link, over the transport
    def _read(self, buf, n, timeout_ms) -> int:
        try:
            if not self.pending:
                r, _, _ = select.select([self.t], [], [], timeout_ms / 1000)
                if r:
                    data = self.t.read()
                    if data is None:
                        return -1  # the host hung up
                    if getattr(self.t, "flushed", False):  # the host (re)opened the port
                        self.t.flushed = False
                        self.rebooting = True
                        return -1
                    self.pending = data
                elif self.t.hung_up():
                    return -1
            k = min(n, len(self.pending))
            C.memmove(buf, self.pending, k)
            self.pending = self.pending[k:]
            return k
        except Exception:
            return -1

    def _write(self, buf, n) -> int:
        try:
            data = C.string_at(buf, n)
            while data:
                _, w, _ = select.select([], [self.t], [], 1.0)
                if not w:
                    continue
                put = self.t.write(data)
                if put is None:
                    return -1
                data = data[put:]
            return 0
        except Exception:
            return -1

