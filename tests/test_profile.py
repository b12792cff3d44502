"""The per-layer profile (docs/protocol.md, "PROFILE"): the AOT engine's records (what each
covers, no counter read in a plain build), `esptiny bench --profile` on the emulated RV32
board (exact instructions per step that add up to the inference) and on the native
firmware (host nanoseconds, labelled so), a port that cannot profile refused up front."""
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner
from esptiny import aot
from esptiny.aot import host
from esptiny.cli import main
from esptiny.model.reader import Graph
from esptiny.stages import evaluate, report
from esptiny.stages.run import Run
from needs import require


@pytest.fixture(scope="module")
def small_model():
    """conv + max pool (fused), conv, flatten (an alias), dense, softmax: every kind of record."""
    from esptiny.stages.compress import ptq
    from esptiny.tf import keras
    L = keras.layers
    keras.utils.set_random_seed(0)
    m = keras.Sequential([L.Input((12, 12, 1)), L.Conv2D(4, 3, activation="relu"), L.MaxPooling2D(),
                          L.Conv2D(8, 3), L.Flatten(), L.Dense(10), L.Softmax()])
    return ptq.int8(m, np.random.default_rng(0).random((8, 12, 12, 1), dtype=np.float32))


def test_records_cover_every_op_once(small_model):
    info = aot.compile_model(small_model).info
    assert info["code_ops"] == ["CONV_2D", "MAX_POOL_2D", "CONV_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"]
    recs = info["profile_steps"]
    assert [r["ops"] for r in recs] == [[0, 1], [2], [3], [4], [5]]
    assert [r["kernel_step"] for r in recs] == [0, 1, None, 2, 3]
    # live activations: the flattened 3x3x8 conv output (72 B) alone across the alias; the
    # dense layer reads it and writes 10 B; softmax reads those 10 and writes 10.
    assert [r["arena_live_bytes"] for r in recs[2:]] == [72, 72 + 10, 10 + 10]
    # the fused step holds its input (12x12x1), its pooled output (5x5x4) and its scratch
    scratch = info["steps"][0]["scratch_bytes"]
    assert scratch > 0 and recs[0]["arena_live_bytes"] == 144 + 100 + scratch


def _compile(gen, *flags):
    gcc = require("gcc")
    obj = gen / f"model{len(flags)}.o"
    args = [gcc, *host.CFLAGS, "-O2", *host.include_flags(gen), *flags]
    subprocess.run([*args, "-c", str(gen / "model_aot.c"), "-o", str(obj)], check=True)
    pre = subprocess.run([*args, "-E", str(gen / "model_aot.c")], check=True, capture_output=True,
                         text=True).stdout
    undefined = subprocess.run(["nm", "-u", str(obj)], check=True, capture_output=True, text=True).stdout
    return pre, set(undefined.split()) - {"U"}


def test_plain_build_reads_no_counter(small_model, tmp_path):
    """Profiling is a compile-time switch: without it the invoke is the kernel calls alone."""
    info = aot.generate(small_model, tmp_path)
    plain_c, plain_syms = _compile(tmp_path)
    prof_c, prof_syms = _compile(tmp_path, "-DESPT_AOT_PROFILE=1")
    invoke = plain_c[plain_c.index("void espt_aot_invoke(void)"):]
    assert "profile" not in invoke and "espt_board" not in plain_c
    assert not {s for s in plain_syms if "profile" in s or "board" in s}
    assert {s for s in prof_syms if "profile" in s} == {"espt_aot_profile_begin", "espt_aot_profile_mark"}
    prof_invoke = prof_c[prof_c.index("void espt_aot_invoke(void)"):]
    marks = re.findall(r"espt_aot_profile_mark\((\d+)u?\)", prof_invoke)
    assert [int(k) for k in marks] == list(range(len(info["profile_steps"])))
    assert prof_invoke.count("espt_aot_profile_begin()") == 1


def _bench_profile(run, port, n=2):
    r = CliRunner().invoke(main, ["bench", str(run.path), "--variant", "int8", "--port", port,
                                  "-n", "20", "--profile", str(n)])
    assert r.exit_code == 0, r.output
    entry = run.stage("bench")["results"][f"int8@{port}"]
    assert entry["profile"]["plots"] and run.file(entry["profile"]["plots"][0]).stat().st_size > 1000
    return json.loads(run.file(entry["profile"]["path"]).read_text()), r.output


def _check_steps(doc, model):
    g = Graph(model)
    fused = sum(len(s["ops"]) - 1 for s in doc["steps"])
    assert len(doc["steps"]) == len(g.ops) - fused  # every op once, a fused pair counted once
    assert [k for s in doc["steps"] for k in s["ops"]] == list(range(len(g.ops)))
    assert [n for s in doc["steps"] for n in s["op_names"]] == [op.name for op in g.ops]
    assert sum(s["macs"] for s in doc["steps"]) == g.macs()
    assert abs(sum(s["share"] for s in doc["steps"]) - 1) < 1e-9


def test_bench_profile_on_the_emulated_board(tiny_run):
    """Exact instruction counts per step; they add up to the whole inference within 2%."""
    require("riscv64-unknown-elf-gcc", "gcc-riscv64-unknown-elf")
    require("qemu-system-riscv32", "qemu-system-misc")
    doc, out = _bench_profile(tiny_run, "qemu-rv32")
    model = tiny_run.variant_path("int8").read_bytes()
    _check_steps(doc, model)
    assert doc["unit"] == "instructions" and doc["source"].startswith("emulated")
    assert doc["engine"] == "aot" and doc["images"] == 2
    ratio = doc["steps_total"] / doc["inference"]
    assert 0.98 <= ratio <= 1.0, ratio
    convs = [s for s in doc["steps"] if s["op_names"][0] == "CONV_2D"]
    assert convs and all(s["counter_per_mac"] > 1 for s in convs)
    assert all(s["counter"] > 0 and s["arena_live_bytes"] > 0 for s in doc["steps"])
    assert "profile:" in out and "instructions" in out


@pytest.fixture(scope="module")
def native_profiled(tiny_run, tmp_path_factory):
    """A copy of the tiny run, evaluated, benched on the native firmware with --profile 1,
    then reported."""
    require("gcc")
    dst = tmp_path_factory.mktemp("profiled") / "run"
    shutil.copytree(tiny_run.path, dst)
    run = Run(dst)
    evaluate.evaluate(run, variants=["int8"])
    doc, out = _bench_profile(run, "native", n=1)
    report.report(run)
    return run, doc, out


def test_bench_profile_on_the_native_firmware(native_profiled):
    """Host nanoseconds, named as such everywhere."""
    run, doc, out = native_profiled
    _check_steps(doc, run.variant_path("int8").read_bytes())
    assert doc["unit"] == "nanoseconds" and "not a CPU counter" in doc["source"]
    assert 0 < doc["steps_total"] <= doc["inference"]
    summary = run.stage("bench")["results"]["int8@native"]["profile"]["summary"]
    assert summary["unit"] == "nanoseconds" and summary["steps"] == len(doc["steps"])
    assert "nanoseconds" in out and "not a CPU counter" in out


def test_report_shows_where_the_time_goes(native_profiled):
    run, doc, _ = native_profiled
    data = json.loads(run.file("report.json").read_text())
    assert data["profiles"]["int8@native"]["steps"] == doc["steps"]
    md = run.file("report.md").read_text()
    profiles = md.split("## Where the time goes (per-layer profile)", 1)[1].split("\n## ", 1)[0]
    section = profiles.split("### int8@native", 1)[1].split("\n### ", 1)[0]  # (qemu-rv32's may be there too)
    header = "| step | op | shapes | MACs | nanoseconds | nanoseconds per MAC | share | live arena B |"
    assert header in section and "not a CPU counter" in section
    rows = [line for line in section.splitlines() if re.match(r"\| \d+ \|", line)]
    assert len(rows) == len(doc["steps"])
    assert rows[0].startswith("| 0 | CONV_2D + MAX_POOL_2D | 1x28x28x1 -> ")
    html = run.file("report.html").read_text()
    assert html.count('alt="where the time goes, int8@native"') == 1
    png = run.file(doc_plot(run))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def doc_plot(run):
    return run.stage("bench")["results"]["int8@native"]["profile"]["plots"][0]


def test_profile_refused_on_the_virtual_board(tiny_run):
    r = CliRunner().invoke(main, ["bench", str(tiny_run.path), "--port", "sim", "-n", "5", "--profile"])
    assert r.exit_code == 1
    assert r.output.strip().splitlines()[-1] == (
        "esptiny: error: --profile: --port sim does not answer PROFILE requests yet; profile on "
        "--port native or --port qemu-rv32, or a board flashed with a profiling build")


def test_host_reads_the_c_devices_records(tmp_path):
    """link/profiling.py against the firmware's own core over a pty: the POSIX board with
    the test engine (firmware/tests/test_engine.c: 3 steps, the second a fused pair)."""
    from esptiny import paths, toolchain
    from esptiny.devices import native
    from esptiny.link import client, profiling
    from esptiny.link import protocol as P
    require("gcc")
    exe = tmp_path / "fw"
    toolchain.run([require("make"), "-s", "-C", str(paths.FIRMWARE), "native", f"OUT={exe}"],
                  "building the test firmware")
    with native.serve(exe) as pty:
        sess = client.Session(pty, "test", client.Settings(reset=False), paced=False)
        try:
            sess.connect()
            with pytest.raises(profiling.ProfileRefused, match="no inference yet"):
                profiling.read_steps(sess)
            p = profiling.profile(sess, bytes(range(16)))
        finally:
            sess.close()
    assert p.unit_name == "nanoseconds" and p.inference.output == bytes((120 + i) % 256 for i in range(10))
    assert [s.op_indices for s in p.steps] == [(0,), (2, 3), (4,)]
    assert [s.op_codes for s in p.steps] == [(0,), (7, 17), (14,)]
    assert [s.counter for s in p.steps] == [1000, 2001 + (1 << 33), 3004 + (2 << 33)]
    assert [s.arena_live_bytes for s in p.steps] == [64, 128, 192]
    assert P.PROFILE_STATE_NAMES[P.PROFILE_RECORDED] == "recorded"
