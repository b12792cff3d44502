"""The default pipeline on the full data set: every variant's size and accuracy, and
where the time goes.

Runs the default `esptiny run` (what `make demo` runs: train .. report, the virtual-board
bench included) into a fresh run directory, prints the variant table, and ends with one
JSON line: the figures, seconds per stage (stage_seconds) and, inside them, per variant
and runtime (breakdown: Keras fit and the converter per compression method; the TFLite
interpreter, TFLite-Micro's host runtime and the AOT engine (build and run) per variant).
Targets: float32_acc >= 0.915; int8 within 0.3 points of float32; int8_size_ratio <= 0.27;
the whole run within 600 s on a 2-core machine.
"""
import json
import sys
import tempfile
import time
from pathlib import Path

from click.testing import CliRunner
from esptiny.cli import main
from esptiny.stages.report import markdown
from esptiny.stages.run import Run


def breakdown(run: Run) -> dict:
    """Seconds inside the stages: per compression method and per evaluated variant."""
    stages = run.manifest()["stages"]
    return {
        "train_fit": stages["train"].get("fit_seconds"),
        "compress": {n: v.get("seconds") for n, v in stages["compress"]["variants"].items()},
        "evaluate": {n: v.get("seconds") for n, v in stages["evaluate"]["variants"].items()},
        "evaluate_jobs": stages["evaluate"].get("jobs"),
    }


def main_():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="esptiny-bench-")) / "run"
    t0 = time.perf_counter()
    r = CliRunner().invoke(main, ["run", str(out)], catch_exceptions=False)
    seconds = time.perf_counter() - t0
    if r.exit_code != 0:
        print(r.output, file=sys.stderr)
        sys.exit(r.exit_code)
    data = json.loads(Run(out).file("report.json").read_text())
    print(markdown(data).split("## Variants")[1].split("![")[0])
    v = data["variants"]
    print(json.dumps({
        "float32_acc": v["float32"]["accuracy"],
        "int8_acc": v["int8"]["accuracy"],
        "int8_minus_float32_points": round(100 * (v["int8"]["accuracy"] - v["float32"]["accuracy"]), 2),
        "int8_size_ratio": round(v["int8"]["bytes"] / v["float32"]["bytes"], 4),
        "tflm_vs_tflite_top1": v["int8"]["tflm"]["agreement_with_tflite_top1"],
        "int8_arena_bytes": v["int8"]["tflm"]["arena_bytes"],
        "variants": list(v),
        "accuracy": {n: x["accuracy"] for n, x in v.items()},
        "bytes": {n: x["bytes"] for n, x in v.items()},
        "stage_seconds": data["stage_seconds"],
        "breakdown": breakdown(Run(out)),
        "seconds": round(seconds, 1),
        "run": str(out),
    }))


if __name__ == "__main__":
    main_()
