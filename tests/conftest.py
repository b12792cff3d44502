"""Shared fixtures. Real data (Debian's Fashion-MNIST copy), small subsets, tiny models."""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
from needs import missing  # noqa: E402


@pytest.fixture(scope="session")
def fashion():
    from esptiny.errors import UserError
    from esptiny.stages import data
    try:
        return data.load(download=False)
    except UserError as e:  # no copy on this machine: `make test` installs Debian's
        missing(f"Fashion-MNIST (Debian package dataset-fashion-mnist): {e}")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, fashion):
    """A run directory with a small CNN trained for one epoch on 3,000 images and its
    float32 and int8 variants, as the train and compress stages record them."""
    from esptiny.stages import compress as compress_stage
    from esptiny.stages import train as train_stage
    from esptiny.stages.run import new_run
    run = new_run(tmp_path_factory.mktemp("tiny") / "run")
    train_stage.train(run, model_name="cnn", train_limit=3000, test_limit=1000, epochs=1, seed=1,
                      batch_size=128, lr=2e-3)
    compress_stage.compress(run, methods=["float32", "int8"], rep_samples=100)
    return run


@pytest.fixture(scope="session")
def quadrant_npz(tmp_path_factory):
    """A small learnable synthetic data set: 8x8 images, the class is the brightest quadrant."""
    import numpy as np
    rng = np.random.default_rng(0)

    def make(n):
        x = rng.random((n, 8, 8, 1)).astype(np.float32) * 0.5
        y = rng.integers(0, 4, n)
        for i, c in enumerate(y):
            r, q = divmod(int(c), 2)
            x[i, 4 * r:4 * r + 4, 4 * q:4 * q + 4, 0] += 0.5
        return x, y

    xtr, ytr = make(1200)
    xte, yte = make(300)
    path = tmp_path_factory.mktemp("npz") / "quadrants.npz"
    np.savez(path, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte,
             labels=np.array(["top-left", "top-right", "bottom-left", "bottom-right"]))
    return path


def pytest_terminal_summary(terminalreporter):
    """One line naming every skipped test and why; `make test` repeats it at the end. In
    CI (CI set) nothing may skip: needs.py fails instead."""
    skipped = terminalreporter.stats.get("skipped", [])
    reasons = {}
    for rep in skipped:
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        reasons.setdefault(reason.removeprefix("Skipped: "), []).append(rep.nodeid)
    line = "none" if not skipped else "; ".join(f"{len(v)} ({k})" for k, v in sorted(reasons.items()))
    terminalreporter.write_line(f"pytest skipped: {line}")
    out = os.environ.get("ESPTINY_SKIPPED_FILE")
    if out and skipped:
        with open(out, "a") as f:
            f.write(f"pytest: {line}\n")
