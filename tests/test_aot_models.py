"""The AOT compiler on whole models: the tiny run's int8 CNN, a trained MLP and a clustered
CNN are bit-exact with TFLite-Micro on 300 test images; the generated C compiles with
gcc -std=c99 -Wall -Wextra -Werror; unsupported ops and types are refused with the op's
name and layer; the native firmware serves `esptiny bench --port native` end to end."""
import json
import shutil
import subprocess

import numpy as np
import pytest
from aot_support import assert_bit_exact, float_io, int8, randomize, representative
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


# ---- models mixing the newer ops, 200 random inputs each ------------------------------

N_RANDOM = 200


def _random_inputs(rs, shape):
    return rs.randint(-128, 128, size=(N_RANDOM, *shape)).astype(np.int8)


def test_autoencoder_raw_outputs_are_bit_exact(monkeypatch):
    """Dense 640 -> 128 -> 8 -> 128 -> 640, per-tensor weights (Keras' own initializers,
    seeded), raw outputs: byte-identical on 200 random inputs. The per-tensor fully
    connected multiplier must be the one the tflite-micro wheel computes (double product
    of the scales): with the float product the source shows, this model's outputs differ
    from TFLite-Micro's on some inputs, so the test tells the two rules apart."""
    from esptiny.aot import quant
    from esptiny.aot.lower import Lowering
    from esptiny.tf import keras
    L = keras.layers
    rs = np.random.RandomState(2)
    keras.utils.set_random_seed(2)
    inp = L.Input((640,))
    x = L.Dense(128, activation="relu")(inp)
    x = L.Dense(8, activation="relu")(x)
    x = L.Dense(128, activation="relu")(x)
    model = keras.Model(inp, L.Dense(640)(x))
    b = int8(model, rs.normal(0, 1, (100, 640)).astype(np.float32))
    low = Lowering(b)
    fcs = [op for op in low.g.ops if op.name == "FULLY_CONNECTED"]
    assert len(fcs) == 4 and all(low.tensors[op.inputs[1]].scales.size == 1 for op in fcs)
    x = _random_inputs(rs, (640,))
    info = assert_bit_exact(b, x)
    assert info["code_ops"] == ["FULLY_CONNECTED"] * 4

    double_rule = quant.per_channel_multipliers

    def float_rule(input_scale, filter_scales, output_scale, channels):
        product = np.float32(input_scale) * np.float32(filter_scales[0])
        m, s = quant.quantize_multiplier(float(product) / float(np.float32(output_scale)))
        return [m] * channels, [s] * channels

    monkeypatch.setattr(quant, "per_channel_multipliers", lambda i, f, o, c: (
        float_rule(i, f, o, c) if len(f) == 1 else double_rule(i, f, o, c)))
    y_float_rule = host.run(b, x)
    assert (y_float_rule != tflm.run(b, x).reshape(y_float_rule.shape)).any()


def test_conv1d_model_is_bit_exact():
    from esptiny.tf import keras
    L = keras.layers
    rs = np.random.RandomState(1)
    inp = L.Input((64, 4))
    x = L.Conv1D(8, 5, activation="relu", padding="same")(inp)
    x = L.MaxPooling1D(2)(x)
    x = L.Conv1D(12, 3, strides=2)(x)
    x = L.LeakyReLU(0.1)(x)
    x = L.GlobalAveragePooling1D()(x)
    model = keras.Model(inp, L.Dense(4, activation="sigmoid")(x))
    randomize(model, rs)
    b = int8(model, representative(rs, (64, 4), 64))
    info = assert_bit_exact(b, _random_inputs(rs, (64, 4)))
    assert {"EXPAND_DIMS", "CONV_2D", "MAX_POOL_2D", "LEAKY_RELU", "MEAN", "LOGISTIC"} <= set(info["code_ops"])


def mobilenet_v3_block(keras, input_shape=(16, 16, 3)):
    """Conv + hard-swish, depthwise + hard-swish, squeeze-and-excitation (global mean,
    1x1 convs, sigmoid gate, multiply), 1x1 projection with a residual add, global mean,
    dense."""
    from esptiny.tf import tf
    L = keras.layers

    def hard_swish(t):
        return L.Lambda(lambda v: v * tf.nn.relu6(v + 3.0) / 6.0)(t)

    inp = L.Input(input_shape)
    x = hard_swish(L.Conv2D(16, 3, strides=2, padding="same")(inp))
    x = hard_swish(L.DepthwiseConv2D(3, padding="same")(x))
    s = L.GlobalAveragePooling2D(keepdims=True)(x)
    s = L.Conv2D(8, 1, activation="relu")(s)
    s = L.Activation("sigmoid")(L.Conv2D(16, 1)(s))
    x = L.Multiply()([x, s])
    x = L.Add()([x, L.Conv2D(16, 1)(x)])
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inp, L.Dense(5)(x))


def test_mobilenet_v3_block_is_bit_exact():
    from esptiny.tf import keras
    rs = np.random.RandomState(2)
    model = mobilenet_v3_block(keras)
    randomize(model, rs)
    b = int8(model, representative(rs, (16, 16, 3), 64))
    info = assert_bit_exact(b, _random_inputs(rs, (16, 16, 3)))
    assert {"HARD_SWISH", "MEAN", "MUL", "LOGISTIC", "DEPTHWISE_CONV_2D", "ADD"} <= set(info["code_ops"])


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
                           capture_output=True, text=True, check=False)
        assert r.returncode == 0, f"{src.name}: {r.stderr[:2000]}"
    assert aot.compile_model(cnn).c_source == c  # deterministic


def test_arena_is_smaller_than_tflite_micro_s(cnn):
    info = aot.compile_model(cnn).info
    assert info["arena_bytes"] <= 0.75 * tflm.arena_bytes(cnn)["total"]
    assert info["arena_bytes"] < info["arena_bytes_unfused"]  # conv + max pool fused


# ---- refusals -----------------------------------------------------------------------

def _transpose_model():
    from esptiny.tf import keras
    L = keras.layers
    inp = L.Input((4, 3, 2))
    x = L.Permute((2, 1, 3))(L.Conv2D(2, 1)(inp))
    return int8(keras.Model(inp, x), np.random.RandomState(0).normal(0, 1, (16, 4, 3, 2)).astype(np.float32))


def test_unsupported_op_is_refused_with_its_name_and_layer(tmp_path):
    with pytest.raises(UserError) as e:
        aot.generate(_transpose_model(), tmp_path / "out")
    assert str(e.value) == (
        "the AOT engine cannot compile layer 1 (TRANSPOSE): op not supported (it compiles "
        + ", ".join(aot.SUPPORTED) + ")")
    assert {"CONV_2D", "MEAN", "HARD_SWISH", "DEQUANTIZE"} <= set(aot.SUPPORTED) and "TRANSPOSE" not in aot.SUPPORTED
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
    (run_dir / "variants" / "int8.tflite").write_bytes(_transpose_model())
    r = CliRunner().invoke(main, ["export", str(run_dir), "--variant", "int8", "--engine", "aot",
                                  "--out", str(tmp_path / "fw")])
    assert r.exit_code == 1, r.output
    assert "esptiny: error: the AOT engine cannot compile layer 1 (TRANSPOSE): op not supported" in r.output
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


def test_native_firmware_runs_a_float_io_model_end_to_end(tiny_run, tmp_path):
    """The tiny CNN converted with float32 input and output: the native firmware's engine
    reports float32 I/O, takes the images as floats and returns the same float bytes as
    TFLite-Micro (through `esptiny bench --port native`)."""
    require("make"), require("gcc")
    from click.testing import CliRunner
    from esptiny.cli import main
    from esptiny.stages.compress import ptq
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run.path, run_dir)
    model = float_io(train_stage.load_model(tiny_run), ptq.representative(tiny_run.dataset(), 100))
    (run_dir / "variants" / "int8.tflite").write_bytes(model)
    r = CliRunner().invoke(main, ["bench", str(run_dir), "--variant", "int8", "--port", "native", "-n", "200"])
    assert r.exit_code == 0, r.output
    doc = json.loads((run_dir / "bench" / "int8-native.json").read_text())
    info = doc["boards"]["native"]["info"]
    assert info["engine"] == "aot" and info["model_crc32"] == f"{__import__('zlib').crc32(model):08x}"
    assert info["input"]["dtype"] == "float32" and info["output"]["dtype"] == "float32", info
    assert doc["images"] == 200
    assert doc["device_vs_tflm"] == {"top1_agreement": 1.0, "max_abs_diff": 0.0, "identical_outputs": 1.0}


def test_emulated_rv32_board_runs_the_newer_kernels_bit_exact(tmp_path):
    """The MobileNet-v3-like block with float32 I/O cross-compiled for RV32IMC (picolibc,
    soft float) and run under QEMU: every output byte equals TFLite-Micro's, and the
    kernels call nothing from libm (only string.h and the compiler's own helpers)."""
    from esptiny.devices import qemu, rv32_firmware
    from esptiny.tf import keras
    require(rv32_firmware.CC, "gcc-riscv64-unknown-elf")
    require(qemu.QEMU, "qemu-system-misc")
    rs = np.random.RandomState(3)
    model = mobilenet_v3_block(keras, (12, 12, 3))
    randomize(model, rs)
    b = float_io(model, representative(rs, (12, 12, 3), 64))
    fw = rv32_firmware.build(b, tmp_path / "build")
    x = rs.normal(0, 1.5, (20, 12, 12, 3)).astype(np.float32)
    outputs, _ = qemu.run_images(fw, x)
    y = tflm.run(b, x)
    assert [bytes(o) for o in outputs] == [y[i].tobytes() for i in range(len(x))]
    objs = sorted((tmp_path / "build").rglob("espt_aot_*.o"))
    assert len(objs) == len(host.kernel_sources())
    nm = rv32_firmware.CC.replace("gcc", "nm")
    undefined = set()
    for o in objs:
        undefined |= set(subprocess.run([nm, "-u", str(o)], capture_output=True, text=True,
                                        check=True).stdout.split()) - {"U"}
    assert {u for u in undefined if not u.startswith(("__", "espt_aot_"))} <= {"memcpy", "memset", "memmove"}, undefined
