"""`esptiny export`, `build` and `flash`: the generated files hold exactly the model, the
resolver holds exactly its ops, the projects render for every board and deployable
variant, the fit checks accept and refuse the right cases, failures leave nothing
behind, and PlatformIO's failures (it is offline here) come back as one line."""
import configparser
import dataclasses
import re
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
import yaml
from esptiny.errors import UserError
from esptiny.paths import FIRMWARE, REPO
from esptiny.stages import export as export_stage
from esptiny.targets import boards, carray, export, firmware_model, fit, resolver
from esptiny.targets import platformio as build
from needs import require


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory, fashion):
    """The seed's MLP, one epoch on 1,000 images, with int8 and the two variants TFLite-Micro
    cannot run (float16 weights, dynamic range)."""
    from esptiny.stages import compress as compress_stage
    from esptiny.stages import train as train_stage
    from esptiny.stages.run import new_run
    run = new_run(tmp_path_factory.mktemp("mlp") / "run")
    train_stage.train(run, model_name="mlp", train_limit=1000, test_limit=200, epochs=1, seed=2)
    compress_stage.compress(run, methods=["int8", "float16", "dynamic"], rep_samples=50)
    return run


def flatbuffer_ops(data: bytes) -> list:
    """Builtin op names the model's operators use, first-use order, read with the schema
    directly (not through esptiny's graph reader)."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as S
    m = S.Model.GetRootAs(bytearray(data), 0)
    names = {v: k for k, v in vars(S.BuiltinOperator).items() if not k.startswith("_")}
    codes = [m.OperatorCodes(i) for i in range(m.OperatorCodesLength())]
    sg = m.Subgraphs(0)
    used = []
    for i in range(sg.OperatorsLength()):
        c = codes[sg.Operators(i).OpcodeIndex()]
        used.append(names[max(c.BuiltinCode(), c.DeprecatedBuiltinCode())])
    return list(dict.fromkeys(used))


def resolver_calls(text: str) -> list:
    return re.findall(r"resolver\.(Add\w+)\(\) != kTfLiteOk\) return \"(\w+)\";", text)


def no_leftovers(parent: Path):
    return [p.name for p in parent.iterdir() if p.name.startswith(".")]


# ---- the generated model files ---------------------------------------------------

@pytest.mark.parametrize("which", ["cnn", "mlp"])
def test_array_crc_and_resolver_are_exactly_the_model(which, tiny_run, mlp_run, tmp_path):
    run = tiny_run if which == "cnn" else mlp_run
    data = run.variant_path("int8").read_bytes()
    info = export_stage.export(run, "int8", "esp32", out=tmp_path / "p")
    model_dir = tmp_path / "p" / "src" / "model"
    cc = (model_dir / "model_data.cc").read_text()

    assert carray.parse_c_array(cc) == data
    assert info["model_crc32"] == f"0x{zlib.crc32(data):08x}"
    assert f"g_espt_model_crc32 = 0x{zlib.crc32(data):08x}u;" in cc
    assert f"g_espt_model_data_len = {len(data)}u;" in cc
    assert "alignas(16) const unsigned char g_espt_model_data[]" in cc
    rows = [ln for ln in cc.splitlines() if ln.startswith("  0x")]
    assert all(ln.count("0x") == 12 for ln in rows[:-1]) and 1 <= rows[-1].count("0x") <= 12
    assert len(rows) == -(-len(data) // 12)

    ops = flatbuffer_ops(data)
    calls = resolver_calls((model_dir / "op_resolver.h").read_text())
    assert [name for _, name in calls] == ops
    assert [method for method, _ in calls] == [resolver.RESOLVER_METHODS[o] for o in ops]
    assert f"constexpr unsigned kOpCount = {len(ops)};" in (model_dir / "op_resolver.h").read_text()
    assert info["ops"] == ops
    expected = {"cnn": {"CONV_2D", "MAX_POOL_2D", "RESHAPE", "FULLY_CONNECTED"},
                "mlp": {"RESHAPE", "FULLY_CONNECTED"}}[which]
    assert expected <= set(ops)


def test_model_config_matches_the_interpreter(tiny_run, tmp_path):
    from esptiny.model import tflite
    data = tiny_run.variant_path("int8").read_bytes()
    d_in, d_out = tflite.io_details(data)
    export_stage.export(tiny_run, "int8", "esp32c3", out=tmp_path / "p")
    h = (tmp_path / "p" / "src" / "model" / "model_config.h").read_text()
    assert f"#define ESPT_INPUT_DIMS {{ {', '.join(str(int(d)) for d in d_in['shape'])} }}" in h
    assert f"#define ESPT_INPUT_BYTES {int(d_in['shape'].prod())}u" in h
    assert f"#define ESPT_INPUT_ZERO_POINT ({d_in['quantization'][1]})" in h
    assert f"#define ESPT_OUTPUT_ZERO_POINT ({d_out['quantization'][1]})" in h
    assert "#define ESPT_INPUT_DTYPE 9 " in h and "#define ESPT_OUTPUT_DTYPE 9 " in h
    labels = tiny_run.stage("train")["labels"]
    assert f"#define ESPT_NUM_LABELS {len(labels)}" in h
    assert all(export.c_string(x) in h for x in labels)


def test_generated_files_compile_and_the_array_is_byte_equal(tiny_run, tmp_path):
    gxx, gcc = require("g++"), require("gcc")
    data = tiny_run.variant_path("int8").read_bytes()
    info = export_stage.export(tiny_run, "int8", "esp32", out=tmp_path / "p")
    model_dir = tmp_path / "p" / "src" / "model"
    prog = tmp_path / "dump.cc"
    prog.write_text(r'''
#include <cstdint>
#include <cstdio>
#include "model_config.h"
#include "model_data.h"
int main(int argc, char **argv) {
  static const uint16_t in_dims[4] = ESPT_INPUT_DIMS;
  static const char *labels[] = ESPT_LABELS;
  if (argc != 2) return 2;
  if (reinterpret_cast<uintptr_t>(g_espt_model_data) % 16 != 0) return 3;
  if (g_espt_model_data_len != ESPT_MODEL_BYTES || g_espt_model_crc32 != ESPT_MODEL_CRC32) return 4;
  FILE *f = std::fopen(argv[1], "wb");
  if (!f || std::fwrite(g_espt_model_data, 1, g_espt_model_data_len, f) != g_espt_model_data_len) return 5;
  std::fclose(f);
  std::printf("%u %u %u %u %u %d %s|%s\n", (unsigned)in_dims[1], (unsigned)in_dims[2],
              (unsigned)ESPT_INPUT_BYTES, (unsigned)ESPT_OUTPUT_BYTES, (unsigned)ESPT_ARENA_BYTES,
              ESPT_NUM_LABELS, labels[0], labels[ESPT_NUM_LABELS - 1]);
  return 0;
}
''')
    flags = ["-std=c++17", "-Wall", "-Wextra", "-Werror", "-I", str(model_dir)]
    subprocess.run([gxx, *flags, "-c", str(model_dir / "model_data.cc"), "-o", str(tmp_path / "model_data.o")],
                   check=True)
    subprocess.run([gxx, *flags, str(prog), str(tmp_path / "model_data.o"), "-o", str(tmp_path / "dump")],
                   check=True)
    out = subprocess.run([str(tmp_path / "dump"), str(tmp_path / "dumped.tflite")],
                         capture_output=True, text=True, check=True).stdout.split()
    assert (tmp_path / "dumped.tflite").read_bytes() == data
    labels = tiny_run.stage("train")["labels"]
    assert out[:6] == ["28", "28", "784", "10", str(info["arena"]["total"]), str(len(labels))]
    assert " ".join(out[6:]) == f"{labels[0]}|{labels[-1]}"
    # the headers are C too (the AOT engine and the core are C99)
    c = tmp_path / "c99.c"
    c.write_text('#include "model_config.h"\n#include "model_data.h"\n'
                 'static const unsigned short d[4] = ESPT_OUTPUT_DIMS;\n'
                 'int main(void) { return (int)d[1] - ESPT_NUM_LABELS; }\n')
    subprocess.run([gcc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-I", str(model_dir), str(c),
                    str(tmp_path / "model_data.o"), "-o", str(tmp_path / "c99")], check=True)
    assert subprocess.run([str(tmp_path / "c99")]).returncode == 0


def test_c_string_escapes_what_c_needs():
    assert export.c_string('a"b\\c') == r'"a\"b\\c"'
    assert export.c_string("é?\n") == r'"\303\251\077\012"'


def test_unknown_ops_are_refused_by_name():
    with pytest.raises(UserError, match="FOO_BAR, CUSTOM_THING; the model cannot be exported"):
        resolver.resolver_ops(["CONV_2D", "FOO_BAR", "CUSTOM_THING"])
    assert resolver.resolver_ops(["PADV2"]) == [{"name": "PADV2", "method": "AddPadV2"}]


# ---- projects for every board and deployable variant --------------------------------

@pytest.mark.parametrize("board", list(boards.BOARDS))
@pytest.mark.parametrize("variant", ["int8", "float32"])
def test_projects_render_for_every_board_and_variant(board, variant, tiny_run, tmp_path):
    b = boards.get(board)
    out = tmp_path / f"{variant}-{board}"
    info = export_stage.export(tiny_run, variant, board, out=out)
    assert info["board"] == board and info["engine"] == "tflm" and info["console"] == b.console
    cfg = configparser.ConfigParser(inline_comment_prefixes=(";",))
    cfg.read(out / "platformio.ini")
    assert cfg.get("platformio", "src_dir") == "src"
    assert cfg.get("env", "platform") == boards.PLATFORM and cfg.get("env", "framework") == "espidf"
    assert cfg.sections() == ["platformio", "env", f"env:{board}"]
    assert cfg.get(f"env:{board}", "board") == b.pio_board
    assert cfg.get(f"env:{board}", "board_build.partitions") == "partitions.csv"
    assert (out / "partitions.csv").read_bytes() == b.partitions_path.read_bytes()
    sdk = (out / "sdkconfig.defaults").read_text()
    assert f"CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ_{b.cpu_mhz}=y" in sdk and "CONFIG_ESP_CONSOLE_NONE=y" in sdk
    assert 'CONFIG_PARTITION_TABLE_CUSTOM_FILENAME="partitions.csv"' in sdk
    assert "include($ENV{IDF_PATH}/tools/cmake/project.cmake)" in (out / "CMakeLists.txt").read_text()
    # self-contained: the firmware sources are copies, the same bytes as the repository's
    src = out / "src"
    assert (src / "CMakeLists.txt").read_text() == (FIRMWARE / "CMakeLists.txt").read_text()
    assert (src / "idf_component.yml").read_text() == (FIRMWARE / "idf_component.yml").read_text()
    for rel in ("core/device.c", "core/protocol.c", "core/board.h", "boards/esp32/board_esp32.c",
                "boards/esp32/app_main.c", "engines/tflm/engine_tflm.cc"):
        assert (src / rel).read_bytes() == (FIRMWARE / rel).read_bytes()
        assert not (src / rel).is_symlink()
    assert not list(src.rglob("*_main.c")) or [p.name for p in src.rglob("*_main.c")] == ["app_main.c"]
    assert sorted(p.name for p in (src / "model").iterdir()) == [
        "model_config.h", "model_data.cc", "model_data.h", "op_resolver.h"]
    dtype = {"int8": "9", "float32": "0"}[variant]
    assert f"#define ESPT_INPUT_DTYPE {dtype} " in (src / "model" / "model_config.h").read_text()
    fig = info["fit"]
    assert fig["app_used_bytes"] == info["model_bytes"] + b.firmware_bytes_estimate <= fig["app_partition_bytes"]
    assert info["arena"]["total"] <= b.arena_budget_bytes
    assert tiny_run.stage("export")["projects"][f"{variant}-{board}-tflm"]["path"] == str(out)


def test_arena_is_the_host_recording_plus_the_stated_margin(tiny_run, tmp_path):
    from esptiny.model import tflm
    data = tiny_run.variant_path("int8").read_bytes()
    recorded = tflm.arena_bytes(data)["total"]
    totals = {}
    for board in boards.BOARDS:
        info = export_stage.export(tiny_run, "int8", board, out=tmp_path / board)
        a = info["arena"]
        assert a["recorded"] == recorded
        assert a["total"] % 16 == 0 and a["total"] >= recorded + a["margin"]
        # scratch buffers live only during their op: the margin covers the largest, not the sum
        sizes = [s["bytes"] for s in a["scratch"]]
        if len(sizes) > 1:
            assert max(sizes) < a["margin"] < sum(sizes)
        h = (tmp_path / board / "src" / "model" / "model_config.h").read_text()
        assert f"#define ESPT_ARENA_BYTES {a['total']}u" in h
        assert f"TFLite-Micro's recorded arena on the host (reference kernels): {recorded} B." in h
        totals[board] = a
    # ESP32 and ESP32-C3 run ESP-NN's generic kernels (no conv scratch); the S3's SIMD
    # kernels ask for one scratch buffer per int8 convolution
    convs = sum(op.name == "CONV_2D" for op in firmware_model.read_model(data).graph.ops)
    assert convs >= 1
    assert sum(s["op"] == "CONV_2D" for s in totals["esp32s3"]["scratch"]) == convs
    assert [s["op"] for s in totals["esp32"]["scratch"]] == [s["op"] for s in totals["esp32c3"]["scratch"]]
    assert not [s for s in totals["esp32"]["scratch"] if s["op"] == "CONV_2D"]
    assert totals["esp32s3"]["total"] > totals["esp32"]["total"]


def test_margin_is_the_largest_request_not_the_sum():
    # worked by hand: requests of 3,000 B and 5,000 B never live at once, so the margin is
    # 5,000 aligned to 5,008, + 16 B alignment, + 2 x 32 B bookkeeping, + 1,024 B slack
    plan = fit.ArenaPlan(recorded=10_000, scratch=[fit.Scratch("CONV_2D", 0, 3000, "a"),
                                                   fit.Scratch("CONV_2D", 2, 5000, "b")])
    assert plan.margin == 6_112
    assert plan.total == 16_112  # 10,000 + 6,112, already a multiple of 16
    assert fit.ArenaPlan(recorded=10_001).total == 11_040  # no request: slack only, rounded up
    assert fit.ArenaPlan(recorded=10_000, scratch=plan.scratch, engine="aot").margin == 0


def test_s3_conv_scratch_covers_espnn_formulas():
    # 3x3x16 -> 32 conv on a 14x14 input, SAME padding: esp-nn's esp32s3 general path
    # needs padded input 16*16*16 + 16-byte-row filter copy 32*3*48 + window + 4*32 + 64,
    # its 3x3 path 144 + 32*144 + 4*32 + 32; our bound must cover both.
    opts = type("O", (), {"strideW": 1, "strideH": 1})()
    n, _ = fit._conv_s3((1, 14, 14, 16), (32, 3, 3, 16), (1, 14, 14, 32), opts)
    assert n >= 16 * 16 * 16 + 32 * 3 * 48 + 144 + 4 * 32 + 64
    assert n >= 144 + 32 * 144 + 4 * 32 + 32
    n, _ = fit._depthwise_s3((1, 10, 10, 8), (1, 3, 3, 8), (1, 10, 10, 8), opts)
    assert n == 2_464  # 2 x (3x3x8 filter + 12x12x8 padded input) + 16, esp-nn's esp32s3 depthwise


# ---- refusals, fit checks, atomicity ---------------------------------------------------

@pytest.mark.parametrize("variant,why", [("float16", "float16 weights"), ("dynamic", "dynamic-range")])
def test_float16_and_dynamic_are_refused_with_the_reason(variant, why, mlp_run, tmp_path):
    out = tmp_path / "p"
    with pytest.raises(UserError) as e:
        export_stage.export(mlp_run, variant, "esp32", out=out)
    msg = str(e.value)
    assert f"variant '{variant}' cannot run on the board" in msg and why in msg
    assert "TFLite-Micro has no kernels" in msg and "export int8" in msg and "\n" not in msg
    assert not out.exists() and no_leftovers(tmp_path) == []


def test_bad_names_are_one_line(tiny_run, tmp_path):
    cases = [(dict(variant="int4"), "no variant 'int4'"), (dict(board="esp8266"), "unknown board 'esp8266'"),
             (dict(engine="onnx"), "unknown engine 'onnx'"),
             (dict(board="esp32", console="usb-serial-jtag"), "esp32 has no usb-serial-jtag link")]
    for kwargs, text in cases:
        with pytest.raises(UserError, match=re.escape(text)):
            export_stage.export(tiny_run, **{"variant": "int8", **kwargs}, out=tmp_path / "p")
    assert not (tmp_path / "p").exists()


def test_fit_accepts_the_demo_model_and_refuses_too_big(tiny_run):
    data = tiny_run.variant_path("int8").read_bytes()
    graph = firmware_model.read_model(data).graph
    for b in boards.BOARDS.values():
        plan = fit.plan_arena(20_000, graph, b)
        fig = fit.check(b, len(data), plan, "int8")
        assert fig["flash_headroom_bytes"] > 0 and fig["ram_headroom_bytes"] > 0
    b = boards.get("esp32")
    with pytest.raises(UserError) as e:  # a model bigger than the 4 MB flash's app partition
        fit.check(b, 4_000_000, fit.ArenaPlan(recorded=10_000), "float32")
    msg = str(e.value)
    assert "4,000,000 B" in msg and "4,128,768 B" in msg and "ways out" in msg and "\n" not in msg
    with pytest.raises(UserError) as e:  # an arena bigger than the RAM planned for it
        fit.check(b, len(data), fit.ArenaPlan(recorded=200_000), "float32")
    msg = str(e.value)
    assert "201,024 B" in msg and "112,640 B" in msg and "PSRAM" in msg and "esp32s3" in msg


def test_too_big_for_the_board_writes_nothing_and_keeps_the_old_export(tiny_run, tmp_path, monkeypatch):
    out = tmp_path / "p"
    export_stage.export(tiny_run, "int8", "esp32", out=out)
    before = (out / "esptiny-export.json").read_text()
    small = dataclasses.replace(boards.BOARDS["esp32"], arena_budget_bytes=4096)
    monkeypatch.setitem(boards.BOARDS, "esp32", small)
    with pytest.raises(UserError, match=r"does not fit the 4,096 B of esp32's internal RAM"):
        export_stage.export(tiny_run, "float32", "esp32", out=out)
    assert (out / "esptiny-export.json").read_text() == before  # the earlier project is intact
    with pytest.raises(UserError):
        export_stage.export(tiny_run, "float32", "esp32", out=tmp_path / "q")
    assert not (tmp_path / "q").exists() and no_leftovers(tmp_path) == []


def test_reexport_replaces_an_export_but_never_other_directories(tiny_run, tmp_path):
    out = tmp_path / "p"
    export_stage.export(tiny_run, "int8", "esp32", out=out)
    (out / "stale.txt").write_text("from an older export")
    export_stage.export(tiny_run, "float32", "esp32s3", out=out)
    assert not (out / "stale.txt").exists() and '"variant": "float32"' in (out / "esptiny-export.json").read_text()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="exists and is not an esptiny export"):
        export_stage.export(tiny_run, "int8", "esp32", out=mine)
    assert (mine / "notes.txt").read_text() == "keep me" and no_leftovers(tmp_path) == []


def test_into_repo_writes_only_the_model_files(tiny_run, tmp_path, monkeypatch):
    fw = tmp_path / "firmware"
    monkeypatch.setattr(export, "REPO_MODEL_DIR", fw / "model")
    info = export_stage.export(tiny_run, "int8", "esp32c3", into_repo=True)
    assert sorted(p.name for p in (fw / "model").iterdir()) == [
        "esptiny-export.json", "model_config.h", "model_data.cc", "model_data.h", "op_resolver.h"]
    # one model/ serves every env of the top-level platformio.ini: the largest arena
    s3 = export_stage.export(tiny_run, "int8", "esp32s3", out=tmp_path / "s3")
    assert info["arena"]["total"] == s3["arena"]["total"]


def test_repository_build_files_are_the_rendered_templates():
    stale = [str(p.relative_to(REPO)) for p, text in export.repo_files().items()
             if not p.exists() or p.read_text() != text]
    assert stale == [], "regenerate with: python -c 'from esptiny.targets import export; " \
                        "[p.write_text(t) for p, t in export.repo_files().items()]'"


def test_aot_engine(tiny_run, tmp_path):
    info = export_stage.export(tiny_run, "int8", "esp32", engine="aot", out=tmp_path / "a")
    src = tmp_path / "a" / "src"
    assert (src / "model" / "model_aot.c").exists() and not (src / "idf_component.yml").exists()
    assert not (src / "model" / "model_data.cc").exists() and (src / "engines" / "aot").is_dir()
    assert info["arena"]["engine"] == "aot"
    aot_h = (src / "model" / "model_aot.h").read_text()
    assert f"#define ESPT_AOT_MODEL_CRC32 {info['model_crc32']}u" in aot_h  # the same model
    assert f"#define ESPT_AOT_ARENA_BYTES {info['arena']['total']}u" in aot_h
    assert not list((src / "engines" / "aot").glob("*_main.c"))  # host-only programs stay out


# ---- the command line, PlatformIO offline, the CI workflow -----------------------------

def esptiny(*args):
    return subprocess.run([sys.executable, "-m", "esptiny", *args], capture_output=True, text=True)


def test_cli_export_errors_are_one_line(mlp_run, tmp_path):
    r = esptiny("export", str(mlp_run.path), "--variant", "float16", "--out", str(tmp_path / "p"))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("esptiny: error: variant 'float16'")


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """A PlatformIO with nothing installed and a registry that does not answer (a closed
    port on this machine), whatever the network here: the offline path, every time."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    monkeypatch.setattr(build, "REGISTRY_HOST", "127.0.0.1")
    monkeypatch.setattr(build, "REGISTRY_PORT", closed)
    monkeypatch.setenv("PLATFORMIO_CORE_DIR", str(tmp_path / "platformio"))
    for proxy in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)


def test_cli_build_offline_is_one_line_and_fast(tiny_run, tmp_path, offline):
    from click.testing import CliRunner
    from esptiny.cli import main
    out = tmp_path / "p"
    export_stage.export(tiny_run, "int8", "esp32", out=out)
    for args in (["build", str(out)], ["flash", str(out), "--port", "/dev/ttyUSB9"]):
        t0 = time.monotonic()
        r = CliRunner().invoke(main, args)
        assert time.monotonic() - t0 < 10
        assert r.exit_code == 1
        assert r.output.count("\n") == 1 and "Traceback" not in r.output
        assert "registry (127.0.0.1) is unreachable" in r.output
    r = esptiny("build", str(tmp_path / "nowhere"))
    assert r.returncode == 1 and r.stderr == f"esptiny: error: {tmp_path / 'nowhere'}: no platformio.ini " \
                                              "(export a project with `esptiny export RUN`)\n"


def test_real_pio_run_offline_is_cut_at_the_timeout_with_one_line(tiny_run, tmp_path, monkeypatch):
    """pio itself (no pre-check, nothing installed): offline it retries for about a minute,
    online it starts a download; either way the timeout ends it in one line."""
    monkeypatch.setenv("PLATFORMIO_CORE_DIR", str(tmp_path / "platformio"))
    out = tmp_path / "p"
    export_stage.export(tiny_run, "int8", "esp32c3", out=out)
    lines = []
    with pytest.raises(UserError) as e:
        build.run_pio(out, [], echo=lines.append, timeout=6, precheck=False)
    msg = str(e.value)
    assert msg.startswith("`pio run` did not finish within 6 s") and "\n" not in msg
    assert "Installing platformio/espressif32 @ 6.13.0" in msg
    assert any("Processing esp32c3" in ln for ln in lines)


def test_pio_failures_summarize_to_the_line_that_matters():
    offline = ["Processing esp32 (platform: platformio/espressif32 @ 6.13.0; framework: espidf; board: esp32dev)",
               "-" * 80, "Platform Manager: Installing platformio/espressif32 @ 6.13.0", "HTTPClientError: "]
    assert build.summarize(offline) == (
        "PlatformIO could not reach its registry to install platformio/espressif32 @ 6.13.0 (offline?); "
        "connect once so it can download the platform, ESP-IDF and the components, then build again")
    compile_error = ["Compiling .pio/build/esp32/src/engines/tflm/engine_tflm.cc.o",
                     "src/engines/tflm/engine_tflm.cc:12:10: fatal error: op_resolver.h: No such file or directory",
                     "compilation terminated.", "*** [.pio/build/esp32/src/engines/tflm/engine_tflm.cc.o] Error 1",
                     "========================= [FAILED] Took 3.21 seconds ========================="]
    # The compiler's own first error, not make's "*** ... Error 1" after it.
    assert build.summarize(compile_error) == compile_error[1]
    linker = ["Linking .pio/build/esp32/firmware.elf",
              "ld: firmware.elf section `.dram0.bss' will not fit in region `dram0_0_seg'",
              "ld: region `dram0_0_seg' overflowed by 43112 bytes", "collect2: error: ld returned 1 exit status",
              "*** [.pio/build/esp32/firmware.elf] Error 1"]
    assert build.summarize(linker) == linker[1]
    assert build.summarize(["Warning! something", "Error: Unknown board ID 'esp32xx'"]) == \
        "Error: Unknown board ID 'esp32xx'"


def test_ci_workflow_is_valid_and_builds_every_board():
    wf = yaml.safe_load((REPO / ".github" / "workflows" / "firmware.yml").read_text())
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` as true
    assert "push" in on and "pull_request" in on
    job = wf["jobs"]["build"]
    assert job["strategy"]["matrix"]["board"] == list(boards.BOARDS)
    runs = "\n".join(s.get("run", "") for s in job["steps"])
    uses = [s["uses"] for s in job["steps"] if "uses" in s]
    assert "actions/checkout@v4" in uses and "actions/setup-python@v5" in uses
    assert "pip install -e ." in runs
    assert "esptiny export runs/ci --variant int8 --board ${{ matrix.board }} --out build/fw-${{ matrix.board }}" in runs
    assert "pio run -d build/fw-${{ matrix.board }}" in runs
    assert "--into-repo" in runs and "pio run -e ${{ matrix.board }}" in runs
    assert re.search(r"esptiny train runs/ci .*--epochs 1", runs) and "esptiny compress runs/ci --methods int8" in runs
