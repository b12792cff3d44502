"""`esptiny export`: a run's model as a self-contained PlatformIO project for an ESP32.

Renders templates/ (Jinja) into platformio.ini, the ESP-IDF project files and the model
files (the .tflite as a C array, its shapes and quantization, an op resolver with exactly
its ops, the arena size with its reasoning), and copies the firmware sources beside them.
Everything is checked before anything is written (deployable variant, known ops, fits
the board); the project is written into a temporary directory and renamed into place,
so a failure never leaves half a project.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..crc import crc32
from ..errors import UserError
from ..model.reader import Graph, Tensor
from ..paths import FIRMWARE, REPO, TEMPLATES
from ..progress import say
from . import boards as boards_mod
from . import fit

ENGINES = {"tflm": "TFLite-Micro with ESP-NN", "aot": "esptiny AOT-compiled C"}
CONSOLES = ("uart", "usb-serial-jtag")
MARKER = "esptiny-export.json"
REPO_MODEL_DIR = FIRMWARE / "model"  # git-ignored; the top-level platformio.ini builds against it
MAX_PAYLOAD = 4096       # docs/protocol.md: a device's default max_payload
INFER_HEAD_BYTES = 12    # INFER_RSP's u64 cycles + u32 microseconds before the output

# TFLite builtin op -> MicroMutableOpResolver method (tensorflow/lite/micro/
# micro_mutable_op_resolver.h). Ops missing here are refused at export, by name.
RESOLVER_METHODS = {
    "ABS": "AddAbs", "ADD": "AddAdd", "ADD_N": "AddAddN", "ARG_MAX": "AddArgMax",
    "ARG_MIN": "AddArgMin", "AVERAGE_POOL_2D": "AddAveragePool2D",
    "BATCH_TO_SPACE_ND": "AddBatchToSpaceNd", "CAST": "AddCast", "CEIL": "AddCeil",
    "CONCATENATION": "AddConcatenation", "CONV_2D": "AddConv2D", "COS": "AddCos",
    "DEPTH_TO_SPACE": "AddDepthToSpace", "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D",
    "DEQUANTIZE": "AddDequantize", "ELU": "AddElu", "EQUAL": "AddEqual", "EXP": "AddExp",
    "EXPAND_DIMS": "AddExpandDims", "FILL": "AddFill", "FLOOR": "AddFloor",
    "FLOOR_DIV": "AddFloorDiv", "FLOOR_MOD": "AddFloorMod",
    "FULLY_CONNECTED": "AddFullyConnected", "GATHER": "AddGather", "GATHER_ND": "AddGatherNd",
    "GREATER": "AddGreater", "GREATER_EQUAL": "AddGreaterEqual", "HARD_SWISH": "AddHardSwish",
    "L2_NORMALIZATION": "AddL2Normalization", "L2_POOL_2D": "AddL2Pool2D",
    "LEAKY_RELU": "AddLeakyRelu", "LESS": "AddLess", "LESS_EQUAL": "AddLessEqual",
    "LOG": "AddLog", "LOGICAL_AND": "AddLogicalAnd", "LOGICAL_NOT": "AddLogicalNot",
    "LOGICAL_OR": "AddLogicalOr", "LOGISTIC": "AddLogistic", "MAX_POOL_2D": "AddMaxPool2D",
    "MAXIMUM": "AddMaximum", "MEAN": "AddMean", "MINIMUM": "AddMinimum",
    "MIRROR_PAD": "AddMirrorPad", "MUL": "AddMul", "NEG": "AddNeg", "NOT_EQUAL": "AddNotEqual",
    "PACK": "AddPack", "PAD": "AddPad", "PADV2": "AddPadV2", "PRELU": "AddPrelu",
    "QUANTIZE": "AddQuantize", "REDUCE_MAX": "AddReduceMax", "RELU": "AddRelu",
    "RELU6": "AddRelu6", "RESHAPE": "AddReshape", "RESIZE_BILINEAR": "AddResizeBilinear",
    "RESIZE_NEAREST_NEIGHBOR": "AddResizeNearestNeighbor", "ROUND": "AddRound",
    "RSQRT": "AddRsqrt", "SHAPE": "AddShape", "SIN": "AddSin", "SLICE": "AddSlice",
    "SOFTMAX": "AddSoftmax", "SPACE_TO_BATCH_ND": "AddSpaceToBatchNd",
    "SPACE_TO_DEPTH": "AddSpaceToDepth", "SPLIT": "AddSplit", "SPLIT_V": "AddSplitV",
    "SQRT": "AddSqrt", "SQUARE": "AddSquare", "SQUEEZE": "AddSqueeze",
    "STRIDED_SLICE": "AddStridedSlice", "SUB": "AddSub", "SVDF": "AddSvdf", "TANH": "AddTanh",
    "TRANSPOSE": "AddTranspose", "TRANSPOSE_CONV": "AddTransposeConv", "UNPACK": "AddUnpack",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM", "ZEROS_LIKE": "AddZerosLike",
}

# TFLite types the protocol's INFO carries (firmware/core/engine.h's ESPT_DTYPE_*).
PROTOCOL_DTYPES = ("float32", "uint8", "int16", "int8")


# ---- the model's facts -----------------------------------------------------------

def tensor_view(t: Tensor) -> dict:
    """A tensor as the model_config.h template and the export's JSON describe it."""
    return {"dtype": t.dtype, "dtype_name": t.dtype_name, "shape": list(t.shape),
            "rank": len(t.shape), "dims": list(t.shape) + [1] * (4 - len(t.shape)),
            "shape_text": "[" + ", ".join(str(d) for d in t.shape) + "]",
            "scale": t.scale, "zero_point": t.zero_point, "quantized": t.quantized,
            "scale_text": np.format_float_positional(np.float32(t.scale), unique=True, trim="0"),
            "bytes": t.nbytes}


def tensor_dict(t: Tensor) -> dict:
    return {"dtype": t.dtype_name, "shape": list(t.shape), "scale": t.scale,
            "zero_point": t.zero_point, "bytes": t.nbytes}


@dataclass
class Model:
    data: bytes
    graph: object
    ops: list       # distinct builtin op names, first-use order
    input: Tensor
    output: Tensor

    @property
    def crc32(self) -> int:
        return crc32(self.data)


def _tensor(graph, index: int, role: str) -> Tensor:
    t = graph.tensors[index]
    if t.dtype_name not in PROTOCOL_DTYPES:
        raise UserError(f"the model's {role} is {t.dtype_name}; the firmware's protocol "
                        f"carries {', '.join(PROTOCOL_DTYPES)}")
    if not 1 <= len(t.shape) <= 4 or any(not 1 <= d <= 0xFFFF for d in t.shape):
        raise UserError(f"the model's {role} shape {list(t.shape)} does not fit the protocol "
                        f"(rank 1 to 4, each dimension 1 to 65535)")
    return t


def read_model(data: bytes) -> Model:
    graph = Graph(data)
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise UserError(f"the firmware serves one input and one output; this model has "
                        f"{len(graph.inputs)} and {len(graph.outputs)}")
    model = Model(bytes(data), graph, graph.op_names(),
                  _tensor(graph, graph.inputs[0], "input"), _tensor(graph, graph.outputs[0], "output"))
    if model.input.nbytes > MAX_PAYLOAD or model.output.nbytes > MAX_PAYLOAD - INFER_HEAD_BYTES:
        raise UserError(f"the model's input ({model.input.nbytes} B) or output ({model.output.nbytes} B) "
                        f"does not fit one protocol frame ({MAX_PAYLOAD} B payload)")
    return model


def resolver_ops(op_names: list) -> list:
    """[{name, method}] for the op resolver; a one-line error names every unsupported op."""
    missing = [n for n in op_names if n not in RESOLVER_METHODS]
    if missing:
        raise UserError(f"TFLite-Micro's op resolver has no registration esptiny knows for "
                        f"{', '.join(missing)}; the model cannot be exported with --engine tflm")
    return [{"name": n, "method": RESOLVER_METHODS[n]} for n in op_names]


# ---- C text ------------------------------------------------------------------------

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


# ---- templates -----------------------------------------------------------------------

def _env():
    import jinja2
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              trim_blocks=True, lstrip_blocks=True, autoescape=False)


def render(name: str, **ctx) -> str:
    return _env().get_template(name).render(**ctx)


def _labels(run, n: int) -> list:
    try:
        labels = list(run.stage("train").get("labels") or [])
    except UserError:
        labels = []
    if len(labels) != n:
        labels = [f"class {i}" for i in range(n)]
    return [str(x) for x in labels]


def model_files(model: Model, arena: fit.ArenaPlan, variant: str, engine: str, source: str,
                labels: list) -> dict:
    """name -> text of the generated model files (into the firmware's model/ directory)."""
    banner = "Generated by `esptiny export`; regenerate rather than edit."
    crc_hex = f"0x{model.crc32:08x}"
    common = dict(banner=banner, source=source, model_bytes=len(model.data), crc_hex=crc_hex,
                  variant=variant, engine=engine)
    files = {"model_config.h": render(
        "model/model_config.h.j2", **common,
        tensors=[("INPUT", tensor_view(model.input)), ("OUTPUT", tensor_view(model.output))],
        labels=[c_string(x) for x in labels],
        arena={"total": arena.total, "recorded": arena.recorded, "margin": arena.margin,
               "reasoning": arena.reasoning()})}
    if engine == "tflm":
        files["model_data.h"] = render("model/model_data.h.j2", **common)
        files["model_data.cc"] = render("model/model_data.cc.j2", **common, array=c_array(model.data))
        files["op_resolver.h"] = render("model/op_resolver.h.j2", **common, ops=resolver_ops(model.ops))
    return files


def _board_ctx(board, partitions: str, console: str) -> dict:
    flags = []
    if console != board.console:
        flags.append(f"-DESPT_CONSOLE_USB_SERIAL_JTAG={1 if console == 'usb-serial-jtag' else 0}")
    note = boards_mod.CONSOLE_NOTES[board.name] if console == board.console else (
        "UART0 through the board's USB-UART bridge" if console == "uart"
        else "the chip's USB-Serial-JTAG controller")
    return {"chip": board.chip, "pio_env": board.pio_env, "pio_board": board.pio_board,
            "partitions": partitions, "build_flags": flags, "console_note": note}


def _sdkconfig_board(board, partitions: str, banner: str) -> str:
    return render("project/sdkconfig.board.j2", banner=banner, board=board,
                  flash_mb=board.flash_bytes // (1024 * 1024), partitions=partitions)


def repo_files() -> dict:
    """The repository's own build files (top-level platformio.ini, its ESP-IDF project and
    sdkconfig defaults), rendered from the same templates as an exported project; the
    tests check the committed files equal these."""
    banner = "Generated from templates/project by esptiny.targets.export.repo_files(); tests/test_export.py checks it."
    bs = list(boards_mod.BOARDS.values())
    rel = "firmware/boards/esp32"
    files = {
        REPO / "platformio.ini": render(
            "project/platformio.ini.j2", banner=banner, project_dir=".", src_dir="firmware",
            purpose=("The repository's firmware/, built against the model `esptiny export RUN "
                     "--into-repo` writes into firmware/model/ (git-ignored)."),
            platform=boards_mod.PLATFORM, idf_version=boards_mod.IDF_VERSION, baud=boards_mod.UART_BAUD,
            boards=[_board_ctx(b, f"{rel}/{b.partitions}", b.console) for b in bs]),
        REPO / "CMakeLists.txt": render("project/CMakeLists.txt.j2", banner=banner, src_dir="firmware",
                                        sdkconfig_defaults=f"{rel}/sdkconfig.defaults"),
        REPO / rel / "sdkconfig.defaults": render("project/sdkconfig.common.j2", banner=banner),
    }
    for b in bs:
        files[REPO / rel / f"sdkconfig.defaults.{b.name}"] = _sdkconfig_board(b, f"{rel}/{b.partitions}", banner)
    return files


def project_files(board, console: str, engine: str, project_dir: str) -> dict:
    """relative path -> text of an exported project's build files."""
    banner = "Generated by `esptiny export`; regenerate rather than edit."
    return {
        "platformio.ini": render(
            "project/platformio.ini.j2", banner=banner, project_dir=project_dir, src_dir="src",
            purpose=f"{board.chip}, {ENGINES[engine]}, exported by esptiny.",
            platform=boards_mod.PLATFORM, idf_version=boards_mod.IDF_VERSION, baud=boards_mod.UART_BAUD,
            boards=[_board_ctx(board, "partitions.csv", console)]),
        "CMakeLists.txt": render("project/CMakeLists.txt.j2", banner=banner, src_dir="src",
                                 sdkconfig_defaults=None),
        "sdkconfig.defaults": (render("project/sdkconfig.common.j2", banner=banner) + "\n"
                               + _sdkconfig_board(board, "partitions.csv", banner)),
    }


def _source_files(engine: str) -> dict:
    """relative path under src/ -> firmware file to copy (copies, not links)."""
    out = {"CMakeLists.txt": FIRMWARE / "CMakeLists.txt"}
    if engine == "tflm":
        out["idf_component.yml"] = FIRMWARE / "idf_component.yml"
    dirs = {"core": FIRMWARE / "core", "boards/esp32": boards_mod.BOARD_DIR,
            f"engines/{engine}": FIRMWARE / "engines" / engine}
    for rel, d in dirs.items():
        files = sorted(p for p in d.glob("*") if p.suffix in (".c", ".cc", ".h") and p.is_file()
                       and not (rel.startswith("engines/") and p.name.endswith("_main.c")))
        if not files:
            raise UserError(f"{d}: no firmware sources to copy (is this an esptiny checkout?)")
        out.update({f"{rel}/{p.name}": p for p in files})
    return out


# ---- the export ------------------------------------------------------------------------

def _refuse_variant(run, variant: str) -> dict:
    variants = run.variants()
    if variant not in variants:
        raise UserError(f"no variant '{variant}' in {run.path}; it has: {', '.join(variants)}")
    entry = variants[variant]
    if not entry.get("deployable", True):
        ok = [n for n, v in variants.items() if v.get("deployable", True)]
        raise UserError(f"variant '{variant}' cannot run on the board: {entry.get('reason') or 'not deployable'}"
                        f"; export {' or '.join(ok) if ok else 'int8 (esptiny compress RUN --methods int8)'}")
    return entry


def _check_out(out: Path):
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise UserError(f"{out}: exists and is not an esptiny export; remove it or choose another --out")


def _replace_dir(stage: Path, out: Path):
    """Put the finished directory in place: a reader sees the old project or the new one."""
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
        os.replace(out, old / out.name)
        os.replace(stage, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(stage, out)


def _aot(model: Model, dest: Path) -> fit.ArenaPlan:
    from ..aot import generate
    result = generate(model.data, dest)
    return fit.ArenaPlan(recorded=int(result["arena_bytes"]), engine="aot")


def export(run, variant: str = "int8", board: str = "esp32", engine: str = "tflm", out=None,
           into_repo: bool = False, console: str | None = None) -> dict:
    """Write the project (or, with into_repo, only firmware/model/); return what it wrote."""
    t_start = time.perf_counter()
    b = boards_mod.get(board)
    if engine not in ENGINES:
        raise UserError(f"unknown engine '{engine}'; choose from {', '.join(ENGINES)}")
    console = console or b.console
    if console not in CONSOLES:
        raise UserError(f"unknown console '{console}'; choose from {', '.join(CONSOLES)}")
    if console not in b.consoles:
        raise UserError(f"{b.name} has no {console} link; it has {', '.join(b.consoles)}")
    if into_repo and console != b.console:
        raise UserError("--console applies to an exported project; the repository's firmware uses each board's default")
    _refuse_variant(run, variant)
    path = run.variant_path(variant)
    model = read_model(path.read_bytes())
    out = Path(REPO_MODEL_DIR if into_repo else (out or run.path / "firmware" / f"{variant}-{b.name}-{engine}"))
    _check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)

    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        model_dir = stage if into_repo else stage / "src" / "model"
        model_dir.mkdir(parents=True, exist_ok=True)
        if engine == "tflm":
            resolver_ops(model.ops)  # refuse unknown ops before the slower arena recording
            from ..model import tflm
            recorded = tflm.arena_bytes(model.data)["total"]
            targets = boards_mod.BOARDS.values() if into_repo else [b]  # the repo builds every board
            arena = max((fit.plan_arena(recorded, model.graph, t) for t in targets), key=lambda a: a.total)
        else:
            arena = _aot(model, model_dir)
        figures = fit.check(b, len(model.data), arena, variant)

        labels = _labels(run, int(np.prod(model.output.shape)))
        source = os.path.relpath(path, run.path.parent) if path.is_relative_to(run.path.parent) else str(path)
        for name, text in model_files(model, arena, variant, engine, source, labels).items():
            (model_dir / name).write_text(text)
        if not into_repo:
            for rel, text in project_files(b, console, engine, str(out)).items():
                (stage / rel).write_text(text)
            for rel, src in _source_files(engine).items():
                (stage / "src" / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, stage / "src" / rel)
            shutil.copyfile(b.partitions_path, stage / "partitions.csv")
        info = {
            "path": str(out), "variant": variant, "board": b.name, "engine": engine,
            "console": console, "baud": boards_mod.UART_BAUD, "pio_env": b.pio_env,
            "platform": boards_mod.PLATFORM, "into_repo": into_repo, "source": source,
            "model_bytes": len(model.data), "model_crc32": f"0x{model.crc32:08x}", "ops": model.ops,
            "input": tensor_dict(model.input), "output": tensor_dict(model.output), "labels": labels,
            "arena": arena.as_dict(), "fit": figures,
        }
        if not into_repo:
            readme = render("project/README.md.j2", variant=variant, board=b, engine_name=ENGINES[engine],
                            source=source, model_bytes=len(model.data), crc_hex=info["model_crc32"],
                            ops=model.ops, arena={"total": arena.total, "summary": arena.summary()},
                            fit=figures, console=console, console_note=_board_ctx(b, "", console)["console_note"],
                            platform=boards_mod.PLATFORM, idf_version=boards_mod.IDF_VERSION,
                            project_dir=info["path"], baud=boards_mod.UART_BAUD)
            (stage / "README.md").write_text(readme)
        (stage / MARKER).write_text(json.dumps(info, indent=2) + "\n")
        _replace_dir(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    _record(run, info, time.perf_counter() - t_start)
    say(f"exported {variant} for {b.name} ({ENGINES[engine]}) to {out}: model {len(model.data):,} B, "
        f"arena {arena.total:,} B, {figures['app_used_bytes']:,} of {figures['app_partition_bytes']:,} "
        f"app-partition bytes")
    return info


def _record(run, info: dict, seconds: float):
    """Keep each export's figures in the run manifest, keyed variant-board-engine."""
    entry = run.manifest()["stages"].get("export", {})
    projects = dict(entry.get("projects", {}))
    projects[f"{info['variant']}-{info['board']}-{info['engine']}"] = info
    run.record("export", {"projects": projects, "seconds": round(seconds, 2)})
