"""The host stages end to end on a small synthetic data set (fast), plus error paths."""
import json

import numpy as np
import pytest
from click.testing import CliRunner
from esptiny.cli import main
from esptiny.errors import UserError
from esptiny.model import tflite, tflm
from esptiny.model.reader import Graph
from esptiny.stages import compress as compress_stage
from esptiny.stages import evaluate, report
from esptiny.stages import train as train_stage
from esptiny.stages.compress import registry
from esptiny.stages.run import Run, new_run


@pytest.fixture(scope="module")
def quad_run(tmp_path_factory, quadrant_npz):
    run = new_run(tmp_path_factory.mktemp("quad") / "run")
    train_stage.train(run, "cnn", data_npz=str(quadrant_npz), epochs=4, seed=3, batch_size=128, lr=2e-3)
    compress_stage.compress(run, rep_samples=64, sparsity=0.6, clusters=8, finetune_epochs=2)
    evaluate.evaluate(run)
    report.report(run)
    return run


def test_every_variant_is_written_and_recorded(quad_run):
    variants = quad_run.variants()
    assert list(variants) == registry.DEFAULT_METHODS
    for name, v in variants.items():
        blob = quad_run.file(v["path"]).read_bytes()
        assert blob[4:8] == b"TFL3" and v["bytes"] == len(blob)
    assert [n for n, v in variants.items() if not v["deployable"]] == ["float16", "dynamic"]


def test_int8_variants_are_full_integer(quad_run):
    for name in ("int8", "qat", "pruned", "clustered", "pruned_clustered"):
        d_in, d_out = tflite.io_details(quad_run.variant_path(name).read_bytes())
        assert np.dtype(d_in["dtype"]) == np.int8 and np.dtype(d_out["dtype"]) == np.int8, name


def test_pruning_and_clustering_do_what_they_say(quad_run):
    v = quad_run.variants()
    assert v["pruned"]["kernel_sparsity"] == pytest.approx(0.6, abs=0.02)
    assert v["clustered"]["max_distinct_kernel_values"] <= 8
    assert v["pruned_clustered"]["max_distinct_kernel_values"] <= 8
    # sparsity survives clustering, and int8 conversion keeps the zeros
    assert v["pruned_clustered"]["kernel_sparsity"] >= 0.55
    assert Graph(quad_run.variant_path("pruned").read_bytes()).sparsity() >= 0.55


def test_evaluation_figures(quad_run):
    ev = quad_run.stage("evaluate")["variants"]
    ds = quad_run.dataset()
    assert ev["float32"]["accuracy"] > 0.9  # the task is easy
    for name, r in ev.items():
        # accuracy and confusion against the interpreter run again here, counted here
        blob = quad_run.variant_path(name).read_bytes()
        d_in, _ = tflite.io_details(blob)
        pred = tflite.run(blob, tflite.to_input(ds.x_test, d_in)).argmax(axis=1)
        assert r["accuracy"] == pytest.approx(float(np.mean(pred == ds.y_test)))
        expected = np.zeros((4, 4), int)
        for t, p in zip(ds.y_test, pred):
            expected[t, p] += 1
        assert r["confusion"] == expected.tolist()
        assert r["size_ratio_to_float32"] == pytest.approx(r["bytes"] / ev["float32"]["bytes"])
    assert ev["int8"]["bytes"] < 0.4 * ev["float32"]["bytes"]
    for name in ("float32", "int8", "qat", "pruned", "clustered", "pruned_clustered"):
        t = ev[name]["tflm"]
        assert t["images"] == len(ds.x_test) and t["arena_bytes"] > 0
        assert t["agreement_with_tflite_top1"] >= 0.98
        if name != "float32":
            assert t["max_output_diff"] <= tflm.TFLITE_MAX_STEPS and t["max_output_diff_unit"] == "int8 steps"
    assert "tflm" not in ev["float16"] and "TFLite-Micro has no kernels" in ev["float16"]["reason"]
    for name in ("int8", "qat", "pruned", "clustered", "pruned_clustered"):
        a = ev[name]["aot"]  # the compiled C, byte for byte against TFLite-Micro
        assert a["images"] == len(ds.x_test) and a["bit_exact_fraction"] == 1.0, name
        assert a["arena_bytes_aot"] < ev[name]["tflm"]["arena_bytes"]
    assert "full-integer int8" in ev["float32"]["aot"]["refused"]  # the AOT engine says why it does not take it


def test_saved_outputs_reproduce_accuracy(quad_run):
    ev = quad_run.stage("evaluate")["variants"]["int8"]
    y = np.load(quad_run.file(ev["outputs"]["tflite"]))
    assert np.mean(np.argmax(y, 1) == quad_run.dataset().y_test) == ev["accuracy"]


def test_report_files(quad_run):
    data = json.loads(quad_run.file("report.json").read_text())
    assert set(data["variants"]) == set(registry.DEFAULT_METHODS)
    md = quad_run.file("report.md").read_text()
    assert md.count("\n| ") >= 1 + len(registry.DEFAULT_METHODS)
    html = quad_run.file("report.html").read_text()
    assert "data:image/png;base64," in html and "pruned_clustered" in html
    for png in ("size_vs_accuracy.png", "confusion.png"):
        assert quad_run.file(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(data["stage_seconds"]) >= {"train", "compress", "evaluate"}


def test_own_keras_model_is_adopted(tmp_path, quad_run, quadrant_npz):
    run = new_run(tmp_path / "own")
    entry = train_stage.train(run, keras_model=str(quad_run.file("model/model.keras")),
                           data_npz=str(quadrant_npz))
    assert entry["epochs"] == 0
    assert entry["keras_test_accuracy"] == quad_run.stage("train")["keras_test_accuracy"]


def test_bad_options():
    with pytest.raises(UserError, match="--sparsity"):
        registry.options(sparsity=1.5)
    with pytest.raises(UserError, match="--clusters"):
        registry.options(clusters=1)


def cli(*args):
    r = CliRunner().invoke(main, [str(a) for a in args])
    return r.exit_code, r.output


def test_cli_errors_are_one_line(tmp_path, quad_run):
    code, out = cli("train", tmp_path / "r", "--data", tmp_path / "missing.npz")
    assert code == 1 and out.count("\n") == 1 and "missing.npz" in out and "Traceback" not in out
    notmodel = tmp_path / "m.keras"
    notmodel.write_text("hello")
    code, out = cli("train", tmp_path / "r2", "--keras-model", notmodel, "--data", quad_run.dataset().source)
    assert code == 1 and "not a loadable Keras model" in out and out.count("\n") == 1
    code, out = cli("compress", quad_run.path, "--methods", "int8,zip")
    assert code == 1 and "unknown method(s) zip" in out
    code, out = cli("evaluate", quad_run.path, "--variants", "nope")
    assert code == 1 and "no variant 'nope'" in out
    code, out = cli("compress", quad_run.path, "--sparsity", "2")
    assert code == 2 and out.count("\n") == 1


def test_not_a_classifier(tmp_path, quadrant_npz):
    from esptiny.tf import keras
    L = keras.layers
    m = keras.Sequential([L.Input((8, 8, 1)), L.Conv2D(2, 3)])  # 4-D output: not (batch, classes)
    path = tmp_path / "seg.keras"
    m.save(path)
    # adopted as it is (any model; evaluate shows agreement, not accuracy), but not fine-tuned
    code, out = cli("train", tmp_path / "r", "--keras-model", path, "--data", quadrant_npz)
    assert code == 0 and "no class labels to score" in out
    code, out = cli("train", tmp_path / "r2", "--keras-model", path, "--data", quadrant_npz, "--epochs", "1")
    assert code == 1 and "fine-tuning (--epochs) needs a classifier" in out and out.count("\n") == 1


def test_evaluate_rejects_a_corrupt_variant(tmp_path, quad_run):
    import shutil
    copy = Run(shutil.copytree(quad_run.path, tmp_path / "copy"))
    copy.variant_path("int8").write_bytes(b"garbage" * 10)
    before = copy.stage("evaluate")
    code, out = cli("evaluate", copy.path, "--variants", "int8")
    assert code == 1 and out.count("\n") == 1
    assert copy.stage("evaluate") == before  # nothing half-written into the manifest


def test_run_resume_keeps_what_did_not_change(tmp_path, quadrant_npz):
    """`esptiny run --resume` twice: the second keeps every stage and says so; a changed
    compression option reruns compress and what reads its files, not train."""
    def run(*extra):
        return CliRunner().invoke(main, ["run", str(tmp_path / "r"), "--data", str(quadrant_npz),
                                         "--epochs", "1", "--methods", "float32,int8,pruned",
                                         "--finetune-epochs", "1", "--rep-samples", "16",
                                         "--no-bench", "--resume", "--jobs", "2", *extra])
    first = run()
    assert first.exit_code == 0, first.output
    manifest = Run(tmp_path / "r").manifest()
    again = run()
    assert again.exit_code == 0, again.output
    for stage in ("train", "compress", "evaluate", "export"):
        assert f"{stage}: kept, its inputs are unchanged" in again.output
    assert "stage times: train kept, compress kept, evaluate kept, export kept, report" in again.output
    after = Run(tmp_path / "r").manifest()
    assert {k: after["stages"][k] for k in ("train", "compress", "evaluate", "export")} == \
        {k: manifest["stages"][k] for k in ("train", "compress", "evaluate", "export")}
    changed = run("--sparsity", "0.3")
    assert changed.exit_code == 0, changed.output
    assert "train: kept" in changed.output and "compress: kept" not in changed.output
    assert "evaluate: kept" not in changed.output
    assert Run(tmp_path / "r").variants()["pruned"]["target_sparsity"] == 0.3
