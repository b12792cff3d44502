"""Bad models never crash esptiny: real .tflite files (TFLite-Micro's hello-world sine
model from the tflite-micro wheel, and an int8 conv net converted here), mutated hundreds
of seeded ways, go through import, evaluate, export with both engines and the AOT
compiler. Each step either works or raises a one-line UserError; through the CLI, one
line and exit 1, no traceback, no segmentation fault.

Two kinds of mutation: bytes (truncation, bit flips, 32-bit words stomped with extreme
values: what the flatbuffer verifier must catch) and adversarial rewrites of a valid
graph (an operator reading another tensor, a shape, type, opcode or output changed, an
input dropped: valid flatbuffers that crash TFLite-Micro and LiteRT when they run them,
which the child-process probe must catch)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from esptiny import aot
from esptiny.errors import ModelRefused, UserError
from esptiny.model import reader
from esptiny.model.flatbuffer import schema
from esptiny.stages import evaluate as evaluate_stage
from esptiny.stages import export as export_stage
from esptiny.stages.importer import import_tflite
from esptiny.stages.run import new_run

BYTE_CASES = 160       # per model
GRAPH_CASES = 90       # per model
FULL_CHAIN = 6         # accepted adversarial mutants taken through evaluate and both exports
HOST = str(Path(__file__).resolve().parents[1] / "host")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """name -> bytes of real models: the wheel's sine example (float32) and an int8 CNN."""
    import tflite_micro
    from esptiny.stages.compress import ptq
    from esptiny.tf import keras, seed
    sine = (Path(tflite_micro.__file__).parent / "python" / "tflite_micro" / "sine_float.tflite").read_bytes()
    seed(3)
    L = keras.layers
    m = keras.Sequential([L.Input((12, 12, 2)), L.Conv2D(6, 3, activation="relu"),
                          L.DepthwiseConv2D(3, padding="same"), L.MaxPooling2D(), L.Flatten(),
                          L.Dense(5, activation="softmax")])
    rep = np.random.default_rng(0).random((32, 12, 12, 2)).astype(np.float32)
    return {"sine": sine, "cnn_int8": ptq.int8(m, rep)}


def byte_mutants(blob: bytes, n: int, seed: int):
    rng = np.random.default_rng(seed)
    for k in range(n):
        b = bytearray(blob)
        kind = k % 3
        if kind == 0:
            b = b[:int(rng.integers(0, len(blob)))]
        elif kind == 1:
            for _ in range(int(rng.integers(1, 5))):
                b[int(rng.integers(0, len(b)))] ^= 1 << int(rng.integers(0, 8))
        else:
            at = int(rng.integers(0, len(b) // 4)) * 4
            word = int(rng.choice([0, 1, 0x7FFFFFFF, 0xFFFFFFFF, 0x80000000, int(rng.integers(0, 2**32))]))
            b[at:at + 4] = word.to_bytes(4, "little")
        yield f"bytes-{kind}-{k}", bytes(b)


def graph_mutants(blob: bytes, n: int, seed: int):
    import flatbuffers
    S = schema()
    rng = np.random.default_rng(seed)
    for k in range(n):
        m = S.ModelT.InitFromPackedBuf(bytearray(blob), 0)
        sg = m.subgraphs[0]
        ops, ts = sg.operators, sg.tensors
        op = ops[int(rng.integers(len(ops)))]
        kind = k % 6
        if kind == 0:
            op.inputs[int(rng.integers(len(op.inputs)))] = int(rng.integers(-1, len(ts)))
        elif kind == 1:
            t = ts[int(rng.integers(len(ts)))]
            if t.shape is not None and len(t.shape):
                t.shape[int(rng.integers(len(t.shape)))] = int(rng.integers(1, 40))
        elif kind == 2:
            op.opcodeIndex = int(rng.integers(len(m.operatorCodes)))
        elif kind == 3:
            op.inputs = op.inputs[:-1]
        elif kind == 4:
            ts[int(rng.integers(len(ts)))].type = int(rng.integers(0, 18))
        else:
            op.outputs[0] = int(rng.integers(0, len(ts)))
        builder = flatbuffers.Builder(0)
        builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
        yield f"graph-{kind}-{k}", bytes(builder.Output())


def one_line(e: Exception) -> bool:
    return isinstance(e, UserError) and "\n" not in str(e) and str(e).strip() != ""


@pytest.fixture(scope="module")
def outcomes(models, tmp_path_factory):
    """Every mutant through import (into its own run, 4 seeded random inputs): the
    accepted ones and the refused ones with their messages."""
    root = tmp_path_factory.mktemp("mutants")
    accepted, refused = [], []
    for model, blob in models.items():
        cases = list(byte_mutants(blob, BYTE_CASES, 1)) + list(graph_mutants(blob, GRAPH_CASES, 2))
        for name, b in cases:
            path = root / model / f"{name}.tflite"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b)
            run = new_run(root / model / name)
            try:
                entry = import_tflite(run, path, random_n=4, name="m")
            except Exception as e:  # anything but a one-line UserError fails below
                refused.append((model, name, b, e))
                continue
            accepted.append((model, name, b, run, entry))
    return accepted, refused


def test_import_refuses_in_one_line_or_accepts(outcomes):
    accepted, refused = outcomes
    bad = [(m, n, repr(e)) for m, n, _, e in refused if not one_line(e)]
    assert not bad, bad[:5]
    total = len(accepted) + len(refused)
    assert total == 2 * (BYTE_CASES + GRAPH_CASES)
    # both layers did work: the verifier refused some, the runtime probes others
    said = [str(e) for *_, e in refused]
    assert sum("corrupt TFLite model" in s or "not a TFLite model" in s for s in said) >= 100
    assert any("crashed on this model (SIG" in s for s in said), "no mutant crashed a runtime"
    assert len(accepted) >= 50


def test_accepted_mutants_compile_or_are_refused(outcomes):
    """The AOT compiler on every mutant import accepted: C, or a one-line refusal."""
    accepted, _ = outcomes
    failures = []
    for model, name, b, run, entry in accepted:
        try:
            aot.compile_model(b)
        except UserError as e:
            if not one_line(e):
                failures.append((model, name, repr(e)))
        except Exception as e:
            failures.append((model, name, repr(e)))
    assert not failures, failures[:5]


def _stages(run, variant, tmp) -> list:
    """evaluate, export tflm (S3) and export aot (S3): what each raised, or None."""
    raised = []
    for step in (lambda: evaluate_stage.evaluate(run, [variant], tflm_limit=4),
                 lambda: export_stage.export(run, variant, "esp32s3", "tflm", out=tmp / "tflm"),
                 lambda: export_stage.export(run, variant, "esp32s3", "aot", out=tmp / "aot")):
        try:
            step()
            raised.append(None)
        except Exception as e:
            raised.append(e)
    return raised


def test_accepted_adversarial_mutants_through_every_stage(outcomes, tmp_path):
    accepted, _ = outcomes
    chosen = []
    for m in ("sine", "cnn_int8"):
        chosen += [a for a in accepted if a[0] == m and a[1].startswith("graph") and a[4]["deployable"]][:FULL_CHAIN // 2]
    assert len(chosen) == FULL_CHAIN
    worked = 0
    for model, name, b, run, entry in chosen:
        for e in _stages(run, "m", tmp_path / model / name):
            assert e is None or (one_line(e) and isinstance(e, UserError)), (model, name, repr(e))
            worked += e is None
    assert worked >= FULL_CHAIN  # the chain ran, not only refused


def test_a_corrupted_variant_on_disk_is_refused_by_every_stage(models, outcomes, tmp_path):
    """A variant file that went bad after import: a corrupt flatbuffer is refused by every
    stage; a model that crashed a runtime never crashes this process (a stage that does not
    use that runtime may take it: export needs no LiteRT)."""
    _, refused = outcomes
    run = new_run(tmp_path / "run")
    good = tmp_path / "good.tflite"
    good.write_bytes(models["cnn_int8"])
    import_tflite(run, good, random_n=4, name="m")
    crashers = [r for r in refused if "crashed" in str(r[3])][:3]
    corrupt = [r for r in refused if "corrupt" in str(r[3])][:5]
    assert len(crashers) == 3 and len(corrupt) == 5
    for model, name, b, e in crashers + corrupt:
        run.variant_path("m").write_bytes(b)
        for got in _stages(run, "m", tmp_path / name):
            if (model, name, b, e) in corrupt:
                assert got is not None and "corrupt TFLite model" in str(got), (name, repr(got))
            assert got is None or one_line(got), (name, repr(got))


def _cli(*args) -> tuple:
    env = dict(os.environ, PYTHONPATH=HOST)
    p = subprocess.run([sys.executable, "-m", "esptiny", *map(str, args)], capture_output=True,
                       text=True, env=env, timeout=300)
    return p.returncode, p.stderr


def test_cli_one_line_and_exit_1(models, outcomes, tmp_path):
    _, refused = outcomes
    crasher, why = next((b, str(e)) for *_, b, e in refused if "crashed on this model (SIGSEGV)" in str(e)
                        or "crashed on this model (SIGFPE)" in str(e))
    cases = {"truncated.tflite": models["cnn_int8"][:len(models["cnn_int8"]) // 2],
             "flipped.tflite": next(b for *_, b, e in refused if "corrupt TFLite model" in str(e)),
             "crasher.tflite": crasher}
    for fname, b in cases.items():
        (tmp_path / fname).write_bytes(b)
        code, err = _cli("import", tmp_path / "r", tmp_path / fname, "--random", 4)
        assert code == 1 and err.count("\n") == 1 and err.startswith("esptiny: error: "), (fname, err)
        assert "Traceback" not in err
    # a run whose variant turned into the crasher: evaluate (both runtimes) refuses it; the
    # TFLite-Micro export refuses it when TFLite-Micro is what crashed; when only the TFLite
    # interpreter did, TFLite-Micro judges it (the firmware runs TFLite-Micro): either way one line
    (tmp_path / "ok.tflite").write_bytes(models["cnn_int8"])
    assert _cli("import", tmp_path / "r", tmp_path / "ok.tflite", "--random", 4, "--name", "m")[0] == 0
    (tmp_path / "r" / "variants" / "m.tflite").write_bytes(crasher)
    tflm_crashed = why.startswith("TFLite-Micro's host runtime")
    for args, want in ((("evaluate", tmp_path / "r"), 1),
                       (("export", tmp_path / "r", "--variant", "m"), 1 if tflm_crashed else None),
                       (("export", tmp_path / "r", "--variant", "m", "--engine", "aot"), None)):
        code, err = _cli(*args)
        assert err.count("\n") == 1 and "Traceback" not in err, (args, err)
        assert code == want if want is not None else code in (0, 1), (args, code, err)
        assert err.startswith("esptiny: error: ") if code else err.startswith("exported m"), (args, err)


def test_verifier_reads_the_schema():
    """The verifier's table layout comes from the wheel's generated code: spot checks
    against TFLite's schema.fbs field order."""
    from esptiny.model import flatbuffer
    t = flatbuffer.tables()
    assert [f.name for f in sorted(t["Operator"].values(), key=lambda f: f.slot)][:5] == [
        "OpcodeIndex", "Inputs", "Outputs", "BuiltinOptionsType", "BuiltinOptions"]
    assert t["Operator"]["BuiltinOptions"].kind == "union"
    assert t["Operator"]["BuiltinOptions"].target == "BuiltinOptions"
    assert (t["SubGraph"]["Tensors"].kind, t["SubGraph"]["Tensors"].target) == ("tables", "Tensor")
    assert (t["Tensor"]["Shape"].kind, t["Tensor"]["Shape"].size) == ("vector", 4)
    assert (t["QuantizationParameters"]["ZeroPoint"].kind, t["QuantizationParameters"]["ZeroPoint"].size) == ("vector", 8)
    assert t["Buffer"]["Offset"].size == 8 and t["Tensor"]["Name"].kind == "string"


def test_a_model_with_two_outputs_is_refused_naming_the_counts(tmp_path):
    from esptiny.stages.compress import ptq
    from esptiny.tf import keras
    L = keras.layers
    inp = L.Input((6,))
    m = keras.Model(inp, [L.Dense(3)(inp), L.Dense(2)(inp)])
    path = tmp_path / "two.tflite"
    path.write_bytes(ptq.float32(m))
    with pytest.raises(ModelRefused, match=r"one input and one output; this model has 1 input\(s\) and 2 output\(s\)"):
        import_tflite(new_run(tmp_path / "r"), path, random_n=2)
    assert not (tmp_path / "r" / "variants").exists()
    reader.Graph(path.read_bytes())  # a valid model all the same
