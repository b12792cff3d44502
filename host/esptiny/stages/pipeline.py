"""The whole pipeline, stage after stage, into one run directory: what `esptiny run` (and
`make demo`) does. Each stage can be rerun alone with its own command."""
from __future__ import annotations

from ..errors import UserError
from . import compress as compress_stage
from . import train as train_stage
from .bench import run_bench
from .evaluate import evaluate
from .export import export
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
