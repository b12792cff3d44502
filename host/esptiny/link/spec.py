"""The protocol's constants, read from the firmware's own list of them
(firmware/core/protocol_spec.h), so that the host and the device cannot disagree."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ..paths import FIRMWARE

SPEC_H = FIRMWARE / "core" / "protocol_spec.h"
_LIST = re.compile(r"#define ESPT_SPEC_(\w+)\(X\)((?:[^\n]*\\\n)*[^\n]*)")
_ENTRY = re.compile(r'X\((\w+),\s*(0x[0-9A-Fa-f]+|\d+)\s*(?:,\s*"([^"]*)")?\)')


@dataclass(frozen=True)
class Entry:
    name: str
    value: int
    text: str | None


@lru_cache(maxsize=None)
def lists() -> dict:
    """List name (LIMITS, FRAME_TYPES, ERRORS, STATUSES, ENGINES, DTYPES) -> [Entry]."""
    text = re.sub(r"/\*.*?\*/", "", SPEC_H.read_text(), flags=re.S)
    out = {}
    for name, body in _LIST.findall(text):
        out[name] = [Entry(n, int(v, 0), t or None) for n, v, t in _ENTRY.findall(body)]
    assert {"LIMITS", "FRAME_TYPES", "ERRORS", "STATUSES", "ENGINES", "DTYPES"} <= set(out), \
        f"{SPEC_H}: lists missing ({sorted(out)})"
    return out


def values(list_name: str) -> dict:
    """NAME -> value."""
    return {e.name: e.value for e in lists()[list_name]}


def texts(list_name: str) -> dict:
    """value -> the name as printed ("crc", "arena too small", ...)."""
    return {e.value: e.text for e in lists()[list_name]}
