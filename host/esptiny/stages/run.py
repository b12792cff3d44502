"""The run directory: one folder a run, a JSON manifest saying what each stage made.

Each stage reads the manifest, writes its files (atomically) and then its own entry,
so any stage can be rerun alone and reports are always built from what is on disk.
"""
from __future__ import annotations

import fcntl
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .. import atomic
from ..errors import UserError

MANIFEST = "manifest.json"
LOCK = ".manifest.lock"


class Run:
    def __init__(self, path):
        self.path = Path(path)

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    def manifest(self) -> dict:
        if not self.manifest_path.exists():
            return {"stages": {}}
        try:
            return json.loads(self.manifest_path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise UserError(f"{self.manifest_path}: unreadable run manifest ({e})") from None

    def stage(self, name: str) -> dict:
        """A finished stage's entry, or a one-line error naming the command that makes it."""
        entry = self.manifest()["stages"].get(name)
        if entry is None:
            raise UserError(f"{self.path}: no '{name}' stage in this run yet; run `esptiny {name} {self.path}` first")
        return entry

    def has(self, name: str) -> bool:
        return name in self.manifest()["stages"]

    @contextmanager
    def _locked(self):
        """Hold the run's manifest lock: stages running at once (two benches, an export
        beside an evaluate) read, change and write the manifest one at a time."""
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / LOCK, os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def record(self, name: str, entry: dict, merge: str | None = None):
        """Write a stage's entry. With `merge`, entry[merge] (a dict) is laid over what the
        manifest holds under that key now, so entries other processes wrote meanwhile stay;
        keys written now come last."""
        with self._locked():
            m = self.manifest()
            if merge is not None:
                merged = dict(m["stages"].get(name, {}).get(merge, {}))
                for key, value in entry.get(merge, {}).items():
                    merged.pop(key, None)
                    merged[key] = value
                entry = {**entry, merge: merged}
            m["stages"][name] = entry
            atomic.write_json(self.manifest_path, m)

    def update(self, change):
        """change(manifest) under the lock, then written: for what is not one stage's entry."""
        with self._locked():
            m = self.manifest()
            change(m)
            atomic.write_json(self.manifest_path, m)

    @contextmanager
    def timed(self, name: str, merge: str | None = None):
        """Run a stage; record its entry (filled by the caller) with its wall time."""
        entry: dict = {}
        t0 = time.perf_counter()
        yield entry
        entry["seconds"] = round(time.perf_counter() - t0, 2)
        entry["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        self.record(name, entry, merge)

    def file(self, rel: str) -> Path:
        return self.path / rel

    def variants(self) -> dict:
        """name -> variant entry (path relative to the run, kind, ...): the compressed ones
        and the imported ones (stage 'import', whose entries carry their own test data)."""
        stages = self.manifest()["stages"]
        if "compress" not in stages and "import" not in stages:
            raise UserError(f"{self.path}: no variants in this run yet; run `esptiny compress "
                            f"{self.path}` or `esptiny import {self.path} MODEL` first")
        return {**stages.get("compress", {}).get("variants", {}),
                **stages.get("import", {}).get("variants", {})}

    def test_set(self, variant: str):
        """What `variant` is evaluated and benched on: its imported data, else the test
        split of the data the run was trained on (data.TestSet)."""
        from . import data
        entry = self.variants().get(variant)
        if entry is None:
            self.variant_path(variant)  # the one-line error naming the variants
        stored = entry.get("data")
        if stored is None:
            return self.dataset().test_set()
        y = np.load(self.file(stored["y"]), allow_pickle=False) if stored.get("y") else None
        return data.TestSet(np.load(self.file(stored["x"]), allow_pickle=False), y,
                            list(stored.get("labels") or []), stored["source"])

    def variant_path(self, name: str) -> Path:
        variants = self.variants()
        if name not in variants:
            raise UserError(f"no variant '{name}' in {self.path}; it has: {', '.join(variants)}")
        return self.file(variants[name]["path"])

    def deployable_variant_path(self, name: str) -> Path:
        """The variant's .tflite, or a one-line error when a board cannot run it (the
        reason its compression method recorded), naming the variants that can."""
        variants = self.variants()
        path = self.variant_path(name)
        entry = variants[name]
        if not entry.get("deployable", True):
            ok = [n for n, v in variants.items() if v.get("deployable", True)]
            raise UserError(f"variant '{name}' cannot run on the board: {entry.get('reason') or 'not deployable'}"
                            f"; export {' or '.join(ok) if ok else 'int8 (esptiny compress RUN --methods int8)'}")
        return path

    def dataset(self):
        """The data set the run was trained on (same source, same limits)."""
        from . import data
        return data.from_spec(self.stage("train")["dataset"])


def new_run(path) -> Run:
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{path}: exists and is not a directory")
    path.mkdir(parents=True, exist_ok=True)
    return Run(path)
