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


def _only_interpreter_start(stderr: str) -> bool:
    """A KeyboardInterrupt whose traceback holds the interpreter's start only (its own
    frozen modules, ``site``, the ``pipeline`` package's ``__init__``): none of the
    entry's lines, where the command's handlers are installed."""
    packages = (f'File "{ROOT / "pipeline"}', f'File "{ROOT / "stages"}')
    ours = [line for line in stderr.splitlines() if line.strip().startswith(packages)]
    started = all(line.split('"')[1].endswith("pipeline/__init__.py") for line in ours)
    return "KeyboardInterrupt" in stderr and started


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
    if process.returncode not in (0, 130):
        # Before the interpreter reached the entry's first line (a loaded machine starts
        # slowly), no handler can exist yet: the default action, or for SIGINT Python's
        # own KeyboardInterrupt inside its start-up, before anything of the run started.
        assert after < 0.4 and not family, (process.returncode, family, stderr)
        assert stderr == "" or _only_interpreter_start(stderr), stderr
        return
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


def wait_until_opening_a_fifo(pid: int, deadline_seconds: float = 60.0) -> None:
    """Until a thread of ``pid`` waits in ``open()`` for a FIFO's reader (the kernel's
    ``wait_for_partner``); where /proc hides that, a few seconds."""
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        assert Path(f"/proc/{pid}").exists(), "the command ended before it opened its output"
        waits = set()
        for task in Path(f"/proc/{pid}/task").glob("*/wchan"):
            try:
                waits.add(task.read_text())
            except OSError:
                continue
        if "wait_for_partner" in waits:
            return
        if waits <= {"0", ""} and time.monotonic() > deadline - deadline_seconds + 4:
            return
        time.sleep(0.05)
    raise AssertionError("the command never opened its output")


@pytest.fixture(scope="module")
def iris_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A model of Iris, and samples for it (Iris's features)."""
    from sklearn.datasets import load_iris

    from stages.cli import main

    folder = tmp_path_factory.mktemp("model")
    model, samples = folder / "iris.model", folder / "samples.csv"
    assert main(["run", "--quiet", "--k", "1-5", "--save-model", str(model)]) == 0
    iris = load_iris(as_frame=True)
    iris.data.to_csv(samples, index=False)
    return model, samples


@pytest.mark.parametrize("output", ["run --out", "run --save-model", "predict --out"])
def test_an_output_fifo_nobody_reads_still_lets_ctrl_c_end_the_command(
    output: str, tmp_path: Path, iris_model: tuple[Path, Path]
) -> None:
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    command, option = output.split()
    model, samples = iris_model
    arguments = ["--k", "1-3"] if command == "run" else [str(model), str(samples)]
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", command, *arguments, "--quiet", option, str(fifo)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_opening_a_fifo(process.pid)
        family = descendants(process.pid)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)  # ended, not left waiting for a reader
    finally:
        process.kill()  # a command that hangs is a failure, not a process left behind
        process.wait()
    assert process.returncode == 130, stderr
    assert stderr.strip() == "interrupted"
    assert not wait_for_exit(family)


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
