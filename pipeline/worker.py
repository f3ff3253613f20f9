"""What runs in each pool worker before its first task.

Kept apart from :mod:`pipeline.compute` (which needs asyncio) so that the
forkserver, which imports this module once and forks every worker from it,
starts without the event loop machinery a worker never uses: its imports are
the serial part of starting a cold pool.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import threading
from multiprocessing.connection import Connection
from typing import Any

from .heap import WORKER_TRIM_THRESHOLD, fix_mmap_threshold
from .worker_logs import install_worker_logging

__all__ = ["init_worker"]

_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _exit_with_parent(lifeline: Connection) -> None:
    """Exit this worker as soon as the process that owns the pool is gone.

    The owner holds the only write end of ``lifeline``; when it dies, even by
    SIGKILL, reading gives EOF. Without this, workers blocked on their task
    queue would outlive a killed run (they hold the queue's write end too).
    """
    with contextlib.suppress(EOFError, OSError):
        lifeline.recv_bytes()
    os._exit(1)


def init_worker(
    blas_threads: int, log_queue: Any, log_level: int, lifeline: Connection, niceness: int
) -> None:
    """Runs once in each worker process before its first task."""
    # What the worker inherits from the forkserver (the modules, NumPy's and the
    # kernels' objects) is left out of its garbage collections: a full one would
    # walk it all and write to every page of it, copying each from the server.
    gc.freeze()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.nice(niceness)
    threading.Thread(target=_exit_with_parent, args=(lifeline,), daemon=True).start()
    install_worker_logging(log_queue, log_level)
    fix_mmap_threshold(trim=WORKER_TRIM_THRESHOLD)
    for variable in _THREAD_VARIABLES:  # for BLAS/OpenMP libraries loaded later
        os.environ[variable] = str(blas_threads)
    # Imported here, not above: the pool's owner imports this module for this
    # function's name alone, and threadpoolctl (with ctypes) costs it 5 ms of
    # start-up; the forkserver preloads it (pipeline.prestart.WORKER_LIBRARIES).
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=blas_threads)
