"""Progress bars (rich) on stderr, quiet when not on a terminal unless asked."""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

_console = Console(stderr=True)


def enabled() -> bool:
    return os.environ.get("ESPTINY_PROGRESS", "auto") == "always" or (
        os.environ.get("ESPTINY_PROGRESS", "auto") == "auto" and sys.stderr.isatty())


@contextmanager
def bar(label: str, total: int, unit: str = ""):
    """Yields advance(n=1, **fields); fields show after the bar (loss, img/s, ...)."""
    if not enabled():
        yield lambda n=1, **fields: None
        return
    with Progress(TextColumn(f"[bold]{label:<12}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn(unit), TextColumn("{task.fields[info]}"), TimeRemainingColumn(),
                  console=_console, transient=False) as p:
        task = p.add_task(label, total=total, info="")

        def advance(n=1, **fields):
            info = "  ".join(f"{k} {v}" for k, v in fields.items())
            p.update(task, advance=n, **({"info": info} if fields else {}))
        yield advance


def say(msg: str):
    _console.print(msg, highlight=False, soft_wrap=True)
