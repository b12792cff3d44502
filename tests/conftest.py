"""Shared fixtures. Real data (Debian's Fashion-MNIST copy), small subsets, tiny models."""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def fashion():
    from esptiny import data
    try:
        return data.load(download=False)
    except Exception as e:  # no copy on this machine: `make test` installs one
        pytest.skip(f"Fashion-MNIST not available: {e}")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, fashion):
    """A run directory with a small CNN trained for one epoch on 3,000 images and its
    float32 and int8 variants, as the train and compress stages record them."""
    from esptiny import pipeline
    run = pipeline.new_run(tmp_path_factory.mktemp("tiny") / "run")
    pipeline.train(run, model_name="cnn", train_limit=3000, test_limit=1000, epochs=1, seed=1)
    pipeline.compress(run, methods=["float32", "int8"], rep_samples=100)
    return run
