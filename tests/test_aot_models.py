"""The AOT compiler on whole models: the tiny run's int8 CNN, a trained MLP and a clustered
CNN are bit-exact with TFLite-Micro on 300 test images; the generated C compiles with
gcc -std=c99 -Wall -Wextra -Werror; unsupported ops and types are refused with the op's
name and layer; the native firmware serves `esptiny bench --port native` end to end."""
import json
import shutil
import subprocess

import numpy as np
import pytest
from esptiny import aot
from esptiny.aot import host
from esptiny.errors import UserError
from esptiny.model import tflite, tflm
from esptiny.stages import compress as compress_stage
from esptiny.stages import train as train_stage
from esptiny.stages.run import Run, new_run
from needs import require

N = 300


def _test_inputs(run, model_bytes, n=N):
    d_in, _ = tflite.io_details(model_bytes)
    return tflite.to_input(run.dataset().x_test[:n], d_in)


def _assert_bit_exact(model_bytes, x):
    y_aot = host.run(model_bytes, x)
    y_tflm = tflm.run(model_bytes, x).reshape(y_aot.shape)
    assert np.array_equal(y_aot, y_tflm), f"{int((y_aot != y_tflm).any(axis=1).sum())} of {len(x)} images differ"
    return y_aot


@pytest.fixture(scope="module")
def cnn(tiny_run):
    return tiny_run.variant_path("int8").read_bytes()


def test_tiny_cnn_is_bit_exact_with_tflite_micro(tiny_run, cnn):
    y = _assert_bit_exact(cnn, _test_inputs(tiny_run, cnn))
    assert len(np.unique(y.argmax(axis=1))) > 1  # a real classifier, not a constant


def test_mlp_is_bit_exact_with_tflite_micro(tmp_path, fashion):
    run = new_run(tmp_path / "mlp")
    train_stage.train(run, model_name="mlp", train_limit=2000, test_limit=N, epochs=1, seed=2)
    compress_stage.compress(run, methods=["int8"], rep_samples=100)
    model = run.variant_path("int8").read_bytes()
    info = aot.compile_model(model).info
    assert info["code_ops"] == ["RESHAPE", "FULLY_CONNECTED", "FULLY_CONNECTED"]
    assert [s["kernel"] for s in info["steps"]] == ["espt_aot_fully_connected_s8"] * 2  # reshape: an alias
    _assert_bit_exact(model, _test_inputs(run, model))


def test_clustered_cnn_is_packed_smaller_and_bit_exact(tiny_run):
    """16 shared values per layer (what weight clustering leaves), int8 per channel:
    4-bit indices into per-channel codebooks, about half the weight flash, same outputs."""
    from esptiny.stages.compress import ptq
    model = train_stage.load_model(tiny_run)
    for layer in model.layers:
        for v in layer.weights:
            if "kernel" in v.name:
                w = v.numpy()
                centroids = np.quantile(w, np.linspace(0, 1, 16))
                v.assign(centroids[np.abs(w[..., None] - centroids).argmin(axis=-1)].astype(np.float32))
    ds = tiny_run.dataset()
    b = ptq.int8(model, ptq.representative(ds, 100))
    packed = aot.compile_model(b).info
    plain = aot.compile_model(b, pack_weights="never").info
    assert packed["packed_layers"] >= 3 and plain["packed_layers"] == 0
    assert packed["weights_bytes"] < 0.6 * plain["weights_bytes"]
    assert packed["weights_bytes_int8"] == plain["weights_bytes"]
    x = _test_inputs(tiny_run, b)
    y = _assert_bit_exact(b, x)
    assert np.array_equal(y, host.run(b, x, pack_weights="never"))


# ---- the generated C ----------------------------------------------------------------

def test_generate_writes_strict_c99_and_reports_figures(tmp_path, cnn):
    info = aot.generate(cnn, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model_aot.c", "model_aot.h"]  # no temp files
    import zlib
    assert info["model_crc32"] == zlib.crc32(cnn)
    assert info["arena_bytes"] > 0 and info["weights_bytes"] > 0
    assert info["code_ops"][:2] == ["CONV_2D", "MAX_POOL_2D"]
    c = (tmp_path / "model_aot.c").read_text()
    assert "malloc" not in c and "TFL3" not in c
    assert c.count("/* 0: CONV_2D") == 1  # one commented call per layer
    h = (tmp_path / "model_aot.h").read_text()
    assert f"#define ESPT_AOT_MODEL_CRC32 0x{info['model_crc32']:08x}u" in h
    assert f"#define ESPT_AOT_ARENA_BYTES {info['arena_bytes']}u" in h
    for src in host.engine_sources(tmp_path):
        r = subprocess.run([host.gcc(), "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2",
                            *host.include_flags(tmp_path), "-c", str(src), "-o", str(tmp_path / "x.o")],
                           capture_output=True, text=True)
        assert r.returncode == 0, f"{src.name}: {r.stderr[:2000]}"
    assert aot.compile_model(cnn).c_source == c  # deterministic


def test_arena_is_smaller_than_tflite_micro_s(cnn):
    info = aot.compile_model(cnn).info
    assert info["arena_bytes"] <= 0.75 * tflm.arena_bytes(cnn)["total"]
    assert info["arena_bytes"] < info["arena_bytes_unfused"]  # conv + max pool fused


# ---- refusals -----------------------------------------------------------------------

def _tanh_model():
    from esptiny.stages.compress import ptq
    from esptiny.tf import keras
    L = keras.layers
    inp = L.Input((4, 4, 1))
    x = L.Dense(3, activation="tanh")(L.Flatten()(inp))
    rs = np.random.RandomState(0)
    return ptq.int8(keras.Model(inp, x), rs.normal(0, 1, (16, 4, 4, 1)).astype(np.float32))


def test_unsupported_op_is_refused_with_its_name_and_layer(tmp_path):
    with pytest.raises(UserError) as e:
        aot.generate(_tanh_model(), tmp_path / "out")
    assert str(e.value) == (
        "the AOT engine cannot compile layer 2 (TANH): op not supported (it compiles CONV_2D, "
        "DEPTHWISE_CONV_2D, FULLY_CONNECTED, MAX_POOL_2D, AVERAGE_POOL_2D, RESHAPE, SOFTMAX, ADD, QUANTIZE)")
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_float_model_and_garbage_are_refused(tiny_run, tmp_path):
    with pytest.raises(UserError, match=r"^the AOT engine compiles full-integer int8 models; this model's "
                                        r"input is float32 \(export the int8 variant\)$"):
        aot.generate(tiny_run.variant_path("float32").read_bytes(), tmp_path)
    with pytest.raises(UserError, match="not a TFLite model"):
        aot.generate(b"definitely not a flatbuffer", tmp_path)
    with pytest.raises(UserError, match="weight packing must be one of auto, never"):
        aot.compile_model(tiny_run.variant_path("int8").read_bytes(), pack_weights="sometimes")


def test_cli_export_refuses_unsupported_op(tiny_run, tmp_path):
    """The same one-line error through `esptiny export --engine aot`, exit status 1."""
    from click.testing import CliRunner
    from esptiny.cli import main
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run.path, run_dir)
    (run_dir / "variants" / "int8.tflite").write_bytes(_tanh_model())
    r = CliRunner().invoke(main, ["export", str(run_dir), "--variant", "int8", "--engine", "aot",
                                  "--out", str(tmp_path / "fw")])
    assert r.exit_code == 1, r.output
    assert "esptiny: error: the AOT engine cannot compile layer 2 (TANH): op not supported" in r.output
    assert "Traceback" not in r.output


# ---- the real firmware on a pseudo-terminal ---------------------------------------------

def test_native_firmware_end_to_end_through_esptiny_bench(tiny_run, cnn, tmp_path):
    require("make"), require("gcc")
    from click.testing import CliRunner
    from esptiny.cli import main
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run.path, run_dir)
    r = CliRunner().invoke(main, ["bench", str(run_dir), "--variant", "int8", "--port", "native", "-n", "200"])
    assert r.exit_code == 0, r.output
    doc = json.loads((run_dir / "bench" / "int8-native.json").read_text())
    board = doc["boards"]["native"]
    assert board["info"]["engine"] == "aot" and board["info"]["chip"] == "posix-host"
    assert board["info"]["model_crc32"] == f"{__import__('zlib').crc32(cnn):08x}"
    assert board["info"]["arena_bytes"] == aot.compile_model(cnn).info["arena_bytes"]
    assert doc["images"] == 200
    assert doc["device_vs_tflm"] == {"top1_agreement": 1.0, "max_abs_diff": 0.0, "identical_outputs": 1.0}
    assert Run(run_dir).file("build/int8/native/firmware-native").exists()
