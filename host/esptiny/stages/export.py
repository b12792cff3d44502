"""The export stage: a run's variant as a firmware project (targets/export.py), with the
labels the run was trained on, recorded in the run's manifest."""
from __future__ import annotations

import os
import time
from pathlib import Path

from ..errors import UserError
from ..progress import say
from ..targets import export as project
from .run import Run


def export(run: Run, variant: str = "int8", board: str = "esp32", engine: str = "tflm", out=None,
           into_repo: bool = False, console: str | None = None, protocol: str = "esptiny") -> dict:
    """Write the project (or, with into_repo, only firmware/model/); return what it wrote."""
    t_start = time.perf_counter()
    project.check_options(board, engine, console, into_repo, protocol)
    path = run.deployable_variant_path(variant)
    imported = run.variants()[variant].get("data")
    if imported is not None:  # an imported variant: the class names its data came with
        labels = imported.get("labels") or None
    else:
        try:
            labels = run.stage("train").get("labels")
        except UserError:
            labels = None
    source = os.path.relpath(path, run.path.parent) if path.is_relative_to(run.path.parent) else str(path)
    suffix = "" if protocol == "esptiny" else f"-{protocol}"
    out = Path(out or run.path / "firmware" / f"{variant}-{board}-{engine}{suffix}")
    info = project.export_project(path.read_bytes(), out, variant, board, engine, labels, source,
                                  into_repo, console, protocol)
    _record(run, info, time.perf_counter() - t_start)
    fit = info["fit"]
    say(f"exported {variant} for {board} ({project.ENGINES[engine]}) to {info['path']}: model "
        f"{info['model_bytes']:,} B, arena {info['arena']['total']:,} B, {fit['app_used_bytes']:,} "
        f"of {fit['app_partition_bytes']:,} app-partition bytes")
    return info


def _record(run: Run, info: dict, seconds: float):
    """Keep each export's figures in the run manifest, keyed variant-board-engine."""
    suffix = "" if info.get("protocol", "esptiny") == "esptiny" else f"-{info['protocol']}"
    key = f"{info['variant']}-{info['board']}-{info['engine']}{suffix}"
    run.record("export", {"projects": {key: info}, "seconds": round(seconds, 2),
                          "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}, merge="projects")


def latest_board(run: Run, variant: str) -> str | None:
    """The board `variant` was last exported for, if it was."""
    projects = run.manifest()["stages"].get("export", {}).get("projects", {})
    boards = [p["board"] for p in projects.values() if p.get("variant") == variant]
    return boards[-1] if boards else None
