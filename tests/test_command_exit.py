"""How ``python -m pipeline`` ends: its exit handlers run, its output is flushed, and the
interpreter's teardown is skipped only once nothing is left running.

Each test runs the entry through ``runpy`` in a fresh interpreter, with a few
lines before it that watch how the process ends.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WATCHED = """
import atexit, runpy, sys, threading, time, types

class TornDown:
    def __del__(self):
        print("torn down", flush=True)

holder = types.ModuleType("holder")  # its objects are freed by the interpreter's teardown
holder.kept = TornDown()
sys.modules["holder"] = holder
del holder
atexit.register(print, "exit handler ran")
if "--with-thread" in sys.argv:
    sys.argv.remove("--with-thread")
    threading.Thread(target=lambda: (time.sleep(0.5), print("thread finished"))).start()
sys.argv = ["pipeline", *sys.argv[1:]]
runpy.run_module("pipeline", run_name="__main__")
"""


def _command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WATCHED, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_finished_run_exits_with_its_output_and_handlers_but_no_teardown() -> None:
    done = _command("run", "--k", "1-3", "--quiet")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "12 candidates" in lines[-2]  # the leaderboard's last line, flushed
    assert lines[-1] == "exit handler ran"
    assert "torn down" not in done.stdout


def test_bad_input_keeps_its_exit_status_and_message() -> None:
    done = _command("run", "no-such-file.csv")
    assert done.returncode == 2
    assert "no such file" in done.stderr
    assert done.stdout.splitlines()[-1] == "exit handler ran"
    assert "torn down" not in done.stdout


def test_a_thread_still_running_is_waited_for_by_the_interpreter() -> None:
    done = _command("run", "--k", "1-3", "--quiet", "--with-thread")
    assert done.returncode == 0, done.stderr
    assert "thread finished" in done.stdout
    assert "exit handler ran" in done.stdout
    assert "torn down" in done.stdout  # the interpreter's own way out


def test_the_command_leaves_its_imports_out_of_garbage_collection() -> None:
    # main() as imported by the entry reports what is frozen when the command starts
    script = (
        "import gc, runpy, sys\n"
        "import stages.cli\n"
        "stages.cli.main = lambda: print(gc.get_freeze_count()) or 0\n"
        "sys.argv = ['pipeline', 'run']\n"
        "runpy.run_module('pipeline', run_name='__main__')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) > 10_000
