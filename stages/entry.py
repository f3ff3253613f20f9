"""The command line as a process: what ``python -m pipeline`` and the ``knn-pipeline``
script run, around :func:`stages.cli.main`.

Before the command line's own imports it makes signals interrupt as Ctrl-C
does (see :mod:`pipeline.interrupts`), so a signal at any moment ends the
command the same way: exit status 130, no traceback, nothing left behind;
it starts the workers' forkserver, forked from this process once it has
imported the workers' modules (see :mod:`pipeline.prestart`); and it fixes
this process's allocator thresholds (:mod:`pipeline.heap`).
After the command it ends without the interpreter's teardown. This module
imports only the standard library and those two small framework modules;
the command line is imported inside :func:`main`.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import NoReturn

from pipeline.heap import fix_mmap_threshold
from pipeline.interrupts import TERMINATING, interrupts

__all__ = ["WORKER_PRELOAD", "main"]

WORKER_PRELOAD = ("stages.neighbours",)
"""What ``run`` and ``predict`` workers preload: ``stages.neighbours.WORKER_PRELOAD``,
named here so that their forkserver starts before that module is imported."""


def _default_ctrl_c() -> None:
    """Until :func:`main` installs its handlers, Ctrl-C takes the system's default action,
    as SIGTERM and SIGHUP do: the process ends at once, silently, before anything has
    started. Python's own handler would raise KeyboardInterrupt inside the imports that
    follow and print a traceback."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, signal.SIG_DFL)


def _will_start_workers(argv: list[str]) -> bool:
    """Whether the command will start workers on this machine (``run`` or ``predict``
    without ``--dask``), guessed from the raw arguments. A wrong guess costs only a
    forkserver that exits with the command; the command line starts it anyway."""
    if not argv or argv[0] not in ("run", "predict"):
        return False
    return not any(a in ("-h", "--help") or a.startswith("--da") for a in argv[1:])


def _leave(status: int) -> NoReturn:
    """End the process with ``status``, everything it opened being closed, without the
    interpreter's teardown.

    Freeing every module and object one by one takes some 15 ms, a thirtieth of
    a small run's whole command, for memory the system takes back at once. The
    exit handlers still run (multiprocessing's, logging's) and both standard
    streams are flushed; a thread still running, or a stream that cannot be
    flushed, takes the interpreter's own way out instead.
    """
    if threading.active_count() > 1:
        sys.exit(status)
    atexit._run_exitfuncs()
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:  # None: closed when the command started
                stream.flush()
    except (OSError, ValueError):
        sys.exit(status)
    os._exit(status)


@contextlib.contextmanager
def _no_collections_while_importing() -> Iterator[None]:
    """No garbage collection while the command line imports, and what it imported left
    out of every later one: it stays for the whole command.

    Importing makes objects by the hundred thousand, nearly none of them garbage,
    and some eighty collections would walk them on the way: 8 ms, a fiftieth of
    a small run's whole command, before it has read its data.
    """
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def main() -> NoReturn:
    """Run the command line on ``sys.argv`` and end the process with its exit status."""
    _default_ctrl_c()  # again: the script's wrapper imported this module first
    interrupts.install()
    status = 130
    try:
        with interrupts.shield(), _no_collections_while_importing():
            if _will_start_workers(sys.argv[1:]):
                # After install(): these imports take time. Before the command line's own
                # imports: the server is forked while this process has no other thread,
                # or else started first thing, its imports overlapping the command
                # line's (see pipeline.prestart); if it cannot start here, the command
                # line tries again and says why.
                from pipeline.prestart import (
                    fork_forkserver,
                    leave_arithmetic_to_workers,
                    prestart_forkserver,
                )

                leave_arithmetic_to_workers()
                with contextlib.suppress(OSError):
                    if not fork_forkserver(WORKER_PRELOAD):
                        prestart_forkserver(WORKER_PRELOAD)
            fix_mmap_threshold()  # this process is the command's own (see pipeline.heap)
            from .cli import main as command_line
        status = command_line()
    except KeyboardInterrupt:  # interrupted as the command started or ended
        print("interrupted", file=sys.stderr)
    except MemoryError:  # while importing: too little memory to start at all
        print("error: out of memory while starting; raise the memory limit", file=sys.stderr)
        status = 1
    finally:
        # Done: a signal from here on would turn a clean exit into death by signal (the
        # interpreter's finalization resets Python handlers to the defaults, though not
        # SIG_IGN), so the signals are ignored while the interpreter ends.
        for terminating in TERMINATING:
            signal.signal(terminating, signal.SIG_IGN)
        # Everything is closed by now (workers, files, shared memory); the interpreter's
        # exit would still walk every object twice looking for cycles, a tenth of a small
        # run. Frozen, they are left to the process's end.
        gc.freeze()
    _leave(status)
