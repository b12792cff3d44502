"""What lowering produces: kernel Steps with their C constants, and the C snippets for
parameter structs. No imports from the rest of the compiler (ops/ and lower.py share it)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Const:
    ctype: str
    name: str
    values: np.ndarray
    kind: str  # "weights", "bias" or "params": how it counts in the flash figures


@dataclass
class Step:
    kernel: str
    ops: list                  # TFLite operator indices this step covers
    op_names: list
    comment: str
    inputs: list               # activation tensor indices read
    outputs: list              # activation tensor indices written
    call: str                  # C statement with {in0} {in1} {out0} {scratch} placeholders
    consts: list = field(default_factory=list)
    struct: str = ""           # the parameter struct definition (C)
    scratch_bytes: int = 0
    packed: bool = False
    weights_int8_bytes: int = 0


def c_struct(ctype: str, name: str, fields: list) -> str:
    """A const parameter struct with designated initializers, one field a line."""
    body = "".join(f"    .{k} = {v},\n" for k, v in fields)
    return f"static const {ctype} {name} = {{\n{body}}};\n"


def c_array(values) -> str:
    """An inline C array initializer: { 1, 2, 3 }."""
    return "{ " + ", ".join(str(int(v)) for v in values) + " }"


def float_literal(x: float) -> str:
    """A C float literal that reads back as the same float32."""
    s = f"{float(np.float32(x)):.9g}"
    if "e" not in s and "." not in s and "n" not in s:
        s += ".0"
    return s + "f"
