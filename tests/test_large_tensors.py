"""Tensors a frame cannot carry, end to end (docs/protocol.md, "Tensors in pieces"): a
96x96x3 int8 MobileNet (27,648-byte input) and a 640-element autoencoder (640 bytes in and
out) bench on the native firmware and on the emulated RV32 core, every output byte equal to
TFLite-Micro's host runtime's; the native firmware built with a 512-byte max_payload makes
the autoencoder's output travel in pieces too.

`--port sim` runs the same C once the virtual board is the firmware's core (the device
branch); until then the Python virtual board has no pieces and refuses the MobileNet in
one line, which test_sim_waits_for_the_c_core asserts."""
from __future__ import annotations

import json

import numpy as np
import pytest
from esptiny.errors import UserError
from esptiny.stages.bench import run_bench
from esptiny.stages.importer import import_tflite
from esptiny.stages.run import new_run
from needs import missing, require

try:
    import zoo
except ImportError:
    zoo = None

MODELS = ("mobilenet_v1_025_96_rgb", "autoencoder")
N = {"native": 20, "qemu-rv32": 3}


@pytest.fixture(scope="module")
def large_run(tmp_path_factory):
    if zoo is None:
        missing("tests/zoo.py (the model zoo)")
    root = tmp_path_factory.mktemp("large")
    run = new_run(root / "run")
    for name in MODELS:
        path = root / f"{name}.tflite"
        path.write_bytes(zoo.tflite(name))
        x = zoo.inputs(name, max(N.values()))
        y = zoo.labels(name, len(x)) if zoo.ZOO[name].kind == "classifier" else x
        np.savez(root / f"{name}.npz", x_test=x, y_test=y)
        import_tflite(run, path, root / f"{name}.npz", name)
    return run


def _device_outputs(run, name, port) -> np.ndarray:
    doc = json.loads(run.file(run.stage("bench")["results"][f"{name}@{port}"]["path"]).read_text())
    return doc


@pytest.mark.parametrize("port", ("native", "qemu-rv32"))
@pytest.mark.parametrize("name", MODELS)
def test_bench_equals_tflm(large_run, name, port):
    require("gcc")
    if port == "qemu-rv32":
        require("qemu-system-riscv32", "qemu-system-misc")
        require("riscv64-unknown-elf-gcc", "gcc-riscv64-unknown-elf")
    s = run_bench(large_run, name, ports=(port,), limit=N[port])
    assert s["images"] == N[port]
    doc = _device_outputs(large_run, name, port)
    assert doc["device_vs_tflm"]["identical_outputs"] == 1.0
    assert doc["device_vs_tflm"]["max_abs_diff"] == 0.0
    link = doc["boards"][port]["link"]
    assert not any(k.startswith("retry") for k in link), link


def test_output_in_pieces_byte_equal(large_run, tmp_path, monkeypatch):
    """Native firmware with ESPT_MAX_PAYLOAD=512: the autoencoder's 640-byte output does
    not fit INFER_RSP, so the host pulls it with OUTPUT_REQ; bytes equal TFLite-Micro's."""
    require("gcc")
    from esptiny.devices import native
    real_build = native.build

    def small_frames(model_bytes, build_dir, *args, **kwargs):
        return real_build(model_bytes, build_dir, *args, **{**kwargs, "max_payload": 512})

    monkeypatch.setattr(native, "build", small_frames)
    s = run_bench(large_run, "autoencoder", ports=("native",), limit=10)
    doc = _device_outputs(large_run, "autoencoder", "native")
    assert s["images"] == 10 and doc["device_vs_tflm"]["identical_outputs"] == 1.0
    assert doc["boards"]["native"]["info"]["max_payload"] == 512


def test_the_virtual_board_takes_pieces(large_run):
    s = run_bench(large_run, "mobilenet_v1_025_96_rgb", ports=("sim",), limit=5,
                  sim_options={"baud": 0})
    doc = _device_outputs(large_run, "mobilenet_v1_025_96_rgb", "sim")
    assert s["images"] == 5 and doc["device_vs_tflm"]["identical_outputs"] == 1.0


def test_one_frame_board_refused_in_one_line(large_run, monkeypatch):
    """A board without pieces (INFO flag clear: older firmware) and a tensor above its
    frame: one line. The host is made to read the flag as clear."""
    from esptiny.link import protocol as P
    monkeypatch.setattr(P.Info, "pieces", property(lambda self: False))
    with pytest.raises(UserError, match=r"takes tensors in one frame only .*input 27648") as e:
        run_bench(large_run, "mobilenet_v1_025_96_rgb", ports=("sim",), limit=2,
                  sim_options={"baud": 0})
    assert "\n" not in str(e.value)
