"""What each model of the test zoo (tests/zoo.py) is made of, and what esptiny does with it.

    python benchmarks/zoo_facts.py [--aot-inputs N] [--time-inputs N] [NAME ...]

Per model, all measured on this host: params and MACs (esptiny.model.reader.Graph), the
.tflite's bytes and ops, input/output dtype, shape and bytes, TFLite-Micro's recorded arena
(esptiny.model.tflm.arena_bytes, "total"), TFLite-Micro host runtime time per inference
(the PyPI tflite-micro wheel's reference kernels on x86-64, median of --time-inputs
invokes after one warm-up), build (seeded build + brief training) and conversion seconds;
then the AOT compiler (accepted, or its refusal; where accepted, the fraction of
--aot-inputs outputs identical to TFLite-Micro's, byte for byte) and export with the
TFLite-Micro engine: the protocol frame check (targets.firmware_model.read_model, which
targets.export uses), the op resolver (targets.resolver.resolver_ops) and the fit check
per board (fit.plan_arena + fit.check).

Prints a markdown table, the refusal lines below it, and one JSON line last.
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import zoo  # noqa: E402
from esptiny import aot  # noqa: E402
from esptiny.aot import host  # noqa: E402
from esptiny.errors import ModelRefused, UserError  # noqa: E402
from esptiny.model import tflm  # noqa: E402
from esptiny.model.reader import Graph  # noqa: E402
from esptiny.targets import boards, fit  # noqa: E402
from esptiny.targets.firmware_model import read_model  # noqa: E402
from esptiny.targets.resolver import resolver_ops  # noqa: E402

BOARDS = ("esp32", "esp32s3", "esp32c3")


def tflm_ms_per_inference(blob: bytes, x: np.ndarray) -> float:
    interp = tflm.interpreter(blob)
    interp.set_input(x[:1], 0)
    interp.invoke()  # warm-up: first invoke prepares
    times = []
    for i in range(len(x)):
        interp.set_input(x[i:i + 1], 0)
        t0 = time.perf_counter()
        interp.invoke()
        times.append(time.perf_counter() - t0)
    return round(1000 * statistics.median(times), 2)


def refusal(fn, kind=ModelRefused):
    """None when fn() passes, else its one-line refusal."""
    try:
        fn()
        return None
    except kind as e:
        return str(e)


def aot_facts(name: str, blob: bytes, n: int) -> dict:
    why = refusal(lambda: aot.compile_model(blob))
    if why:
        return {"accepted": False, "refusal": why}
    x = zoo.quantized(name, zoo.inputs(name, n, seed=2))
    y_aot = host.run(blob, x).reshape(n, -1)
    y_tflm = tflm.run(blob, x).reshape(n, -1)
    same = np.all(y_aot == y_tflm, axis=1)
    return {"accepted": True, "inputs": n, "identical_fraction": float(same.mean()),
            "arena_bytes_aot": aot.compile_model(blob).info["arena_bytes"]}


def export_facts(name: str, blob: bytes, recorded: int) -> dict:
    graph = Graph(blob)
    out = {"frame": refusal(lambda: read_model(blob)),
           "resolver": refusal(lambda: resolver_ops(graph.op_names())), "boards": {}}
    for b in BOARDS:
        board = boards.get(b)
        arena = fit.plan_arena(recorded, graph, board)
        why = refusal(lambda: fit.check(board, len(blob), arena, name), UserError)
        out["boards"][b] = {"arena_bytes": arena.total, "fits": why is None, "refusal": why}
    return out


def facts(name: str, aot_inputs: int, time_inputs: int) -> dict:
    blob = zoo.tflite(name)
    g = Graph(blob)
    t_in, t_out = g.tensors[g.inputs[0]], g.tensors[g.outputs[0]]
    recorded = tflm.arena_bytes(blob)["total"]
    x = zoo.quantized(name, zoo.inputs(name, time_inputs, seed=1))
    return {
        "params": g.params(), "macs": g.macs(), "tflite_bytes": len(blob),
        "ops": g.op_names(), "op_sequence": [op.name for op in g.ops],
        "input": {"dtype": t_in.dtype_name, "shape": list(t_in.shape), "bytes": t_in.nbytes},
        "output": {"dtype": t_out.dtype_name, "shape": list(t_out.shape), "bytes": t_out.nbytes},
        "tflm_arena_bytes": recorded,
        "tflm_host_ms_per_inference": tflm_ms_per_inference(blob, x),
        "build_seconds": zoo.SECONDS[name]["build"], "convert_seconds": zoo.SECONDS[name]["convert"],
        "build_cpu_seconds": zoo.SECONDS[name]["build_cpu"],
        "convert_cpu_seconds": zoo.SECONDS[name]["convert_cpu"],
        "aot": aot_facts(name, blob, aot_inputs),
        "export_tflm": export_facts(name, blob, recorded),
    }


def io_text(t: dict) -> str:
    return f"{t['dtype']} {'x'.join(map(str, t['shape']))} ({t['bytes']:,} B)"


def table(all_facts: dict) -> str:
    rows = ["| model | params | MACs | .tflite B | ops | input | output | TFLM arena B | TFLM host ms | "
            "build s | convert s | AOT | export frame | " + " | ".join(f"fit {b}" for b in BOARDS) + " |",
            "|" + "---|" * (13 + len(BOARDS))]
    notes = []
    for name, f in all_facts.items():
        a = f["aot"]
        if a["accepted"]:
            aot_cell = f"accepted, {a['identical_fraction']:.3f} identical ({a['inputs']} inputs)"
        else:
            aot_cell = "refused (a)"
            notes.append(f"- {name}, AOT: {a['refusal']}")
        e = f["export_tflm"]
        frame = "ok" if e["frame"] is None else "refused (f)"
        if e["frame"]:
            notes.append(f"- {name}, export frame: {e['frame']}")
        if e["resolver"]:
            notes.append(f"- {name}, export op resolver: {e['resolver']}")
        fits = []
        for b, r in e["boards"].items():
            fits.append(f"fits ({r['arena_bytes']:,} B arena)" if r["fits"] else "refused (b)")
            if not r["fits"]:
                notes.append(f"- {name}, fit {b}: {r['refusal']}")
        rows.append(f"| {name} | {f['params']:,} | {f['macs']:,} | {f['tflite_bytes']:,} | {' '.join(f['ops'])} | "
                    f"{io_text(f['input'])} | {io_text(f['output'])} | {f['tflm_arena_bytes']:,} | "
                    f"{f['tflm_host_ms_per_inference']} | {f['build_seconds']} | {f['convert_seconds']} | "
                    f"{aot_cell} | {frame} | " + " | ".join(fits) + " |")
    return "\n".join(rows + [""] + notes)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="*", default=list(zoo.NAMES))
    ap.add_argument("--aot-inputs", type=int, default=200)
    ap.add_argument("--time-inputs", type=int, default=20)
    args = ap.parse_args()
    t0 = time.perf_counter()
    for name in args.names:  # build and convert everything first: the zoo's own time
        zoo.tflite(name)
    zoo_seconds = round(time.perf_counter() - t0, 1)
    all_facts = {name: facts(name, args.aot_inputs, args.time_inputs) for name in args.names}
    print(table(all_facts))
    total = {k: round(sum(f[k] for f in all_facts.values()), 1)
             for k in ("convert_seconds", "convert_cpu_seconds", "build_seconds", "build_cpu_seconds")}
    print(f"\nzoo built and converted in {zoo_seconds} s wall on this host; conversion alone "
          f"{total['convert_seconds']} s wall, {total['convert_cpu_seconds']} s CPU (all threads); "
          f"building and training {total['build_seconds']} s wall, {total['build_cpu_seconds']} s CPU")
    print(json.dumps({"zoo_seconds": zoo_seconds, **total, "models": all_facts}))


if __name__ == "__main__":
    main()
