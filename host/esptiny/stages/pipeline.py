"""The whole pipeline, stage after stage, into one run directory: what `esptiny run` (and
`make demo`) does. Each stage can be rerun alone with its own command."""
from __future__ import annotations

from ..errors import UserError
from . import compress as compress_stage
from . import train as train_stage
from .bench import run_bench
from .evaluate import evaluate
from .export import export
from .importer import import_tflite, variant_name
from .report import report
from .run import Run, new_run

DEPLOY_VARIANT = "int8"  # what `run` exports and benches


def run_all(run_dir, train_options: dict, compress_options: dict, methods: list,
            tflm_limit: int | None = None, board: str = "esp32", do_export: bool = True,
            bench: bool = True, bench_limit: int = 2000) -> Run:
    """Train, compress, evaluate, export the int8 variant for `board`, bench it on the
    virtual board (`bench_limit` test images), report."""
    if (bench or do_export) and DEPLOY_VARIANT not in methods:
        raise UserError(f"export and bench need the {DEPLOY_VARIANT} variant: add it to --methods, "
                        "or pass --no-export --no-bench")
    run = new_run(run_dir)
    train_stage.train(run, **train_options)
    compress_stage.compress(run, methods, **compress_options)
    evaluate(run, tflm_limit=tflm_limit)
    if do_export:
        export(run, variant=DEPLOY_VARIANT, board=board)
    if bench:
        run_bench(run, variant=DEPLOY_VARIANT, ports=("sim",),
                  limit=min(bench_limit, run.stage("train")["test_images"]))
    report(run)
    return run


def run_tflite(run_dir, model_path, data_path=None, random_n=None, name=None,
               tflm_limit: int | None = None, board: str = "esp32", do_export: bool = True,
               bench: bool = True, bench_limit: int = 2000) -> Run:
    """A user's .tflite through every stage: import (with its data or seeded random
    inputs), evaluate, export for `board`, bench on the virtual board, report. A model no
    board can run (float16, dynamic range) is evaluated and reported, not exported."""
    from pathlib import Path
    run = new_run(run_dir)
    name = variant_name(Path(model_path), name)
    entry = import_tflite(run, Path(model_path), data_path, name, random_n)
    evaluate(run, [name], tflm_limit=tflm_limit)
    if entry["deployable"] and do_export:
        export(run, variant=name, board=board)
    if entry["deployable"] and bench:
        run_bench(run, variant=name, ports=("sim",), limit=min(bench_limit, entry["data"]["images"]))
    report(run)
    return run
