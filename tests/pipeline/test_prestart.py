"""The forkserver forked from the command line (pipeline.prestart.fork_forkserver).

Each case runs in a fresh interpreter: the server is process-wide state, and
forking is only safe in a process with one thread.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]

FORKED = """
import gc, json, signal, sys, multiprocessing
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import forkserver, resource_tracker
from pipeline.prestart import fork_forkserver, leave_arithmetic_to_workers

signal.signal(signal.SIGTERM, lambda *_: None)  # a Python handler of the caller's own
gc.disable()  # as the command line has it while importing
leave_arithmetic_to_workers()
print("buffered", end="")  # a pipe: held in the buffer when the server is forked
started = fork_forkserver(["tests.workers"])
print()
server = forkserver._forkserver._forkserver_pid
from tests import workers
with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("forkserver")) as pool:
    inherited = pool.submit(workers.what_it_inherited).result()
seen = {"started": started, "server": server, "tracker": resource_tracker._resource_tracker._pid}
print(json.dumps({**seen, **inherited}), flush=True)
sys.stdin.readline()  # the server lives while this process does
"""


def _run_until_told(script: str) -> tuple[subprocess.Popen[str], list[str]]:
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=buffered,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, [proc.stdout.readline(), proc.stdout.readline()]


def _gone(pid: int) -> bool:
    try:
        psutil.Process(pid).wait(timeout=30)
    except psutil.NoSuchProcess:
        return True
    except psutil.TimeoutExpired:
        return False
    return True


def test_the_server_is_a_fork_of_the_caller_and_workers_fork_from_it() -> None:
    proc, (first, second) = _run_until_told(FORKED)
    with proc:
        seen = json.loads(second)
        server = psutil.Process(seen["server"])
        caller = psutil.Process(proc.pid)
        assert seen["started"] is True
        assert server.ppid() == proc.pid
        assert server.cmdline() == caller.cmdline()  # forked, not exec'd
        assert server.num_threads() == 1
        assert seen["parent"] == seen["server"]  # the pool's worker came from it
        assert seen["sigterm_default"]  # not the caller's handler
        assert seen["frozen"] > 10_000  # the server froze what it shares with the workers
        assert seen["collecting"]  # as a worker of an exec'd server does
        assert seen["server_lock_free"]  # a task may start forkserver processes of its own
        assert first == "buffered\n"  # written once, by the caller, not again by the server
        proc.communicate("\n")
    assert proc.returncode == 0
    assert _gone(seen["server"]), "the server exits with its caller"


def test_a_caller_killed_outright_leaves_no_server_and_no_tracker() -> None:
    proc, (_, second) = _run_until_told(FORKED)
    seen = json.loads(second)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert _gone(seen["server"])
    assert _gone(seen["tracker"])


MADE_WITH_COLLECTION_OFF = 400_000
"""Empty lists the caller makes while collection is off, as the command line's imports
do: some 27 MiB of tracked objects, all of them in the youngest generation."""

UNCOLLECTED = f"""
import gc, json, multiprocessing, sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import forkserver
from pipeline.prestart import fork_forkserver, leave_arithmetic_to_workers

gc.disable()
leave_arithmetic_to_workers()
made = [[] for _ in range({MADE_WITH_COLLECTION_OFF})]
print(fork_forkserver(["tests.workers"]), flush=True)
from tests import workers
with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("forkserver")) as pool:
    pool.submit(workers.what_it_inherited).result()  # the server has imported its preload
print(json.dumps({{"server": forkserver._forkserver._forkserver_pid}}), flush=True)
sys.stdin.readline()
"""


def test_the_server_leaves_what_it_inherited_out_of_its_collections() -> None:
    """A collection that walked the caller's objects would write to each of their pages
    and so copy them into the server: its own memory would hold them all."""
    proc, (forked, second) = _run_until_told(UNCOLLECTED)
    assert forked == "True\n"
    with proc:
        server = psutil.Process(json.loads(second)["server"])
        own = server.memory_full_info().uss
        proc.communicate("\n")
    made = MADE_WITH_COLLECTION_OFF * (sys.getsizeof([]) + 16)  # with the collector's header
    assert own < made / 2, f"the server copied {own / 2**20:.1f} MiB of its caller's pages"


NO_STDOUT = """
import json, sys
from multiprocessing import forkserver
from pipeline.prestart import fork_forkserver, leave_arithmetic_to_workers

leave_arithmetic_to_workers()
sys.stdout = None  # as when the command's standard output is closed
started = fork_forkserver(["tests.workers"])
print(json.dumps([started, forkserver._forkserver._forkserver_pid is not None]), file=sys.stderr)
"""


def test_a_closed_standard_output_still_forks() -> None:
    done = subprocess.run(
        [sys.executable, "-c", NO_STDOUT], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(done.stderr.splitlines()[-1]) == [True, True]


FAILING_SERVER = """
from multiprocessing import forkserver
from pipeline.prestart import fork_forkserver, leave_arithmetic_to_workers

def broken(listener_fd, alive_r, preload, main_path=None, sys_path=None):
    raise RuntimeError("the server could not serve")

leave_arithmetic_to_workers()
forkserver.main = broken
print(fork_forkserver(["tests.workers"]))
"""


def test_a_server_that_fails_says_why() -> None:
    done = subprocess.run(
        [sys.executable, "-c", FAILING_SERVER], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0
    assert done.stdout == "True\n"  # forked: the failure is the server's alone
    assert "RuntimeError: the server could not serve" in done.stderr


OTHER_THREAD = """
import json, threading
from multiprocessing import forkserver
from pipeline.prestart import fork_forkserver

stop = threading.Event()
threading.Thread(target=stop.wait).start()
started = fork_forkserver(["tests.workers"])
stop.set()
print(json.dumps([started, forkserver._forkserver._forkserver_pid]))
"""


def test_a_caller_with_another_thread_forks_nothing() -> None:
    done = subprocess.run(
        [sys.executable, "-c", OTHER_THREAD], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout) == [False, None]


BLAS_THREADS = """
import json
from multiprocessing import forkserver
from pipeline.prestart import fork_forkserver

started = fork_forkserver(["tests.workers"])  # NumPy, imported here, starts OpenBLAS's threads
print(json.dumps([started, forkserver._forkserver._forkserver_pid]))
"""


def test_threads_started_by_the_imports_stop_the_fork() -> None:
    environment = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    done = subprocess.run(
        [sys.executable, "-c", BLAS_THREADS],
        cwd=ROOT,
        env={**environment, "OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout) == [False, None]


ENTRY = """
import gc, json, sys
import psutil
from pipeline.prestart import leave_arithmetic_to_workers
leave_arithmetic_to_workers()  # as the entry does first, before NumPy is imported
import stages.cli
from multiprocessing import forkserver

def command_line():
    server = psutil.Process(forkserver._forkserver._forkserver_pid)
    print(json.dumps([server.ppid() == psutil.Process().pid,
                      server.cmdline() == psutil.Process().cmdline(),
                      gc.isenabled(), gc.get_freeze_count() > 10_000]), flush=True)
    return 0

stages.cli.main = command_line
sys.argv = ["knn-pipeline", "run"]
from stages.entry import main
main()
"""


def test_the_command_line_forks_its_server() -> None:
    done = subprocess.run(
        [sys.executable, "-c", ENTRY], cwd=ROOT, capture_output=True, text=True, check=True
    )
    # collections back on, and what the command line imported frozen out of them
    assert json.loads(done.stdout) == [True, True, True, True]


TRACKED = """
import json, os, sys
from multiprocessing import resource_tracker, shared_memory
from pipeline.prestart import fork_forkserver, leave_arithmetic_to_workers

leave_arithmetic_to_workers()
started = fork_forkserver(["tests.workers"])
tracker = resource_tracker._resource_tracker._pid
segment = shared_memory.SharedMemory(create=True, size=4096)  # told to the tracker
print(json.dumps({"started": started, "tracker": tracker, "segment": segment.name}))
print(flush=True)
sys.stdin.readline()
os._exit(0)  # the segment never unlinked: the tracker's to clean up
"""


def _signal_masks(pid: int) -> dict[str, int]:
    """The process's ignored and blocked signals, as /proc gives them."""
    masks = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("SigIgn", "SigBlk"):
            masks[name] = int(value, 16)
    return masks


def _has(mask: int, signum: int) -> bool:
    return bool(mask >> (signum - 1) & 1)


def _descriptors(pid: int) -> set[int]:
    return {int(fd) for fd in os.listdir(f"/proc/{pid}/fd")}


def _eventually(condition: Callable[[], bool]) -> bool:
    """Whether ``condition`` holds within 30 s: a forked child sets itself up after the
    fork returns in its parent."""
    deadline = time.monotonic() + 30
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_the_resource_tracker_is_a_fork_holding_only_its_pipe_and_cleans_up() -> None:
    proc, (first, _) = _run_until_told(TRACKED)
    with proc:
        seen = json.loads(first)
        tracker = psutil.Process(seen["tracker"])
        caller = psutil.Process(proc.pid)
        assert seen["started"] is True
        assert tracker.ppid() == proc.pid
        assert tracker.cmdline() == caller.cmdline()  # forked, not exec'd
        assert tracker.num_threads() == 1
        # Its pipe and standard error: the caller's other descriptors (the server's
        # listener and pipe among them) would keep the server alive after the caller.
        assert _eventually(lambda: len(_descriptors(tracker.pid) - {0, 1, 2}) == 1)
        assert 2 in _descriptors(tracker.pid)
        ignores = (signal.SIGINT, signal.SIGTERM)

        def ignored_not_blocked() -> bool:  # the loop ignores them, then unblocks them
            masks = _signal_masks(tracker.pid)
            return all(_has(masks["SigIgn"], s) and not _has(masks["SigBlk"], s) for s in ignores)

        assert _eventually(ignored_not_blocked)
        assert (Path("/dev/shm") / seen["segment"]).exists()
        proc.communicate("\n")
    assert proc.returncode == 0
    assert _gone(seen["tracker"]), "the tracker exits with its caller"
    assert not (Path("/dev/shm") / seen["segment"]).exists()  # unlinked by the tracker


SIGNALLED_IN_SETUP = """
import json, os, signal, sys, time
from pipeline import prestart

signal.signal(signal.SIGUSR1, lambda *_: None)  # in a child, it would keep the child alive
drop = prestart._drop_signal_handlers

def signalled_first():  # a signal that arrives as the child sets itself up
    os.kill(os.getpid(), signal.SIGUSR1)
    drop()

prestart._drop_signal_handlers = signalled_first
prestart.leave_arithmetic_to_workers()
started = prestart.fork_forkserver(["tests.workers"])
prestart._drop_signal_handlers = drop
children = [prestart.forkserver._forkserver._forkserver_pid,
            prestart.resource_tracker._resource_tracker._pid]

def signal_that_ended(pid):  # None: still running after 30 s
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ended, status = os.waitpid(pid, os.WNOHANG)
        if ended:
            return os.WTERMSIG(status) if os.WIFSIGNALED(status) else -1
        time.sleep(0.01)
    return None

ends = [signal_that_ended(pid) for pid in children]
print(json.dumps({"started": started, "ends": ends}))
print(flush=True)
sys.stdin.readline()
"""


def test_a_signal_as_a_child_sets_up_meets_its_defaults_not_the_callers_handler() -> None:
    """The server and the tracker each get a signal before they drop the handlers they
    inherited: it waits, and then takes its default action (SIGUSR1's ends the process),
    as in a fresh interpreter, instead of running the caller's Python handler there."""
    proc, (first, _) = _run_until_told(SIGNALLED_IN_SETUP)
    with proc:
        seen = json.loads(first)
        proc.communicate("\n")
    assert seen["started"] is True
    assert seen["ends"] == [signal.SIGUSR1, signal.SIGUSR1]


NO_STDIN_THEN_TRACKED = """
import json, os, sys, time
from multiprocessing import resource_tracker
from pipeline.prestart import _fork_resource_tracker

os.close(0)  # started without standard input: the tracker's pipe is 0 and 3
sys.stdin = None
_fork_resource_tracker()
print(json.dumps(resource_tracker._resource_tracker._pid))
print(flush=True)
time.sleep(60)  # until the test ends it
"""


def test_a_tracker_reading_descriptor_0_keeps_standard_error() -> None:
    proc, (first, _) = _run_until_told(NO_STDIN_THEN_TRACKED)
    with proc:
        tracker = json.loads(first)
        try:
            assert _eventually(lambda: _descriptors(tracker) == {0, 1, 2})
        finally:
            proc.kill()
    assert _gone(tracker), "the tracker exits with its caller"


BUFFERED_THEN_TRACKED = """
import sys
from pipeline.prestart import _fork_resource_tracker

print("written", end="")  # a pipe: held in the buffer when the tracker is forked
_fork_resource_tracker()
print(" once")
print(flush=True)
sys.stdin.readline()
"""


def test_output_buffered_when_the_tracker_forks_is_written_once() -> None:
    proc, (first, second) = _run_until_told(BUFFERED_THEN_TRACKED)
    with proc:
        rest, _ = proc.communicate("\n")  # to the end: the tracker holds standard output too
    assert first + second + rest == "written once\n\n"


EXEC_TRACKER = """
import json, sys, threading
from multiprocessing import resource_tracker
from pipeline.prestart import _fork_resource_tracker

stop = threading.Event()
threading.Thread(target=stop.wait).start()
_fork_resource_tracker()  # another thread: multiprocessing's own, exec'd
stop.set()
print(json.dumps(resource_tracker._resource_tracker._pid))
print(flush=True)
sys.stdin.readline()
"""


def test_a_caller_with_another_thread_gets_an_execd_tracker() -> None:
    proc, (first, _) = _run_until_told(EXEC_TRACKER)
    with proc:
        tracker = psutil.Process(json.loads(first))
        assert tracker.ppid() == proc.pid
        assert "resource_tracker" in " ".join(tracker.cmdline())
        proc.communicate("\n")
    assert _gone(tracker.pid)
