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
DIGITS = [sys.executable, "-m", "pipeline", "run", "digits", "--k", "1-60", "--quiet"]


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


def test_events_to_a_fifo_nobody_reads_still_let_ctrl_c_end_the_command(
    tmp_path: Path,
) -> None:
    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)
    process = subprocess.Popen(
        [*DIGITS, "--events", str(fifo)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr


def test_a_signal_ignored_at_the_start_stays_ignored(tmp_path: Path) -> None:
    """``nohup`` ignores SIGHUP: the run must go on when the terminal goes away."""
    out = tmp_path / "results.json"
    process = subprocess.Popen(
        [*DIGITS, "--out", str(out)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),
    )
    time.sleep(1.5)
    process.send_signal(signal.SIGHUP)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert out.exists()


def test_an_interrupt_held_by_a_shield_that_raised_is_not_kept_for_later() -> None:
    from pipeline.interrupts import Interrupts

    held = Interrupts()
    with pytest.raises(KeyboardInterrupt), held.shield():
        with held.shield():  # nested: the outer one decides
            held(signal.SIGINT, None)
        assert held.pending
        raise ImportError("no such module")  # the block failed, the interrupt still counts
    assert not held.pending
    with held.shield():
        pass  # nothing left over to raise here
