"""Writes that never leave half a file or no directory at all (esptiny.atomic)."""
import os

import pytest
from esptiny import atomic


def test_replace_dir_swaps_in_one_step(tmp_path):
    out, stage = tmp_path / "project", tmp_path / ".project.stage"
    out.mkdir()
    (out / "old.txt").write_text("old")
    stage.mkdir()
    (stage / "new.txt").write_text("new")
    assert atomic._exchange(stage, out)  # this file system swaps atomically
    atomic._exchange(stage, out)  # swap back for the real call
    atomic.replace_dir(stage, out)
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project"]  # nothing left behind


def test_replace_dir_into_nothing(tmp_path):
    stage = tmp_path / "stage"
    stage.mkdir()
    (stage / "a").write_text("a")
    atomic.replace_dir(stage, tmp_path / "out")
    assert (tmp_path / "out" / "a").read_text() == "a" and not stage.exists()


def test_failed_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "m.json"
    atomic.write_json(path, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert path.read_text() == '{\n  "a": 1\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]


def test_update_text_keeps_an_unchanged_file(tmp_path):
    path = tmp_path / "model_aot.c"
    assert atomic.update_text(path, "int x;\n")
    os.utime(path, ns=(1, 1))
    assert not atomic.update_text(path, "int x;\n")
    assert path.stat().st_mtime_ns == 1
    assert atomic.update_text(path, "int y;\n") and path.read_text() == "int y;\n"
