"""The model as C text: byte arrays, string literals, and reading an array back (tests)."""
from __future__ import annotations

import re


def c_array(data: bytes, per_line: int = 12) -> str:
    """The bytes as C initialiser lines, `per_line` bytes a line."""
    rows = (", ".join(f"0x{b:02x}" for b in data[i:i + per_line]) for i in range(0, len(data), per_line))
    return ",\n".join("  " + r for r in rows)


def c_string(s: str) -> str:
    """A C string literal for any text (UTF-8 bytes, escaped where C needs it)."""
    out = []
    for b in s.encode("utf-8"):
        ch = chr(b)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= b < 0x7F and ch != "?":  # '?' escaped: no trigraphs
            out.append(ch)
        else:
            out.append(f"\\{b:03o}")
    return '"' + "".join(out) + '"'


def parse_c_array(text: str, name: str = "g_espt_model_data") -> bytes:
    """The bytes of a C array `name` written by c_array() (the tests read it back)."""
    m = re.search(re.escape(name) + r"\[\]\s*=\s*\{(.*?)\};", text, re.S)
    if not m:
        raise ValueError(f"no array {name} in the text")
    return bytes(int(v, 16) for v in re.findall(r"0x([0-9a-fA-F]{2})", m.group(1)))

