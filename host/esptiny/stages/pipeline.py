"""The whole pipeline, stage after stage, into one run directory: what `esptiny run` (and
`make demo`) does. Each stage can be rerun alone with its own command."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..errors import UserError
from ..progress import say
from . import compress as compress_stage
from . import train as train_stage
from .bench import run_bench
from .evaluate import evaluate
from .export import export
from .importer import import_tflite, variant_name
from .report import report
from .run import Run, new_run

DEPLOY_VARIANT = "int8"  # what `run` exports and benches


class Steps:
    """The stages of one `run`, each done unless (with resume) what went into it last
    time is what would go in now and its result is still the one it recorded: then it
    is kept, and said so. What went in: the options, and the digests of the files the
    stage reads (so a stage rerun upstream reruns what follows)."""

    def __init__(self, run: Run, resume: bool):
        self.run, self.resume = run, resume
        self.kept: list = []
        self.done: list = []

    def do(self, name: str, inputs: dict, fn):
        key = _digest(json.dumps(inputs, sort_keys=True, default=str).encode())
        m = self.run.manifest()
        last = m.get("pipeline", {}).get(name)
        entry = m["stages"].get(name)
        if self.resume and entry is not None and last == {"inputs": key, "entry": _entry_digest(entry)}:
            self.kept.append(name)
            say(f"{name}: kept, its inputs are unchanged since {entry.get('finished', 'the last run')} (--resume)")
            return
        fn()
        self.done.append(name)

        def note(m):
            m.setdefault("pipeline", {})[name] = {"inputs": key, "entry": _entry_digest(m["stages"][name])}
        self.run.update(note)

    def file(self, rel: str) -> str:
        """The digest of one of the run's files (what a stage reads)."""
        return _digest(self.run.file(rel).read_bytes())

    def summary(self):
        """The stages of this run and their wall time, kept ones marked."""
        stages = self.run.manifest()["stages"]
        parts = [f"{n} kept" if n in self.kept else f"{n} {stages[n].get('seconds', 0):.1f} s"
                 for n in [*self.kept, *self.done, "report"] if n in stages]
        say("stage times: " + ", ".join(parts))


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _path_digest(path) -> str | None:
    """A user's file (its bytes) or folder (its files' sizes and times), to notice a change."""
    if not path or not Path(path).exists():
        return None
    p = Path(path)
    if p.is_file():
        return _digest(p.read_bytes())
    return _digest(json.dumps(sorted((str(f), f.stat().st_size, f.stat().st_mtime_ns)
                                     for f in p.rglob("*") if f.is_file())).encode())


def _entry_digest(entry: dict) -> str:
    return _digest(json.dumps(entry, sort_keys=True, default=str).encode())


def run_all(run_dir, train_options: dict, compress_options: dict, methods: list,
            tflm_limit: int | None = None, board: str = "esp32", do_export: bool = True,
            bench: bool = True, bench_limit: int = 2000, resume: bool = False,
            jobs: int | None = None) -> Run:
    """Train, compress, evaluate, export the int8 variant for `board`, bench it on the
    virtual board (`bench_limit` test images), report. With resume, a stage whose inputs
    did not change since the last run is kept."""
    if (bench or do_export) and DEPLOY_VARIANT not in methods:
        raise UserError(f"export and bench need the {DEPLOY_VARIANT} variant: add it to --methods, "
                        "or pass --no-export --no-bench")
    run = new_run(run_dir)
    steps = Steps(run, resume)
    given = {k: _path_digest(train_options.get(k)) for k in ("keras_model", "data_npz")}
    steps.do("train", {**train_options, "files": given}, lambda: train_stage.train(run, **train_options))
    steps.do("compress", {"model": steps.file(train_stage.MODEL_FILE), "methods": methods, **compress_options},
             lambda: compress_stage.compress(run, methods, **compress_options))
    variants = {n: steps.file(v["path"]) for n, v in run.variants().items()}
    steps.do("evaluate", {"variants": variants, "tflm_limit": tflm_limit},
             lambda: evaluate(run, tflm_limit=tflm_limit, jobs=jobs))
    if do_export:
        steps.do("export", {"model": variants[DEPLOY_VARIANT], "board": board},
                 lambda: export(run, variant=DEPLOY_VARIANT, board=board))
    if bench:
        limit = min(bench_limit, run.stage("train")["test_images"])
        steps.do("bench", {"model": variants[DEPLOY_VARIANT], "limit": limit, "board": board},
                 lambda: run_bench(run, variant=DEPLOY_VARIANT, ports=("sim",), limit=limit))
    report(run)
    steps.summary()
    return run


def run_tflite(run_dir, model_path, data_path=None, random_n=None, name=None,
               tflm_limit: int | None = None, board: str = "esp32", do_export: bool = True,
               bench: bool = True, bench_limit: int = 2000) -> Run:
    """A user's .tflite through every stage: import (with its data or seeded random
    inputs), evaluate, export for `board`, bench on the virtual board, report. A model no
    board can run (float16, dynamic range) is evaluated and reported, not exported."""
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
