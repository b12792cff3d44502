"""The run directory's manifest: stages that write at once lose nothing."""
import multiprocessing

from esptiny.stages.run import Run


def _export_many(path, board, n):
    run = Run(path)
    for i in range(n):
        run.record("export", {"projects": {f"v{i}-{board}": {"i": i}}, "seconds": 0.1},
                   merge="projects")


def test_two_stages_writing_at_once_lose_no_entry(tmp_path):
    Run(tmp_path).record("train", {"model": "m"})
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_export_many, args=(tmp_path, b, 60)) for b in ("esp32", "esp32s3")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    stages = Run(tmp_path).manifest()["stages"]
    assert stages["train"] == {"model": "m"}
    assert set(stages["export"]["projects"]) == {f"v{i}-{b}" for i in range(60) for b in ("esp32", "esp32s3")}


def test_merge_puts_the_latest_last(tmp_path):
    run = Run(tmp_path)
    for key in ("a", "b", "a"):
        run.record("export", {"projects": {key: {"k": key}}}, merge="projects")
    assert list(run.manifest()["stages"]["export"]["projects"]) == ["b", "a"]
