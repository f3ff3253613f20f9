"""A signal at any moment ends a command the same way: exit 130, no traceback, no stray file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.leaks import descendants, wait_for_exit

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
@pytest.mark.parametrize("after", [0.05, 0.4, 1.2])
def test_a_signal_at_any_moment_is_an_interruption(
    signum: int, after: float, tmp_path: Path
) -> None:
    """From the imports to the results being written (the run takes about two seconds)."""
    out = tmp_path / "results.json"
    command = [sys.executable, "-m", "pipeline", "run", "wine", "--k", "1-60", "--quiet"]
    process = subprocess.Popen(
        [*command, "--weights", "uniform,distance", "--out", str(out)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(after)
    family = descendants(process.pid)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode in (0, 130), stderr  # 0: it had finished first
    assert "Traceback" not in stderr
    if process.returncode == 130:
        assert stderr.strip().endswith("interrupted"), stderr
    assert [p.name for p in tmp_path.iterdir()] in ([], ["results.json"])  # no temp file
    assert not wait_for_exit(family)


def test_data_from_a_fifo_nobody_writes_still_lets_ctrl_c_end_the_command(
    tmp_path: Path,
) -> None:
    fifo = tmp_path / "data.csv"
    os.mkfifo(fifo)
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", str(fifo), "--quiet"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)  # blocked opening the FIFO
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)  # ended, not left waiting for a writer
    assert process.returncode == 130, stderr
    assert stderr.strip() == "interrupted"
