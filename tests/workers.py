"""Module-level functions for pool workers to run (picklable under spawn/forkserver)."""

from __future__ import annotations

import gc
import os
import signal
import threading
import time
from typing import Any

from pipeline.shared import ArrayRef


def square(x: int) -> int:
    return x * x


def fail(message: str) -> None:
    raise ValueError(message)


def pid() -> int:
    return os.getpid()


def sigint_handler_is_ignore() -> bool:
    return signal.getsignal(signal.SIGINT) == signal.SIG_IGN


def blas_threads() -> list[int]:
    from threadpoolctl import threadpool_info

    return [int(info["num_threads"]) for info in threadpool_info()]


def array_sum(ref: ArrayRef) -> float:
    array = ref.attach()
    return float(array.sum())


def array_is_read_only(ref: ArrayRef) -> bool:
    return not ref.attach().flags.writeable


def sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


_gate = threading.Event()
_count = 0
_peak = 0
_lock = threading.Lock()


def gated(_: Any) -> int:
    """Count concurrent calls (thread executors only) until the gate opens."""
    global _count, _peak
    with _lock:
        _count += 1
        _peak = max(_peak, _count)
    _gate.wait(10)
    with _lock:
        _count -= 1
    return _peak


def open_gate() -> None:
    _gate.set()


def reset_gate() -> None:
    global _count, _peak
    _gate.clear()
    _count = _peak = 0


def die() -> None:
    """Kill this worker process, as the out-of-memory killer would."""
    os.kill(os.getpid(), signal.SIGKILL)


def square_slowly(x: int) -> int:
    time.sleep(0.05)
    return x * x


def compute_unit_dying_on_unit_3(inputs: Any, unit: Any) -> Any:
    """The real unit computation, except that unit 3 kills its worker every time."""
    from stages.neighbours import compute_unit

    if unit.id == 3:
        die()
    return compute_unit(inputs, unit)


def niceness() -> int:
    return os.nice(0)


def send_half_a_result_then_hang(flag_path: str) -> None:
    """Write the start of a result message into the pool's result pipe, then hang.

    What a worker stopped in the middle of sending its result leaves behind:
    the parent's reader has a length header and part of the bytes.
    """
    import struct
    import sys

    frame = sys._getframe()
    while frame.f_code.co_name != "_process_worker":
        assert frame.f_back is not None
        frame = frame.f_back
    writer = frame.f_locals["result_queue"]._writer
    os.write(writer.fileno(), struct.pack("!i", 1_000_000) + b"partial")
    with open(flag_path, "w") as flag:
        flag.write("sent")
    time.sleep(3600)


def die_while_sending_a_result(flag_path: str) -> str:
    """The first time: die in the middle of sending a result, holding the pipe's lock.

    The second time (the pool restarted and retried it): return normally.
    """
    import signal
    import struct
    import sys

    if os.path.exists(flag_path):
        return "second try"
    with open(flag_path, "w") as flag:
        flag.write("dying")
    frame = sys._getframe()
    while frame.f_code.co_name != "_process_worker":
        assert frame.f_back is not None
        frame = frame.f_back
    results = frame.f_locals["result_queue"]
    results._wlock.acquire()  # as SimpleQueue.put holds it while writing
    os.write(results._writer.fileno(), struct.pack("!i", 1_000_000) + b"partial")
    os.kill(os.getpid(), signal.SIGKILL)
    return "unreachable"


def return_after(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def slow_ready() -> int:
    """A worker's first task that takes a while: a pool whose workers start slowly."""
    time.sleep(1.0)
    return os.getpid()


def where_and_when(seconds: float) -> tuple[int, int, float, float, int]:
    """Process, thread, start and end of a short sleep, and the thread's niceness."""
    started = time.monotonic()
    time.sleep(seconds)
    return os.getpid(), threading.get_native_id(), started, time.monotonic(), os.nice(0)


MARKS: list[str] = []
"""What tasks run in the test's own process leave behind."""


def sleep_then_mark(seconds: float, mark: str) -> str:
    time.sleep(seconds)
    MARKS.append(mark)
    return mark


def die_unless_in(pid: int) -> str:
    """Kill the worker that runs this; in process ``pid`` (the test's own), return."""
    if os.getpid() != pid:
        os._exit(1)
    return "ran in the test's process"


def walked_and_frozen() -> tuple[int, int]:
    """Objects a full garbage collection in this process walks, and those it leaves out
    (frozen), after one."""
    gc.collect()
    return len(gc.get_objects()), gc.get_freeze_count()


def kept_after_free(first_mib: int = 24, then_mib: int = 20) -> float:
    """MiB this process still holds after freeing a ``then_mib`` array that followed a
    freed ``first_mib`` one (after which glibc's adjusting thresholds serve such arrays
    from the heap and keep them there once freed)."""
    import numpy as np

    def resident() -> float:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    first = np.ones(first_mib * 2**17)
    del first
    before = resident()
    then = np.ones(then_mib * 2**17)
    del then
    return resident() - before


def what_it_inherited() -> dict[str, Any]:
    """Where this worker forked from, the signal handlers and frozen objects it has, whether
    it collects garbage, and whether it could start a forkserver process of its own (the
    server's lock is free)."""
    from multiprocessing import forkserver

    lock = forkserver._forkserver._lock  # type: ignore[attr-defined]
    free = lock.acquire(blocking=False)
    if free:
        lock.release()
    return {
        "parent": os.getppid(),
        "sigterm_default": signal.getsignal(signal.SIGTERM) == signal.SIG_DFL,
        "frozen": gc.get_freeze_count(),
        "collecting": gc.isenabled(),
        "server_lock_free": free,
    }
