"""Every test must leave nothing behind: no worker processes, no shared-memory segments."""

from __future__ import annotations

import os
from collections.abc import Iterator

# Before SciPy is first imported: scikit-learn's estimator checks then run their
# array-API input check on KNNSearchCV (with NumPy arrays) instead of skipping it.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import pytest
from hypothesis import settings

from tests.leaks import segments, wait_until_gone

# The property tests draw the same examples on every run, so a failure on a fresh
# machine is the code's and reproduces; HYPOTHESIS_PROFILE=explore draws new ones.
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


@pytest.fixture(autouse=True)
def nothing_left_behind() -> Iterator[None]:
    before = segments()
    yield
    left = wait_until_gone()
    assert not left, f"worker processes left behind: {[p.pid for p in left]}"
    assert segments() - before == set(), "shared-memory segments left behind"
