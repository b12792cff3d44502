"""esptiny import: a user's .tflite (or Keras model) with data of any shape, or seeded
random inputs; what the figures mean follows the data; one-line errors for what does not fit."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from esptiny.errors import UserError
from esptiny.model import tflite
from esptiny.stages import data
from esptiny.stages.bench.reference import tflm_reference
from esptiny.stages.evaluate import evaluate
from esptiny.stages.export import export
from esptiny.stages.importer import import_model, import_tflite
from esptiny.stages.run import new_run

HOST = str(Path(__file__).resolve().parents[1] / "host")


def _keras_models():
    from esptiny.tf import keras, seed
    seed(5)
    L = keras.layers
    conv = keras.Sequential([L.Input((8, 8, 1)), L.Conv2D(4, 3, activation="relu"), L.Flatten(),
                             L.Dense(32, activation="relu"),  # > 1024 weights: dynamic range quantizes it
                             L.Dense(4, activation="softmax")])
    regress = keras.Sequential([L.Input((20,)), L.Dense(16, activation="relu"), L.Dense(3)])
    return conv, regress


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Small real .tflite files: an int8 conv classifier (8x8x1), an int8 regressor (20 -> 3),
    the classifier with float32 I/O, float16 and dynamic-range variants; and its Keras file."""
    from esptiny.stages.compress import ptq
    d = tmp_path_factory.mktemp("models")
    conv, regress = _keras_models()
    rng = np.random.default_rng(0)
    rep_img, rep_vec = rng.random((32, 8, 8, 1)).astype(np.float32), rng.normal(size=(32, 20)).astype(np.float32)
    blobs = {"cls": ptq.int8(conv, rep_img), "reg": ptq.int8(regress, rep_vec),
             "f16": ptq.float16(conv), "dyn": ptq.dynamic_range(conv), "f32": ptq.float32(conv)}
    paths = {}
    for k, b in blobs.items():
        paths[k] = d / f"{k}.tflite"
        paths[k].write_bytes(b)
    conv.save(d / "cls.keras")
    regress.save(d / "reg.keras")
    paths["cls.keras"], paths["reg.keras"] = d / "cls.keras", d / "reg.keras"
    return paths


def _io(path):
    return tflite.io_details(Path(path).read_bytes())


def test_float_images_quantized_and_scored_as_a_classifier(models, tmp_path, quadrant_npz):
    run = new_run(tmp_path / "r")
    entry = import_tflite(run, models["cls"], quadrant_npz, name="mine")
    assert run.variants()["mine"]["path"] == "variants/mine.tflite" and entry["deployable"]
    assert entry["data"]["images"] == 300 and entry["data"]["labels"][0] == "top-left"
    ev = evaluate(run)["variants"]["mine"]
    assert ev["view"] == "labels" and len(ev["confusion"]) == 4 and sum(map(sum, ev["confusion"])) == 300
    # the inputs the model saw: the .npz's floats, quantized with the input's scale and zero point
    d_in, _ = _io(models["cls"])
    scale, zp = d_in["quantization"]
    with np.load(quadrant_npz) as z:
        x = z["x_test"]
    want = np.clip(np.round(x / scale) + zp, -128, 127).astype(np.int8)
    assert np.array_equal(run.test_set("mine").model_inputs(d_in), want)
    y = np.load(run.file(ev["outputs"]["tflite"]))
    with np.load(quadrant_npz) as z:
        assert ev["accuracy"] == np.mean(y.argmax(1) == z["y_test"])


def test_int8_npy_taken_as_it_is_any_rank(models, tmp_path):
    d_in, _ = _io(models["cls"])
    x = np.random.default_rng(1).integers(-128, 128, (10, 8, 8), dtype=np.int8)  # no channel axis
    np.save(tmp_path / "x.npy", x)
    run = new_run(tmp_path / "r")
    import_tflite(run, models["cls"], tmp_path / "x.npy", name="m")
    got = run.test_set("m").model_inputs(d_in)
    assert got.shape == (10, 8, 8, 1) and np.array_equal(got[..., 0], x)
    ev = evaluate(run)["variants"]["m"]
    assert ev["view"] == "none" and ev["accuracy"] is None and ev["mse"] is None
    one = data.conform_inputs(x[0, :, :, None], d_in, "one")  # one sample, no batch axis
    assert one.shape == (1, 8, 8, 1) and np.array_equal(one[0, ..., 0], x[0])


@pytest.mark.parametrize("x, said", [
    (np.zeros((5, 9, 8, 1), np.float32), r"inputs of shape \(5, 9, 8, 1\) float32 do not fit the model's input: expected \(N, 8, 8, 1\) int8"),
    (np.zeros((5, 8, 8, 1), np.uint8), r"inputs are uint8, the model takes int8: give int8 values as they are, or floats"),
    (np.zeros((5, 64), np.float32), r"expected \(N, 8, 8, 1\) int8"),
])
def test_shape_or_type_mismatch_is_one_line(models, tmp_path, x, said):
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(UserError, match=said) as e:
        import_tflite(new_run(tmp_path / "r"), models["cls"], tmp_path / "x.npy")
    assert "\n" not in str(e.value)
    assert not (tmp_path / "r" / "variants").exists()  # nothing written


def test_labels_that_fit_neither_view(models, tmp_path):
    np.savez(tmp_path / "d.npz", x_test=np.zeros((4, 8, 8, 1), np.float32), y_test=np.array([0, 1, 9, 2]))
    with pytest.raises(UserError, match=r"neither class labels .one integer below 4 a sample. nor targets"):
        import_tflite(new_run(tmp_path / "r"), models["cls"], tmp_path / "d.npz")


def test_random_inputs_span_the_type_and_are_seeded(models, tmp_path):
    run = new_run(tmp_path / "r")
    e1 = import_tflite(run, models["cls"], random_n=64, name="a")
    x = np.load(run.file(e1["data"]["x"]))
    assert x.dtype == np.int8 and x.shape == (64, 8, 8, 1) and x.min() == -128 and x.max() == 127
    import_tflite(run, models["cls"], random_n=64, name="b", seed=0)
    import_tflite(run, models["cls"], random_n=64, name="c", seed=1)
    assert np.array_equal(np.load(run.file("import/b/x_test.npy")), x)
    assert not np.array_equal(np.load(run.file("import/c/x_test.npy")), x)
    # float input followed by QUANTIZE: uniform over what that QUANTIZE represents
    e2 = import_tflite(run, models["f32"], random_n=16, name="f")
    xf = np.load(run.file(e2["data"]["x"]))
    assert xf.dtype == np.float32 and e2["type"] == "float32"


def test_regression_targets_give_mse(models, tmp_path):
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(40, 20)).astype(np.float32), rng.normal(size=(40, 3)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x_test=x, y_test=y)
    run = new_run(tmp_path / "r")
    import_tflite(run, models["reg"], tmp_path / "d.npz", name="reg")
    ev = evaluate(run)["variants"]["reg"]
    assert ev["view"] == "targets" and ev["accuracy"] is None
    from ai_edge_litert.interpreter import (
        Interpreter,  # an independent run of the reference
    )
    it = Interpreter(model_path=str(models["reg"]))
    it.allocate_tensors()
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    (si, zi), (so, zo) = i["quantization"], o["quantization"]
    outs = []
    for row in x:
        it.set_tensor(i["index"], np.clip(np.round(row / si) + zi, -128, 127).astype(np.int8)[None])
        it.invoke()
        outs.append((it.get_tensor(o["index"])[0].astype(np.float64) - zo) * so)
    assert ev["mse"] == pytest.approx(float(np.mean((np.array(outs) - y) ** 2)), rel=1e-6)  # float32 dequantization


def test_needs_data_or_random_not_both(models, tmp_path, quadrant_npz):
    with pytest.raises(UserError, match="--data FILE .* or --random N"):
        import_tflite(new_run(tmp_path / "r"), models["cls"])
    with pytest.raises(UserError, match="not both"):
        import_tflite(new_run(tmp_path / "r"), models["cls"], quadrant_npz, random_n=3)


@pytest.mark.parametrize("kind, reason", [("f16", "float16 weights"), ("dyn", "hybrid dynamic-range")])
def test_float16_and_dynamic_imported_but_not_deployable(models, tmp_path, kind, reason):
    run = new_run(tmp_path / "r")
    e = import_tflite(run, models[kind], random_n=4, name="m")
    assert not e["deployable"] and reason in e["reason"]
    ev = evaluate(run)["variants"]["m"]
    assert "tflm" not in ev
    with pytest.raises(UserError, match=reason):
        export(run, "m", "esp32")


def test_float32_exports_with_tflm_not_aot(models, tmp_path):
    run = new_run(tmp_path / "r")
    import_tflite(run, models["f32"], random_n=4, name="m")
    assert export(run, "m", "esp32s3", "tflm", out=tmp_path / "tflm")["arena"]["engine"] == "tflm"
    with pytest.raises(UserError, match="full-integer int8"):
        export(run, "m", "esp32s3", "aot", out=tmp_path / "aot")


def test_reference_cache_is_keyed_by_inputs(models, tmp_path):
    """Changed data must never be held to the old data's reference."""
    run = new_run(tmp_path / "r")
    blob = models["cls"].read_bytes()
    rng = np.random.default_rng(3)
    x1 = rng.integers(-128, 128, (6, 8, 8, 1), dtype=np.int8)
    x2 = rng.integers(-128, 128, (6, 8, 8, 1), dtype=np.int8)
    y1, y2 = tflm_reference(run, "v", blob, x1), tflm_reference(run, "v", blob, x2)
    from tflite_micro.python.tflite_micro import runtime
    it = runtime.Interpreter.from_bytes(blob)
    for x, y in ((x1, y1), (x2, y2)):
        for k in range(len(x)):
            it.set_input(x[k:k + 1], 0)
            it.invoke()
            assert np.array_equal(it.get_output(0)[0], y[k])
    assert len(list((run.path / "bench" / "cache").glob("*.npy"))) == 2
    assert np.array_equal(tflm_reference(run, "v", blob, x1), y1)


def test_keras_import_compresses_the_variants_its_data_allows(models, tmp_path, quadrant_npz):
    run = new_run(tmp_path / "r")
    import_model(run, models["cls.keras"], quadrant_npz, methods=["float32", "int8"])
    assert set(run.variants()) == {"float32", "int8"}
    # a regression model without class labels: only the post-training methods
    rng = np.random.default_rng(4)
    np.savez(tmp_path / "reg.npz", x_train=rng.normal(size=(64, 20)).astype(np.float32),
             x_test=rng.normal(size=(16, 20)).astype(np.float32))
    run2 = new_run(tmp_path / "r2")
    import_model(run2, models["reg.keras"], tmp_path / "reg.npz")
    assert list(run2.variants()) == ["float32", "float16", "dynamic", "int8"]
    assert run2.stage("train")["keras_test_accuracy"] is None


def test_run_tflite_through_the_cli(models, tmp_path):
    env = dict(os.environ, PYTHONPATH=HOST)
    p = subprocess.run([sys.executable, "-m", "esptiny", "run", str(tmp_path / "r"), "--tflite",
                        str(models["reg"]), "--random", "20", "--bench-limit", "20", "--board", "esp32s3"],
                       capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "bench reg on virtual-esp32s3 (virtual board): 20 inputs, no labels" in p.stderr
    assert "100.00% identical outputs with TFLite-Micro's host runtime" in p.stderr
    md = (tmp_path / "r" / "report.md").read_text()
    assert "| reg | agreement only | no labels |" in md
    assert "per-element agreement only: the data has no labels or targets" in md
    code = subprocess.run([sys.executable, "-m", "esptiny", "import", str(tmp_path / "r"),
                           str(models["reg"]), "--random", "2", "--data", str(models["reg"])],
                          capture_output=True, text=True, env=env, timeout=300)
    assert code.returncode == 1 and code.stderr.count("\n") == 1 and "not both" in code.stderr
