"""Every example runs, so none of them rots."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
EXPECTED_OUTPUT = {
    "heartbeat_app.py": ["best: {'k':", "heartbeat:"],
    "hand_built_pipeline.py": ["k=", "events:", "candidate_scored="],
    "event_consumer.py": ["new best after", "finished in", "'run_finished': 1"],
    "dask_cluster.py": ["dask: 64 candidates on 2 workers", "best: {'k':"],
    "classify_new_samples.py": ["tuned: {'k':", "held-out accuracy:", "agrees: True"],
    "sklearn_dropin.py": ["best: {'metric':", "held-out accuracy:", "GridSearchCV agrees: True"],
}


def test_every_example_is_covered() -> None:
    assert {p.name for p in EXAMPLES.glob("*.py")} == set(EXPECTED_OUTPUT)


@pytest.mark.parametrize("name", sorted(EXPECTED_OUTPUT))
def test_example_runs(name: str) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    for fragment in EXPECTED_OUTPUT[name]:
        assert fragment in done.stdout
