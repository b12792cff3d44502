"""Every zoo architecture (tests/zoo.py) as a user brings it: imported as a .tflite with its
data, evaluated, fit-checked and exported for the three boards with both engines, compiled
by the AOT engine and compared byte for byte with TFLite-Micro on 200 inputs, benched on
the native firmware and the virtual board (50 inputs, identical outputs).

What esptiny cannot do yet is asserted as refused, with its one-line reason, in EXPECT
(today nothing: tensors of any size travel in pieces on the native firmware and on the
virtual board, which runs the same C core)."""
from __future__ import annotations

import numpy as np
import pytest
import zoo
from esptiny import aot
from esptiny.errors import ModelRefused, UserError
from esptiny.model import reader, tflm
from esptiny.stages.bench import run_bench
from esptiny.stages.evaluate import evaluate
from esptiny.stages.export import export
from esptiny.stages.importer import import_tflite
from esptiny.stages.run import new_run
from esptiny.targets import boards, fit

EVAL_N, BENCH_N = 200, 50

# model -> what is refused today, and why (None: it passes)
EXPECT = {
    "resnet8":                  {"sim": None, "aot": None},
    "ds_cnn":                   {"sim": None, "aot": None},
    "mobilenet_v1_025_96_gray": {"sim": None, "aot": None}   ,
    "mobilenet_v1_025_96_rgb":  {"sim": None, "aot": None}   ,
    "autoencoder":              {"sim": None, "aot": None},
    "conv1d":                   {"sim": None, "aot": None},
    "mobilenet_v3_block":       {"sim": None, "aot": None}   ,
    "float_io":                 {"sim": None, "aot": None},
}
ENGINES = ("tflm", "aot")


@pytest.fixture(scope="module")
def zoo_run(tmp_path_factory):
    """One run holding every zoo model as an imported variant, evaluated on 200 inputs."""
    assert set(EXPECT) == set(zoo.NAMES), "EXPECT needs one row per zoo model"
    root = tmp_path_factory.mktemp("zoo")
    run = new_run(root / "run")
    for name in zoo.NAMES:
        path = root / f"{name}.tflite"
        path.write_bytes(zoo.tflite(name))
        x = zoo.inputs(name, EVAL_N)
        y = zoo.labels(name, EVAL_N) if zoo.ZOO[name].kind == "classifier" else x  # autoencoder: itself
        np.savez(root / f"{name}.npz", x_test=x, y_test=y)
        import_tflite(run, path, root / f"{name}.npz", name)
    evaluate(run)
    return run


def _ev(run, name) -> dict:
    return run.stage("evaluate")["variants"][name]


@pytest.mark.parametrize("name", list(EXPECT))
def test_imported_and_evaluated(zoo_run, name):
    v = _ev(zoo_run, name)
    assert v["test_images"] == EVAL_N and v["deployable"]
    if zoo.ZOO[name].kind == "classifier":
        assert v["view"] == "labels" and len(v["confusion"]) == zoo.ZOO[name].classes
        assert sum(map(sum, v["confusion"])) == EVAL_N and 0.0 <= v["accuracy"] <= 1.0
    else:  # the autoencoder's target is its input: mean squared error, no accuracy
        assert v["view"] == "targets" and v["accuracy"] is None and v["mse"] > 0
    t = v["tflm"]
    assert t["images"] == EVAL_N and 0.0 <= t["identical_fraction"] <= 1.0
    assert t["arena_bytes"] == tflm.arena_bytes(zoo.tflite(name))["total"]


@pytest.mark.parametrize("name", list(EXPECT))
def test_aot_is_bit_exact_with_tflm_or_refused(zoo_run, name):
    why = EXPECT[name]["aot"]
    v = _ev(zoo_run, name)
    if why is None:
        a = v["aot"]
        assert (a["images"], a["identical"], a["bit_exact_fraction"]) == (EVAL_N, EVAL_N, 1.0)
        assert a["arena_bytes_aot"] <= a["arena_bytes_tflm"]
        return
    with pytest.raises(ModelRefused) as e:
        aot.compile_model(zoo.tflite(name))
    assert why in str(e.value)
    if "aot" in v:  # evaluate kept the refusal, one line
        assert why in v["aot"]["refused"] and "\n" not in v["aot"]["refused"]


@pytest.mark.parametrize("name", list(EXPECT))
def test_fits_every_board(zoo_run, name):
    """The fit check on its own: every zoo model fits every board with
    TFLite-Micro, and with the AOT engine where it compiles; ESP-NN's S3 scratch counted once."""
    blob = zoo.tflite(name)
    g = reader.Graph(blob)
    recorded = tflm.arena_bytes(blob)["total"]
    for b in boards.BOARDS.values():
        plan = fit.plan_arena(recorded, g, b)
        figures = fit.check(b, len(blob), plan, name)
        assert figures["ram_headroom_bytes"] == b.arena_budget_bytes - plan.total > 0
        sizes = [s.bytes for s in plan.scratch]
        assert plan.total < recorded + max(sizes, default=0) + 48 * len(sizes) + fit.SLACK_BYTES + fit.ALIGN
        if EXPECT[name]["aot"] is None:
            arena = aot.compile_model(blob).info["arena_bytes"]
            fit.check(b, len(blob), fit.ArenaPlan(recorded=arena, engine="aot"), name)


def _refusals(name: str, aot_engine: bool, sim: bool = False) -> list:
    """The reasons one of which a refusal must give: the AOT compiler's, the Python sim's."""
    e = EXPECT[name]
    return [w for w in (e["aot"] if aot_engine else None, e["sim"] if sim else None) if w]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", list(EXPECT))
def test_export_every_board(zoo_run, name, engine, tmp_path):
    whys = _refusals(name, engine == "aot")
    for board in boards.BOARDS:
        if whys:
            with pytest.raises(UserError) as e:
                export(zoo_run, name, board, engine, out=tmp_path / board)
            assert "\n" not in str(e.value) and any(w in str(e.value) for w in whys), str(e.value)
            continue
        info = export(zoo_run, name, board, engine, out=tmp_path / board)
        assert info["fit"]["arena_bytes"] <= info["fit"]["arena_budget_bytes"]
        assert (tmp_path / board / "src" / "model" / "model_config.h").exists()


@pytest.mark.parametrize("port", ("native", "sim"))
@pytest.mark.parametrize("name", list(EXPECT))
def test_bench(zoo_run, name, port):
    """native runs the AOT engine, sim TFLite-Micro's host runtime."""
    whys = _refusals(name, port == "native", port == "sim")
    if whys:
        with pytest.raises(UserError) as e:
            run_bench(zoo_run, name, ports=(port,), limit=BENCH_N)
        said = str(e.value)
        assert "\n" not in said and any(w in said for w in whys), said
        return
    s = run_bench(zoo_run, name, ports=(port,), limit=BENCH_N)
    assert s["images"] == BENCH_N
    assert s["device_vs_tflm_identical"] == 1.0
    doc = zoo_run.stage("bench")["results"][f"{name}@{port}"]
    assert doc["summary"]["shows"]
