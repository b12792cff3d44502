"""large_input_link_efficiency, shared by bench_link.py and model_zoo.py: a model whose input
a frame cannot carry (the zoo's 96x96x3 MobileNet, 27,648 B) benched over a paced link at
921600 baud: achieved images/s over the link-limited rate (link/client.py link_rate: UART
full duplex, every piece's framing counted). Target >= 0.9.

On the virtual board (--port sim: the firmware's C core with TFLite-Micro's host runtime,
behind the link emulation pacing the baud both ways)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # tests/zoo.py
sys.path.insert(0, str(HERE))

import zoo  # noqa: E402
from esptiny.stages.bench import run_bench  # noqa: E402
from esptiny.stages.importer import import_tflite  # noqa: E402
from esptiny.stages.run import new_run  # noqa: E402

MODEL = "mobilenet_v1_025_96_rgb"
TARGET = 0.9


def zoo_run(root: Path, n: int, name: str = MODEL):
    import numpy as np
    run = new_run(root / "run")
    path = root / f"{name}.tflite"
    path.write_bytes(zoo.tflite(name))
    x = zoo.inputs(name, n)
    np.savez(root / f"{name}.npz", x_test=x, y_test=zoo.labels(name, n))
    import_tflite(run, path, root / f"{name}.npz", name)
    return run


def _figures(run, name, port, summary) -> dict:
    entry = run.stage("bench")["results"][f"{name}@{port}"]
    doc = json.loads(run.file(entry["path"]).read_text())
    board = next(iter(doc["boards"].values()))
    achieved, limit = doc["throughput"]["images_per_s"], board["link_limited_images_per_s"]
    return {"efficiency": round(achieved / limit, 4) if limit else None,
            "images_per_s": round(achieved, 3), "link_limited_images_per_s": limit and round(limit, 3),
            "images": summary["images"], "identical_to_tflm": summary["device_vs_tflm_identical"],
            "retries": summary["retries"]}


def measure(run, name: str = MODEL, n: int = 30, baud: int = 921600) -> dict:
    """The figure and where it came from."""
    s = run_bench(run, name, ports=("sim",), baud=baud, limit=n)
    return {**_figures(run, name, "sim", s), "baud": baud, "target": TARGET,
            "source": f"virtual board (--port sim) paced at {baud} baud"}
