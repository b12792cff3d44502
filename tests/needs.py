"""What a test needs from the machine. Locally a missing tool or data set skips the test,
naming it; in CI (CI set, or ESPTINY_REQUIRE=all) it fails instead: nothing skips there."""
import os
import shutil

import pytest


def strict() -> bool:
    return bool(os.environ.get("CI")) or os.environ.get("ESPTINY_REQUIRE") == "all"


def missing(what: str):
    """Skip (or, in CI, fail) because `what` is not on this machine."""
    if strict():
        pytest.fail(f"missing on this machine: {what}", pytrace=False)
    pytest.skip(f"missing on this machine: {what}")


def require(tool: str, package: str | None = None) -> str:
    """The path of `tool` on PATH, or skip/fail naming it (and the Debian package)."""
    path = shutil.which(tool)
    if path is None:
        missing(tool + (f" (Debian package {package})" if package else ""))
    return path
