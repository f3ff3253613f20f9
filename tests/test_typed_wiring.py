"""A type checker sees what flows through each channel: a stage handed the wrong end is an
error before anything runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WIRING = """
from pipeline import Pipeline
from pipeline.channel import Channel
from stages.dataset import Dataset
from stages.flow import Partitioned, load_stage, partition_stage
from stages.partition import parse_cv
from stages.search_space import SearchSpace

pipe = Pipeline()
space = SearchSpace(ks=(1,), metrics=("euclidean",), weights=("uniform",))
datasets: Channel[Dataset] = pipe.channel("datasets")
parts: Channel[Partitioned] = pipe.channel("folds")
"""

RIGHT = (
    WIRING
    + """
pipe.stage("load", load_stage, datasets.sender, "iris")
pipe.stage(
    "partition", partition_stage, datasets.receiver, parts.sender,
    cv=parse_cv("kfold:3"), seed=0, space=space,
)
"""
)

WRONG = (
    WIRING
    + """
pipe.stage("load", load_stage, parts.sender, "iris")
pipe.stage("partition", partition_stage, datasets.receiver, parts.sender, cv=1, seed=0, space=space)
"""
)


def test_mypy_accepts_right_wiring_and_refuses_a_wrong_end_or_option(tmp_path: Path) -> None:
    (tmp_path / "right.py").write_text(RIGHT)
    (tmp_path / "wrong.py").write_text(WRONG)
    checked = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--cache-dir",
            str(tmp_path / "cache"),
            str(tmp_path / "right.py"),
            str(tmp_path / "wrong.py"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    errors = [line for line in checked.stdout.splitlines() if ": error:" in line]
    assert all("wrong.py" in line for line in errors), checked.stdout
    assert any(
        "wrong.py:14:" in line and "MemoryObjectSendStream[Dataset]" in line for line in errors
    ), checked.stdout
    assert any("wrong.py:15:" in line and '"cv"' in line for line in errors), checked.stdout
