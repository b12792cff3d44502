"""One source for the protocol's constants (firmware/core/protocol_spec.h): the firmware's
C and the host's Python see the same values and names, the tensor types are TFLite's own
codes, and docs/protocol.md's tables say the same."""
import re
import subprocess

import pytest
from esptiny.link import protocol as P
from esptiny.model import reader
from esptiny.paths import DOCS, FIRMWARE
from needs import require


@pytest.fixture(scope="module")
def c_values(tmp_path_factory):
    gcc = require("gcc")
    exe = tmp_path_factory.mktemp("spec") / "print_spec"
    core = FIRMWARE / "core"
    r = subprocess.run([gcc, "-std=c99", "-Wall", "-Wextra", "-Werror", f"-I{core}",
                        str(FIRMWARE / "tests" / "print_spec.c"), str(core / "protocol.c"),
                        str(core / "crc32.c"), "-o", str(exe)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    values, names = {}, {}
    for line in out.splitlines():
        if line.startswith("error_name "):
            _, code, name = line.split(" ", 2)
            names[int(code)] = name
        else:
            key, value = line.split()
            values[key] = int(value)
    return values, names


def test_c_and_python_agree(c_values):
    values, error_names = c_values
    python = {"FRAME_TIMEOUT_MS": round(P.FRAME_TIMEOUT_S * 1000), "MAGIC0": P.MAGIC[0],
              "MAGIC1": P.MAGIC[1], "DEFAULT_MAX_PAYLOAD": P.DEFAULT_MAX_PAYLOAD,
              "INFER_HEAD_BYTES": P.INFER_RSP_HEAD.size}
    python.update({k: getattr(P, k) for k in values if k not in python
                   and not k.startswith(("ENGINE_", "DTYPE_", "COUNTER_"))})
    python.update({f"COUNTER_{n.upper()}": c for c, n in P.COUNTER_UNITS.items()})
    python.update({f"ENGINE_{n.upper()}": c for c, n in P.ENGINE_NAMES.items()})
    python.update({f"DTYPE_{n.upper()}": c for c, n in P.DTYPE_NAMES.items()})
    assert values == python
    assert error_names == P.ERROR_NAMES
    assert len(values) == 46  # every constant print_spec.c shows was compared


def test_tensor_types_are_tflites():
    schema = reader.schema().TensorType
    assert P.DTYPE_NAMES == {schema.FLOAT32: "float32", schema.UINT8: "uint8",
                             schema.INT16: "int16", schema.INT8: "int8"}
    assert P.DTYPE_SIZES == {schema.FLOAT32: 4, schema.UINT8: 1, schema.INT16: 2, schema.INT8: 1}


def _table(heading: str) -> dict:
    """code -> name from the docs table under `heading` (rows `| code | name | ... |`)."""
    text = (DOCS / "protocol.md").read_text()
    section = text.split(heading, 1)[1].split("\n#", 1)[0]
    return {int(c): n.strip() for c, n in re.findall(r"^\| (\d+) \| ([^|]+) \|", section, re.M)}


def test_docs_tables_match():
    assert _table("### Error codes") == P.ERROR_NAMES
    assert _table("### Status codes") == P.STATUS_NAMES
    assert _table("### Counter units") == P.COUNTER_UNITS
    assert _table("### Profile states") == P.PROFILE_STATE_NAMES
