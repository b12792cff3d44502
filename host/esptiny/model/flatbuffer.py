"""The flatbuffer verifier for .tflite files: every offset, vector, string and table of a
model checked against the buffer's bounds and alignment before anything reads it.

It does what flatbuffers' C++ `Verifier` does for `tflite::VerifyModelBuffer` (vtables in
bounds and of even size, fields inside the buffer and aligned, offsets forward and in
bounds, vectors' lengths within the buffer, strings NUL-terminated, union members
verified as their type, a depth and a table-count limit). TFLite-Micro runs on the raw
bytes without verifying them, so on its own a bad offset is a read out of bounds.

The schema is read from the tflite-micro wheel's generated Python, never written out
here: each table's `<Table>Add<Field>` builder function says the field's slot and scalar
type (run against a recorder), its accessor says what an offset points to (a string, a
vector and of what, a table and which, a union and its enum).
"""
from __future__ import annotations

import inspect
import re
import struct
from dataclasses import dataclass
from functools import lru_cache

from ..errors import UserError

MAX_DEPTH = 64            # flatbuffers::Verifier's defaults
MAX_TABLES = 1_000_000
MAX_BUFFER = 2**31 - 1
SCALAR_BYTES = {"Bool": 1, "Int8": 1, "Uint8": 1, "Int16": 2, "Uint16": 2, "Int32": 4,
                "Uint32": 4, "Float32": 4, "Int64": 8, "Uint64": 8, "Float64": 8}


class Corrupt(UserError):
    """The bytes are not a well-formed TFLite flatbuffer."""


@dataclass(frozen=True)
class Field:
    name: str
    slot: int
    kind: str            # scalar | string | table | vector | tables | union
    size: int = 0        # a scalar's bytes, or a vector element's
    target: str = ""     # the table a table (or vector of tables) field holds, or a union's enum
    type_slot: int = -1  # a union's type field


class _Recorder:
    """Stands in for flatbuffers.Builder: records the first call a builder function makes."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        def call(*args):
            self.calls.append((name, *args))
            return 0
        return call


def schema():
    """The TFLite schema as the tflite-micro wheel generates it (flatbuffers object API)."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated
    return schema_py_generated


def _recorded(fn) -> tuple:
    rec = _Recorder()
    fn(rec, 0)
    return rec.calls[0]


@lru_cache(maxsize=None)
def tables() -> dict:
    """table name -> {field name -> Field}, for every table of the wheel's schema."""
    S = schema()
    raw: dict = {}
    for name, fn in vars(S).items():
        m = re.fullmatch(r"([A-Z]\w*?)Add([A-Z]\w*)", name)
        if m and callable(fn) and isinstance(getattr(S, m.group(1), None), type):
            raw.setdefault(m.group(1), {})[m.group(2)] = _recorded(fn)
    out = {}
    for table, fields in raw.items():
        cls = getattr(S, table)
        out[table] = {}
        for fname, (method, slot, *_) in fields.items():
            kind = method[len("Prepend"):-len("Slot")]
            if kind in SCALAR_BYTES:
                out[table][fname] = Field(fname, slot, "scalar", SCALAR_BYTES[kind])
                continue
            assert kind == "UOffsetTRelative", f"{table}.{fname}: unknown slot kind {method}"
            out[table][fname] = _offset_field(S, cls, table, fname, slot, fields)
    return out


def _offset_field(S, cls, table, fname, slot, fields) -> Field:
    src = inspect.getsource(getattr(cls, fname))
    obj = re.search(r"obj = (\w+)\(\)", src)
    if "self._tab.Union(" in src:
        unpack = inspect.getsource(getattr(S, table + "T")._UnPack)
        enum = re.search(rf"(\w+)Creator\(self\.\w+Type, \w+\.{fname}\(\)\)", unpack)
        assert enum, f"{table}.{fname}: union without a creator"
        return Field(fname, slot, "union", target=enum.group(1), type_slot=fields[fname + "Type"][1])
    if "self._tab.Vector(o)" in src:
        if obj:
            return Field(fname, slot, "tables", 4, obj.group(1))
        start = getattr(S, f"{table}Start{fname}Vector")
        call = _recorded(start)  # ("StartVector", element bytes, count, alignment)
        assert call[0] == "StartVector", f"{table}.{fname}: {call}"
        return Field(fname, slot, "vector", call[1])
    if obj:
        return Field(fname, slot, "table", target=obj.group(1))
    assert "self._tab.String(" in src, f"{table}.{fname}: unknown offset field"
    return Field(fname, slot, "string")


@lru_cache(maxsize=None)
def _union_members(enum: str) -> dict:
    """A union enum's value -> its member table's name."""
    return {v: k for k, v in vars(getattr(schema(), enum)).items() if not k.startswith("_")}


class _Verifier:
    def __init__(self, buf: bytes):
        self.buf = buf
        self.n = len(buf)
        self.tables = 0
        self.seen: set = set()

    def fail(self, what: str, pos: int):
        raise Corrupt(f"corrupt TFLite model: {what} at byte {pos} of {self.n}")

    def need(self, pos: int, size: int, align: int, what: str):
        if pos < 0 or size < 0 or pos + size > self.n:
            self.fail(f"{what} out of bounds", pos)
        if align > 1 and pos % align:
            self.fail(f"{what} misaligned", pos)

    def u32(self, pos, what):
        self.need(pos, 4, 4, what)
        return struct.unpack_from("<I", self.buf, pos)[0]

    def offset(self, pos, what) -> int:
        """Where the uoffset at pos points (forward, inside the buffer)."""
        o = self.u32(pos, what)
        if o == 0 or o >= 2**31:
            self.fail(f"{what}: offset {o}", pos)
        self.need(pos + o, 1, 1, what)
        return pos + o

    def vector(self, pos, elem: int, what) -> tuple:
        n = self.u32(pos, f"{what} length")
        if n > (MAX_BUFFER - 4) // max(elem, 1):
            self.fail(f"{what}: {n} elements", pos)
        self.need(pos + 4, n * elem, min(elem, 8), f"{what} ({n} x {elem} B)")
        return pos + 4, n

    def string(self, pos, what):
        start, n = self.vector(pos, 1, what)
        self.need(start + n, 1, 1, f"{what} terminator")
        if self.buf[start + n] != 0:
            self.fail(f"{what} not NUL-terminated", start + n)

    def table(self, pos: int, name: str, depth: int):
        if depth > MAX_DEPTH:
            self.fail("tables nested too deep", pos)
        if (pos, name) in self.seen:
            return
        self.seen.add((pos, name))
        self.tables += 1
        if self.tables > MAX_TABLES:
            self.fail("too many tables", pos)
        self.need(pos, 4, 4, f"{name} table")
        vt = pos - struct.unpack_from("<i", self.buf, pos)[0]
        self.need(vt, 4, 2, f"{name} vtable")
        vsize, _tsize = struct.unpack_from("<HH", self.buf, vt)
        if vsize < 4 or vsize & 1:
            self.fail(f"{name} vtable of {vsize} B", vt)
        self.need(vt, vsize, 2, f"{name} vtable")
        slots = [struct.unpack_from("<H", self.buf, vt + 4 + 2 * i)[0] for i in range((vsize - 4) // 2)]

        def field_pos(slot):
            return pos + slots[slot] if slot < len(slots) and slots[slot] else None

        for f in tables().get(name, {}).values():
            at = field_pos(f.slot)
            if at is None:
                continue
            what = f"{name}.{f.name}"
            if f.kind == "scalar":
                self.need(at, f.size, f.size, what)
                continue
            target = self.offset(at, what)
            if f.kind == "string":
                self.string(target, what)
            elif f.kind == "vector":
                self.vector(target, f.size, what)
            elif f.kind == "table":
                self.table(target, f.target, depth + 1)
            elif f.kind == "tables":
                start, n = self.vector(target, 4, what)
                for i in range(n):
                    self.table(self.offset(start + 4 * i, f"{what}[{i}]"), f.target, depth + 1)
            else:  # union: its member table, by the type field's value
                tat = field_pos(f.type_slot)
                if tat is None:
                    continue
                self.need(tat, 1, 1, what + "Type")
                member = _union_members(f.target).get(self.buf[tat])
                if member and member != "NONE":
                    self.table(target, member, depth + 1)


def verify(model_bytes: bytes):
    """Raise Corrupt (a one-line UserError) unless the bytes are a well-formed TFLite model."""
    buf = bytes(model_bytes)
    v = _Verifier(buf)
    if len(buf) > MAX_BUFFER:
        v.fail("larger than 2 GB", 0)
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise Corrupt("not a TFLite model (no TFL3 identifier)")
    v.table(v.offset(0, "root"), "Model", 0)
