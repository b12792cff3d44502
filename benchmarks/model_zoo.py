"""Every zoo architecture (tests/zoo.py) brought to esptiny as a user would: what each
engine takes, and how the AOT engine compares with TFLite-Micro.

    python benchmarks/model_zoo.py [-n 200] [-k 3] [--bench 50] [--no-instructions]

Per model, all measured on this host (models built and converted by tests/zoo.py):
- imported (esptiny import, the model's .tflite with -n zoo inputs and their labels or
  targets), evaluated (TFLite interpreter, TFLite-Micro's host runtime, the AOT engine),
  exported for every board with each engine: the export's verdict or its one-line reason;
- fit on the ESP32-S3: the fit check alone (targets/fit.py), TFLite-Micro arena with
  ESP-NN's scratch, and the AOT arena where the AOT engine compiles the model;
- bit_exact_fraction: AOT outputs identical byte for byte to TFLite-Micro's, over -n inputs;
- ram_ratio: AOT arena / the arena TFLite-Micro records (bytes);
- flash_ratio: AOT kernels + engine + model at -O2 with --gc-sections (x86-64 `size -A`
  text + rodata + data) / the .tflite flatbuffer (bytes);
- instr_ratio: x86-64 instructions per inference under valgrind's callgrind, AOT program
  / TFLite-Micro's host runtime, (count for 1+k inferences - count for 1) / k, as
  benchmarks/aot_vs_tflm.py counts them;
- large_input_link_efficiency: the 96x96x3 MobileNet on the virtual board behind the
  link emulation paced at 921600 baud (benchmarks/large_input.py).

The last line is one JSON object: models, imported, evaluated, exported (counts),
min_bit_exact_fraction, max_ram_ratio, all_fit_esp32s3, large_input_link_efficiency and
the per-model figures. Targets now: every model imported, evaluated and exported, all
fitting the ESP32-S3; min_bit_exact_fraction 1.0 and large_input_link_efficiency >= 0.9.
"""
import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # tests/zoo.py
sys.path.insert(0, str(HERE))  # aot_vs_tflm's callgrind and flash measurements

import aot_vs_tflm  # noqa: E402
import large_input  # noqa: E402
import zoo  # noqa: E402
from esptiny import aot  # noqa: E402
from esptiny.aot import host  # noqa: E402
from esptiny.errors import UserError  # noqa: E402
from esptiny.model import reader, tflm  # noqa: E402
from esptiny.stages.evaluate import evaluate  # noqa: E402
from esptiny.stages.export import export  # noqa: E402
from esptiny.stages.importer import import_tflite  # noqa: E402
from esptiny.stages.run import new_run  # noqa: E402
from esptiny.targets import boards, fit  # noqa: E402


def fits_s3(blob: bytes, aot_arena) -> dict:
    b = boards.BOARDS["esp32s3"]
    out = {}
    plan = fit.plan_arena(tflm.arena_bytes(blob)["total"], reader.Graph(blob), b)
    plans = {"tflm": plan}
    if aot_arena is not None:
        plans["aot"] = fit.ArenaPlan(recorded=aot_arena, engine="aot")
    for engine, p in plans.items():
        try:
            fit.check(b, len(blob), p, "model")
            out[engine] = {"fits": True, "arena_bytes": p.total}
        except UserError as e:
            out[engine] = {"fits": False, "arena_bytes": p.total, "why": str(e)}
    return out


def measure(name: str, run, work: Path, args) -> dict:
    blob = zoo.tflite(name)
    path = work / f"{name}.tflite"
    path.write_bytes(blob)
    x = zoo.inputs(name, args.n)
    y = zoo.labels(name, args.n) if zoo.ZOO[name].kind == "classifier" else x
    np.savez(work / f"{name}.npz", x_test=x, y_test=y)
    r = {"input_bytes": None, "imported": False, "evaluated": False, "exports": {}}
    import_tflite(run, path, work / f"{name}.npz", name)
    r["imported"] = True
    ev = evaluate(run, [name])["variants"][name]
    r["evaluated"] = True
    d = reader.Graph(blob).tensors[reader.Graph(blob).inputs[0]]
    r["input_bytes"] = d.nbytes
    for engine in ("tflm", "aot"):
        for board in boards.BOARDS:
            try:
                info = export(run, name, board, engine, out=work / "fw" / f"{name}-{board}-{engine}")
                r["exports"][f"{board}-{engine}"] = {"ok": True, "arena_bytes": info["arena"]["total"]}
            except UserError as e:
                r["exports"][f"{board}-{engine}"] = {"ok": False, "why": str(e)}
    r["exported_any"] = any(v["ok"] for v in r["exports"].values())
    a = ev.get("aot") or {}
    try:
        compiled = aot.compile_model(blob)
        r["aot"] = "takes it"
    except UserError as e:
        compiled, r["aot"] = None, f"refused: {e}"
    r["tflm"] = "takes it" if ev["deployable"] else f"refused: {ev['reason']}"
    r["bit_exact_fraction"] = a.get("bit_exact_fraction")
    r["ram_ratio"] = a.get("ram_ratio")
    r["arena_bytes"] = {"aot": a.get("arena_bytes_aot"), "tflm": ev["tflm"]["arena_bytes"]}
    r["fit_esp32s3"] = fits_s3(blob, compiled.info["arena_bytes"] if compiled else None)
    r["flash_ratio"] = r["instr_ratio"] = None
    if compiled is not None:
        with tempfile.TemporaryDirectory() as d, host.Runner(blob) as runner:
            flash = aot_vs_tflm.aot_flash(runner.dir, Path(d), [host.gcc()], "size")
            r["flash_bytes"] = {"aot_x86_64": flash, "tflite": len(blob)}
            r["flash_ratio"] = (flash["text"] + flash["rodata"] + flash["data"]) / len(blob)
            if args.instructions:
                x1 = zoo.quantized(name, x[:1])
                instr = aot_vs_tflm.instructions(blob, x1, runner, args.k, Path(d))
                r["instructions_per_inference"] = instr
                r["instr_ratio"] = instr["aot"] / instr["tflm"]
    if args.bench and name == large_input.MODEL:
        r["large_input"] = large_input.measure(run, name, n=args.bench)
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=200, help="inputs per model (default 200)")
    ap.add_argument("-k", type=int, default=3, help="extra inferences counted under callgrind (default 3)")
    ap.add_argument("--bench", type=int, default=30,
                    help="inputs benched for large_input_link_efficiency (0: skip)")
    ap.add_argument("--no-instructions", dest="instructions", action="store_false",
                    help="skip callgrind (instr_ratio null)")
    args = ap.parse_args()
    per = {}
    with tempfile.TemporaryDirectory(prefix="esptiny-zoo-") as d:
        work = Path(d)
        run = new_run(work / "run")
        for name in zoo.NAMES:
            per[name] = r = measure(name, run, work, args)
            print(f"{name:26s} tflm: {r['tflm'][:40]:40s} aot: {r['aot'][:60]}", flush=True)
            print(f"{'':26s} bit-exact {r['bit_exact_fraction']}, RAM AOT/TFLM {r['ram_ratio']}, "
                  f"flash AOT/.tflite {r['flash_ratio']}, instructions AOT/TFLM {r['instr_ratio']}; "
                  f"ESP32-S3 fit {json.dumps(r['fit_esp32s3'])}", flush=True)
    exact = [r["bit_exact_fraction"] for r in per.values() if r["bit_exact_fraction"] is not None]
    ram = [r["ram_ratio"] for r in per.values() if r["ram_ratio"] is not None]
    large = per.get(large_input.MODEL, {}).get("large_input")
    summary = {
        "models": len(per),
        "imported": sum(r["imported"] for r in per.values()),
        "evaluated": sum(r["evaluated"] for r in per.values()),
        "exported": sum(r["exported_any"] for r in per.values()),
        "aot_takes": sum(r["aot"] == "takes it" for r in per.values()),
        # over all models: a model the AOT engine refuses has no bit-exact outputs (0)
        "min_bit_exact_fraction": min([r["bit_exact_fraction"] or 0.0 for r in per.values()]),
        "min_bit_exact_fraction_compiled": min(exact) if exact else None,
        "max_ram_ratio": max(ram) if ram else None,
        "all_fit_esp32s3": all(v["fits"] for r in per.values() for v in r["fit_esp32s3"].values()),
        "large_input_link_efficiency": large and large["efficiency"],
        "large_input": large,
        "instructions_source": "x86-64 instructions, valgrind callgrind on this host",
        "per_model": per,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
