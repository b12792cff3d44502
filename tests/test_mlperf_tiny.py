"""The MLPerf Tiny protocol end to end: the firmware (firmware/core/mlperf_tiny.c) on the
native board and on the emulated RV32 core, driven by `esptiny bench --protocol
mlperf-tiny` as the official runner drives it; the runner's scores; results.txt; the
export's --protocol. The look-alike tasks come from tests/mlperf_tasks.py."""
import json
import re
import struct
import subprocess
import time

import mlperf_tasks
import numpy as np
import pytest
from click.testing import CliRunner
from esptiny.cli import main
from esptiny.devices import native, ports
from esptiny.errors import UserError
from esptiny.link import mlperf_tiny as wire
from esptiny.paths import FIRMWARE
from esptiny.stages.bench import mlperf_tiny as mt
from needs import require

N_IMAGES = 12
WINDOW_S = "0.05"


# ---- the runner's scores -------------------------------------------------------------

def pairwise_auc(y, s):
    """AUC by its definition: P(score of a positive > score of a negative), ties 1/2."""
    pos, neg = s[y == 1], s[y == 0]
    return float(np.mean([(p > q) + 0.5 * (p == q) for p in pos for q in neg]))


def test_auc_is_the_roc_area():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    s = np.round(rng.normal(y * 0.7, 1.0), 1)  # rounded: many ties
    assert mt.auc(y, s) == pytest.approx(pairwise_auc(y, s), abs=1e-12)
    assert mt.auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == 0.75
    assert np.isnan(mt.auc(np.array([1, 1]), np.array([0.2, 0.3])))


def test_anomaly_scores_are_the_runners_threshold_sweep():
    # Scores 0..9; anomalies 6..9: a threshold between 5 and 6 separates them.
    s = np.arange(10, dtype=np.float64)
    y = (s >= 6).astype(int)
    r = mt.anomaly_scores(s, y)
    assert r["auc"] == 1.0
    assert r["top1_percent"] == pytest.approx(100.0, abs=1e-5)
    # One anomaly below every normal: best is threshold 0 -> pred 1..9 positive:
    # tp 3, fp 6, fn 1 -> (3/9 + 3/4) / 2; or thresholds above 6 -> ... the sweep's max.
    y2 = np.array([1, 0, 0, 0, 0, 0, 0, 1, 1, 1])
    r2 = mt.anomaly_scores(s, y2)
    best = 0.0
    for thr in 0 + np.arange(0, 1, 0.01) * 9:
        pred = s > thr
        tp, fp, fn = (pred & (y2 == 1)).sum(), (pred & (y2 == 0)).sum(), (~pred & (y2 == 1)).sum()
        best = max(best, 50 * (tp / (tp + fp + 1e-8) + tp / (tp + fn + 1e-8)))
    assert r2["top1_percent"] == pytest.approx(best) and best == pytest.approx(100 * (1 + 0.75) / 2, abs=1e-5)
    assert r2["auc"] == pytest.approx(pairwise_auc(y2, s))


def test_classification_scores_normalize_then_argmax():
    results = [[2.0, 1.0, 1.0], [0.1, 0.1, 0.8], [0.5, 0.4, 0.1], [0.2, 0.7, 0.1]]
    y = np.array([0, 2, 1, 1])
    r = mt.classification_scores(results, y)
    assert r["top1_percent"] == 75.0
    p = np.array([np.array(v) / sum(v) for v in results])
    want = np.mean([pairwise_auc((y == c).astype(int), p[:, c]) for c in range(3)])
    assert r["auc"] == pytest.approx(want)


def test_results_txt_is_the_runners_format():
    perf = {"windows": [{"iterations": 20, "elapsed_us": 10_500_000 + k, "throughput": 20 / (10.5 + k / 1e6)}
                        for k in range(5)], "median_throughput_per_s": 1.9047619}
    text = mt.results_txt(perf, {"top1_percent": 85.25, "auc": 0.91234}, when=0)
    lines = text.splitlines()
    assert len(lines) == 5 * 5 + 3 + 2
    assert lines[:5] == ["Performance results for window 1", "    # Inferences : 20",
                         "    Runtime: 10.5 sec.", f"    Throughput: {20 / 10.5} inf./sec.",
                         "    Runtime requirements have been met."]
    assert re.fullmatch(r"\d{4}\.\d{6} ulp-mlperf: Median throughput is      1\.905 inf\./sec\.", lines[26])
    assert lines[25] == lines[27] and lines[25].endswith("ulp-mlperf: " + "-" * 57)
    assert lines[28].endswith("ulp-mlperf: Top 1% = 85.2") and lines[29].endswith("ulp-mlperf: AUC = 0.912")


def test_limits_come_from_the_firmware_header():
    assert wire.limits() == {"CMD_SIZE": 80, "DB_BYTES": 96 * 96 * 3, "OUT_BYTES": 4096, "RX_CHUNK": 256, "TX_BYTES": 128,
                             "MAX_COUNT": 999_999_999}


def test_static_buffers_are_what_the_compiler_allocates(tmp_path):
    """The fit check's figure for the firmware's static buffers equals the sizes gcc gives
    them in firmware/core/mlperf_tiny.c's object."""
    require("gcc")
    obj = tmp_path / "mlperf_tiny.o"
    core = FIRMWARE / "core"
    subprocess.run(["gcc", "-c", "-O2", f"-I{core}", "-o", str(obj), str(core / "mlperf_tiny.c")], check=True)
    sizes = {}
    for line in subprocess.run(["nm", "-S", str(obj)], capture_output=True, text=True, check=True).stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "bBdD":
            sizes[parts[3]] = int(parts[1], 16)
    buffers = ["cmd", "db", "staged", "out", "rx", "tx"]
    assert sum(sizes[n] for n in buffers) == wire.static_bytes() == 39_121
    assert sum(sizes.values()) - wire.static_bytes() < 256  # the rest: a few counters and pointers


def test_fit_takes_the_buffers_from_the_arena_budget():
    from esptiny.targets import fit
    from esptiny.targets.boards import BOARDS
    b = BOARDS["esp32"]  # 110 KB = 112,640 B planned for the arena
    plan = fit.ArenaPlan(recorded=100_000, engine="aot")
    assert fit.check(b, 50_000, plan, "int8")["ram_headroom_bytes"] == 12_640
    with pytest.raises(UserError, match=r"does not fit the 73,519 B of esp32's internal RAM planned for it, "
                                        r"112,640 B less 39,121 B for the MLPerf Tiny firmware's buffers \("):
        fit.check(b, 50_000, plan, "int8", wire.static_bytes(), "the MLPerf Tiny firmware's buffers")
    small = fit.check(b, 50_000, fit.ArenaPlan(recorded=70_000, engine="aot"), "int8", wire.static_bytes(), "x")
    assert (small["arena_budget_bytes"], small["protocol_static_bytes"], small["ram_headroom_bytes"]) == (73_519, 39_121, 3_519)


def test_each_protocol_builds_apart(tmp_path):
    target = ports.Target(tmp_path / "m.tflite", tmp_path, wire.PROTOCOL)
    assert target.build_for("native") == tmp_path / "native-mlperf-tiny"
    assert ports.Target(tmp_path, tmp_path).build_for("native") == tmp_path / "native"


# ---- end to end ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ad_run(tmp_path_factory):
    return mlperf_tasks.make_run(tmp_path_factory.mktemp("ad01") / "run", "ad01", N_IMAGES)


@pytest.fixture(scope="module")
def kws_run(tmp_path_factory):
    return mlperf_tasks.make_run(tmp_path_factory.mktemp("kws01") / "run", "kws01", N_IMAGES)


def bench(run, port, *extra):
    r = CliRunner().invoke(main, ["bench", str(run.path), "--protocol", "mlperf-tiny", "--port", port,
                                  "--window-seconds", WINDOW_S, *extra])
    assert r.exit_code == 0, r.output
    return json.loads(run.file(f"bench/int8-{port}-mlperf-tiny.json").read_text())


def check_counts(s, input_bytes, n_images):
    """Commands and lines exactly as the runner's exchange makes them."""
    per_load = 1 + -(-input_bytes // wire.CHUNK_BYTES)
    perf = s["performance"]
    infers = perf["calibration_infers"] + 5 + perf["reruns"]
    commands = 2 + 6 * per_load + infers + n_images * (per_load + 1)
    assert s["commands"] == commands
    # Lines: boot 4; name 2; profile 3; each load command 1 (m-ready) + 1 (Expecting or
    # load-done); each infer 9 (warm-up start/done, infer-start, 2 laps, cycles, done,
    # results, m-ready).
    loads = 6 + n_images
    db_lines = loads * (per_load + 2)
    assert s["lines"] == 4 + 2 + 3 + db_lines + 9 * (infers + n_images)


def check_native(s, run, task, input_bytes):
    assert s["task"] == task and s["dut_name"] == "esptiny"
    assert s["source"].startswith("native firmware")
    assert s["boot_lines"][0] == "m-timestamp-mode-performance" and s["boot_lines"][2:] == ["m-init-done", "m-ready"]
    acc, perf = s["accuracy"], s["performance"]
    assert acc["images"] == N_IMAGES and acc["identical_to_tflm"] and acc["mismatches"] == 0
    assert len(perf["windows"]) == 5 and not perf["official_windows"]
    assert all(w["elapsed_us"] >= 0.05e6 for w in perf["windows"])
    tp = sorted(w["iterations"] / (w["elapsed_us"] / 1e6) for w in perf["windows"])
    assert perf["median_throughput_per_s"] == tp[2]
    assert perf["latency_ms"] == pytest.approx(1e3 / tp[2])
    check_counts(s, input_bytes, N_IMAGES)
    text = run.file(s["results_txt"]).read_text().splitlines()
    assert len(text) == 5 * 4 + 3 + 2  # no window met the 10 s rule: no "requirements met" line
    assert text[0] == "Performance results for window 1"
    assert f"Median throughput is {perf['median_throughput_per_s']:>10.3f} inf./sec." in text[21]
    assert text[23].endswith(f"Top 1% = {acc['top1_percent']:2.1f}")
    assert run.manifest()["stages"]["mlperf_tiny"]["results"]["int8-native"]["task"] == task


def tflm_outputs(run):
    from esptiny.model import tflite, tflm
    model = run.variant_path("int8").read_bytes()
    in_d, out_d = tflite.io_details(model)
    x = run.test_set("int8").model_inputs(in_d)
    return x, tflm.run(model, x), in_d, out_d


def test_anomaly_detection_on_native(ad_run):
    require("gcc")
    s = bench(ad_run, "native")
    check_native(s, ad_run, "ad01", 640)
    # The scores, from TFLite-Micro's outputs (which the device matched): the AUC by its
    # definition, over 6 normal and 6 anomalous inputs.
    y = mlperf_tasks.test_data("ad01", N_IMAGES)[1]
    x, out, in_d, out_d = tflm_outputs(ad_run)
    scores = np.array([float("%0.3f" % mt.anomaly_score(out[i], x[i], out_d, in_d)) for i in range(N_IMAGES)])
    assert y.sum() == N_IMAGES // 2
    assert s["accuracy"]["auc"] == pytest.approx(pairwise_auc(y, scores))
    # The report's section: the headline and results.txt as written.
    from esptiny.stages import report
    sec = report.mlperf_tiny_sections(ad_run, ad_run.manifest()["stages"]["mlperf_tiny"]["results"])
    assert sec["int8-native"]["results_txt"] == ad_run.file(s["results_txt"]).read_text()
    assert sec["int8-native"]["figures"]["identical_to_tflm"] is True
    assert sec["int8-native"]["figures"]["source"] == s["source"]


def test_keyword_spotting_on_native(kws_run):
    require("gcc")
    s = bench(kws_run, "native")
    check_native(s, kws_run, "kws01", 490)
    y = mlperf_tasks.test_data("kws01", N_IMAGES)[1]
    _, out, _, _ = tflm_outputs(kws_run)
    assert s["accuracy"]["top1_percent"] == pytest.approx(100.0 * np.mean(np.argmax(out, axis=1) == y))


def test_keyword_spotting_on_the_virtual_board(kws_run):
    """The virtual board runs the same C (core/mlperf_tiny.c) with TFLite-Micro's host
    runtime as its engine: every m-results line is TFLite-Micro's."""
    require("gcc")
    s = bench(kws_run, "sim", "--mode", "accuracy")
    acc = s["accuracy"]
    assert acc["identical_to_tflm"] and acc["images"] == N_IMAGES
    assert s["source"].startswith("virtual board") and s["performance"] is None
    y = mlperf_tasks.test_data("kws01", N_IMAGES)[1]
    _, out, _, _ = tflm_outputs(kws_run)
    assert acc["top1_percent"] == pytest.approx(100.0 * np.mean(np.argmax(out, axis=1) == y))


def test_anomaly_detection_on_qemu(ad_run):
    require("riscv64-unknown-elf-gcc", "gcc-riscv64-unknown-elf")
    require("qemu-system-riscv32", "qemu-system-misc")
    s = bench(ad_run, "qemu-rv32", "--mode", "accuracy")
    acc = s["accuracy"]
    assert s["performance"] is None and acc["identical_to_tflm"] and acc["images"] == N_IMAGES
    q = s["qemu"]
    assert q["instructions_per_inference"] == acc["cycles_per_inference_median"] > 100_000
    assert q["esp32c3_estimate_ms"] == pytest.approx(q["instructions_per_inference"] / 160e3)
    assert s["source"].startswith("emulated core")
    # Accuracy mode alone: name, profile, then per image its load and one infer.
    per_load = 1 + -(-640 // wire.CHUNK_BYTES)
    assert s["commands"] == 2 + N_IMAGES * (per_load + 1)
    text = ad_run.file(s["results_txt"]).read_text().splitlines()
    assert len(text) == 2 and "Top 1% = " in text[0] and "AUC = " in text[1]


def test_bad_commands_get_errors(ad_run):
    """The wire itself, on the native firmware: e-[...] for what the API refuses, and
    m-ready after each."""
    require("gcc")
    from esptiny.model import tflite
    model = ad_run.variant_path("int8").read_bytes()
    exe = native.build(model, ad_run.path / "build" / "int8" / "native-mlperf-tiny", wire.PROTOCOL)
    with native.serve(exe) as path:
        dut = wire.Dut(path, timeout=10.0)
        try:
            assert dut.wait_boot(10.0)[-1] == "m-ready"
            cases = {"bogus": "e-[Unknown command: bogus]",
                     "db load 2561": "e-[db load 2561 exceeds the input, at most 2560 bytes]",
                     "db 00": "e-[db HEX needs a 'db load N' first]",
                     "infer 0 0": "e-[Inference iterations must be >0]",
                     "infer 1 0": "e-[Input incomplete: 0 of 0 bytes loaded]",
                     "results": "e-[No results: run 'infer N W' first]",
                     "x" * 80: f"e-[Unknown command: {'x' * 80}]"}
            for cmd, err in cases.items():
                with pytest.raises(wire.DeviceError) as e:
                    dut.command(cmd)
                assert str(e.value).endswith(err), cmd
            assert dut.counts.errors == list(cases.values())
            # Over 80 characters: the device refuses it (the host refuses to send it).
            dut.port.write(b"y" * 81 + b"%")
            assert dut._read_line(10.0 + time.monotonic()) == "e-[Command longer than 80 characters]"
            assert dut._read_line(10.0 + time.monotonic()) == "m-ready"
            # The floats form: 640 float32 values, quantized on the device.
            in_d, _ = tflite.io_details(model)
            values = np.linspace(-50, -10, 640, dtype=np.float32)
            dut.load(struct.pack("<640f", *values))
            r = dut.infer(1, 0)
            assert len(r.results) == 1 and r.results[0] >= 0.0 and r.warmups == 0
            assert r.lines[:3] == ["m-warmup-start-0", "m-warmup-done", "m-infer-start-1"]
            assert dut.name() == "esptiny" and dut.profile() == {
                "profile": "ULPMark for tinyML Firmware V0.0.1", "model": "ad01"}
        finally:
            dut.close()
    assert in_d["shape"].tolist() == [1, 640]


def test_bench_options_refused(ad_run):
    r = CliRunner().invoke(main, ["bench", str(ad_run.path), "--protocol", "mlperf-tiny",
                                  "--port", "native", "--port", "native"])
    assert r.exit_code != 0 and "one --port" in r.output
    r = CliRunner().invoke(main, ["bench", str(ad_run.path), "--protocol", "mlperf-tiny", "--port", "sim",
                                  "--resume"])
    assert r.exit_code != 0 and "no --resume" in r.output and "Traceback" not in r.output


# ---- export ----------------------------------------------------------------------------

def vww_sized_model() -> bytes:
    """A small int8 model with visual wake words' input (96x96x3: 27,648 bytes)."""
    from esptiny.stages.compress import ptq
    from esptiny.tf import keras, seed
    seed(5)
    inp = keras.layers.Input((96, 96, 3))
    x = keras.layers.AveragePooling2D(8)(keras.layers.Conv2D(4, 3, strides=2, padding="same")(inp))
    out = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(x))
    rep = np.random.default_rng(0).random((16, 96, 96, 3), dtype=np.float32)
    return ptq.int8(keras.Model(inp, out), rep)


def test_export_protocol(tmp_path):
    from esptiny.targets import export
    blob = vww_sized_model()
    # esptiny's protocol carries the 27,648-byte input in pieces: it exports too
    assert export.export_project(blob, tmp_path / "esptiny", "int8", "esp32c3", "aot")["protocol"] == "esptiny"
    info = export.export_project(blob, tmp_path / "mlperf", "int8", "esp32c3", "aot",
                                 protocol="mlperf-tiny")
    assert info["protocol"] == "mlperf-tiny" and info["input"]["bytes"] == 27648
    assert info["fit"]["protocol_static_bytes"] == 39_121 and info["fit"]["arena_budget_bytes"] == 245_760 - 39_121
    config = (tmp_path / "mlperf" / "src" / "model" / "model_config.h").read_text()
    assert "\n#define ESPT_PROTOCOL_MLPERF_TINY 1\n" in config
    cmake = (tmp_path / "mlperf" / "src" / "CMakeLists.txt").read_text()
    assert 'REGEX "^#define ESPT_PROTOCOL_MLPERF_TINY 1"' in cmake
    for f in ("mlperf_tiny.c", "mlperf_tiny.h", "firmware_main.h"):
        assert (tmp_path / "mlperf" / "src" / "core" / f).exists()
    assert "MLPerf Tiny" in (tmp_path / "mlperf" / "README.md").read_text()
    assert "less 39121 bytes for the MLPerf Tiny firmware's buffers" in (tmp_path / "mlperf" / "README.md").read_text()
    with pytest.raises(UserError, match="unknown protocol 'x'"):
        export.export_project(blob, tmp_path / "x", "int8", "esp32c3", "aot", protocol="x")
    assert not (tmp_path / "x").exists()
    # The default protocol writes no define.
    small = export.export_project(mlperf_tasks.zoo.tflite("ds_cnn"), tmp_path / "kws", "int8", "esp32", "aot")
    assert small["protocol"] == "esptiny"
    assert "ESPT_PROTOCOL_MLPERF_TINY" not in (tmp_path / "kws" / "src" / "model" / "model_config.h").read_text()
