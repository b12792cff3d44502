"""esptiny bench end to end over real pseudo-terminals: the virtual board answers with
TFLite-Micro's outputs, faults and reboots change nothing, partial results resume,
wrong boards and bad ports are one-line errors."""
import json
import os
import shutil
import time

import numpy as np
import pytest
from esptiny.crc import crc32
from esptiny.devices import sim
from esptiny.errors import UserError
from esptiny.model import tflite, tflm
from esptiny.stages import bench
from esptiny.stages.run import Run

N = 500
FAST = {"baud": 0}  # no link pacing: the tests check behaviour, benchmarks/ the speed


@pytest.fixture(scope="module")
def run(tiny_run, tmp_path_factory):
    """A private copy of the tiny run, never exported (so its virtual board stands for the
    default board): benches write into it."""
    dst = tmp_path_factory.mktemp("bench") / "run"
    shutil.copytree(tiny_run.path, dst)
    run = Run(dst)
    m = run.manifest()
    m["stages"].pop("export", None)
    run.manifest_path.write_text(json.dumps(m))
    return run


@pytest.fixture(scope="module")
def model(run):
    return run.variant_path("int8").read_bytes()


@pytest.fixture(scope="module")
def x(run, model):
    d_in, _ = tflite.io_details(model)
    return tflite.to_input(run.dataset().x_test[:N], d_in)


def _doc(run, label="sim"):
    return json.loads(run.file(f"bench/int8-{label}.json").read_text())


@pytest.fixture(scope="module")
def clean(run):
    summary = bench.run_bench(run, "int8", ports=("sim",), limit=N, sim_options=FAST)
    return summary, _doc(run)


def test_device_equals_tflite_micro_on_every_image(run, model, x, clean):
    summary, doc = clean
    tflm_top1 = tflm.run(model, x).reshape(N, -1).argmax(1)
    assert doc["images"] == N and len(doc["predictions"]) == N
    assert doc["predictions"] == tflm_top1.tolist()
    assert doc["device_vs_tflm"] == {"top1_agreement": 1.0, "max_abs_diff": 0.0, "identical_outputs": 1.0}
    assert doc["device_vs_tflite"]["top1_agreement"] >= tflm.TFLITE_MIN_TOP1
    assert doc["device_vs_tflite"]["max_abs_diff"] <= tflm.TFLITE_MAX_STEPS  # int8 steps
    y = run.dataset().y_test[:N]
    # accuracy and confusion against TFLite-Micro's own predictions, counted here
    assert doc["correct"] == int((tflm_top1 == y).sum())
    assert doc["accuracy"] == pytest.approx(float(np.mean(tflm_top1 == y)))
    expected = np.zeros((10, 10), int)
    for t, p in zip(y, tflm_top1):
        expected[t, p] += 1
    assert doc["confusion_matrix"] == expected.tolist()
    board = doc["boards"]["sim"]
    assert board["images_this_run"] == N and board["info"]["chip"] == "virtual-esp32"
    assert not any(k.startswith("retry") for k in board["link"])
    lat = doc["latency_us"]
    assert 0 < lat["min"] <= lat["median"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    # the virtual board: host time, no cycle counter, an unpaced pty (FAST): no figure made up
    assert (doc["source"], doc["latency_source"]) == ("virtual board", "host time (virtual board)")
    assert doc["latency_cycles"] is None and summary["latency_median_cycles"] is None
    assert doc["counter"] is None and doc["counter_note"].startswith("none: the virtual board")
    assert doc["throughput"]["link_efficiency"] is None and board["link_efficiency"] is None
    assert "not paced" in board["link_efficiency_why_none"]
    assert doc["estimate"]["label"].startswith("estimate") and doc["estimate"]["macs"] > 0
    assert summary["accuracy"] == doc["accuracy"] and summary["device_vs_tflm_top1"] == 1.0


def test_results_are_recorded_in_the_manifest(run, clean):
    entry = run.stage("bench")["results"]["int8@sim"]
    assert entry["path"] == "bench/int8-sim.json"
    assert all(run.file(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in entry["plots"])
    s = entry["summary"]
    for key in ("accuracy", "device_vs_tflm_top1", "device_vs_tflite_top1", "latency_median_us",
                "images_per_s", "link_efficiency", "latency_source"):
        assert key in s
    assert not bench.partial_path(run, "int8").exists()


def test_faults_and_a_reboot_change_nothing(run, clean):
    _, want = clean
    faulty = dict(FAST, corrupt_rate=0.001, drop_rate=0.001, reset_after=(200,), seed=1)
    bench.run_bench(run, "int8", ports=("sim",), limit=N, sim_options=faulty, retries=100)
    doc = _doc(run)
    assert doc["predictions"] == want["predictions"]
    assert doc["confusion_matrix"] == want["confusion_matrix"] and doc["images"] == N
    assert doc["device_vs_tflm"]["identical_outputs"] == 1.0
    link = doc["boards"]["sim"]["link"]
    assert link["reboots"] == 1 and link["retry: reboot"] >= 1
    assert link["device crc"] > 0 and sum(v for k, v in link.items() if k.startswith("retry")) > 50


def test_default_options_survive_a_noisy_link(run, clean):
    """0.1% corruption and 0.1% drops each way on ~800-byte requests: with --retries 10 bench
    gave up after 29 images (issue 12). The default policy resends until the link stops
    making progress: every image done once, outputs identical to the clean run's."""
    _, want = clean
    noisy = dict(FAST, corrupt_rate=0.001, drop_rate=0.001, seed=7)
    bench.run_bench(run, "int8", ports=("sim",), limit=N, sim_options=noisy)
    doc = _doc(run)
    assert doc["images"] == N and doc["boards"]["sim"]["images_this_run"] == N
    assert doc["predictions"] == want["predictions"]
    assert doc["device_vs_tflm"]["identical_outputs"] == 1.0  # as the clean run: byte for byte
    link = doc["boards"]["sim"]["link"]
    assert sum(v for k, v in link.items() if k.startswith("retry")) > N  # most requests were hit
    assert "reopens" not in link  # frames kept coming: never mistaken for a hung board


def test_a_hung_board_is_reopened(run, clean):
    """A board that stops answering (hang_after) is reset by reopening the port, once."""
    _, want = clean
    bench.run_bench(run, "int8", ports=("sim",), limit=N, sim_options=dict(FAST, hang_after=150),
                    timeout=0.5)
    doc = _doc(run)
    assert doc["predictions"] == want["predictions"] and doc["images"] == N
    link = doc["boards"]["sim"]["link"]
    assert link["reopens"] == 1 and "failed reopens" not in link


def test_no_progress_gives_up_in_one_line(run, clean, monkeypatch):
    """A board that stays hung (a reset that does not help): the run stops after the stall
    time-out, saying so, and keeps its partial result."""
    from esptiny.link import client
    monkeypatch.setattr(client.Session, "reopen", lambda self: None)
    t0 = time.monotonic()
    with pytest.raises(UserError, match=r"made no progress for 3s .*giving up; \d+/500 images done, "
                                        r"kept in .*--resume") as e:
        bench.run_bench(run, "int8", ports=("sim",), limit=N, sim_options=dict(FAST, hang_after=100),
                        timeout=0.3, stall_timeout=3)
    assert "\n" not in str(e.value) and 3 <= time.monotonic() - t0 < 30
    partial = json.loads(bench.partial_path(run, "int8").read_text())
    assert 90 <= len(partial["done"]) <= 100
    bench.partial_path(run, "int8").unlink()


def test_interrupted_run_resumes(run, clean):
    _, want = clean
    hung = dict(FAST, hang_after=150)
    with pytest.raises(UserError, match=r"no good reply .* kept in .*--resume"):
        bench.run_bench(run, "int8", ports=("sim",), limit=N, sim_options=hung, retries=1, timeout=0.3)
    partial = json.loads(bench.partial_path(run, "int8").read_text())
    done = len(partial["done"])
    assert 100 < done < 150 and partial["images"] == N
    bench.run_bench(run, "int8", ports=("sim",), limit=N, sim_options=FAST, resume=True)
    doc = _doc(run)
    assert doc["throughput"]["images_this_run"] == N - done
    assert doc["predictions"] == want["predictions"]
    assert not bench.partial_path(run, "int8").exists()


def test_two_boards_share_the_test_set(run, clean):
    _, want = clean
    bench.run_bench(run, "int8", ports=("sim", "sim"), limit=200, sim_options=FAST)
    doc = _doc(run, "sim+sim2")
    assert doc["predictions"] == want["predictions"][:200]
    per_board = [doc["boards"][b]["images"] for b in ("sim", "sim2")]
    assert sum(per_board) == 200 and min(per_board) > 0
    assert "int8@sim+sim2" in run.stage("bench")["results"]
    assert "int8@sim" in run.stage("bench")["results"]  # merged, not replaced


def test_board_with_another_model_is_refused(run, model, tmp_path):
    other = tmp_path / "other.tflite"
    other.write_bytes(model + b"another build")  # same tensors, other bytes
    crc_board = f"{crc32(model + b'another build'):08x}"
    crc_ours = f"{crc32(model):08x}"
    with sim.start(other, sim.SimOptions(), tmp_path / "build") as url:
        with pytest.raises(UserError, match=f"CRC32 {crc_board}.*CRC32 {crc_ours}"):
            bench.run_bench(run, "int8", ports=(url,), limit=10)


def test_board_with_another_input_is_refused(run, tmp_path):
    with sim.start(run.variant_path("float32"), sim.SimOptions(), tmp_path / "build") as url:
        with pytest.raises(UserError, match=r"input is int8 \(1, 28, 28, 1\) but .* float32"):
            bench.run_bench(run, "int8", ports=(url,), limit=10)


def test_silent_board_is_a_one_line_error(run):
    master, slave = os.openpty()  # a port nobody answers on
    path = os.ttyname(slave)
    try:
        with pytest.raises(UserError, match=f"no READY from {path} within 1.5s"):
            bench.run_bench(run, "int8", ports=(path,), limit=10, ready_timeout=1.5)
    finally:
        os.close(slave)
        os.close(master)


def test_missing_port_via_the_cli(run):
    from click.testing import CliRunner
    from esptiny.cli import main
    r = CliRunner().invoke(main, ["bench", str(run.path), "--port", "/dev/ttyESPTINY-NONE", "-n", "5"])
    assert r.exit_code == 1
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("esptiny: error: cannot open port /dev/ttyESPTINY-NONE")
    assert "Traceback" not in r.output


def test_the_virtual_board_stands_for_the_exported_board(run, tmp_path):
    """After `esptiny export --board esp32c3`, a bench on the virtual board reports the
    ESP32-C3 in INFO and its estimate is the ESP32-C3's."""
    from esptiny.stages.export import export
    export(run, "int8", "esp32c3", out=tmp_path / "fw")
    try:
        s = bench.run_bench(run, "int8", ports=("sim",), limit=20, sim_options=FAST)
        assert s["chip"] == "virtual-esp32c3"
        assert s["estimate_label"].startswith("estimate for ESP32-C3")
    finally:
        m = run.manifest()
        m["stages"].pop("export")
        run.manifest_path.write_text(json.dumps(m))


def test_only_a_boards_results_are_on_device(run, clean):
    """The report groups benches by source: the virtual board's are not "On-device"."""
    from esptiny.stages import report
    groups = report.bench_groups({"bench": run.stage("bench")["results"]})
    titles = [t for t, _, _ in groups]
    assert titles == ["Benchmark on the virtual board (not a device)"]
    assert "int8@sim" in groups[0][2] and groups[0][1].startswith("the virtual board: the firmware's C core")
    fake = {"bench": {"int8@ttyUSB0": {"summary": {"chip": "ESP32-S3", "source": "board"}},
                      **run.stage("bench")["results"]}}
    assert [t for t, _, _ in report.bench_groups(fake)][0] == "On-device benchmark"
