"""Starting the workers' forkserver ahead of the pool, from a module that imports
nothing heavy.

multiprocessing's forkserver is a fresh interpreter that imports the workers'
modules (NumPy, the kernels) once and forks every worker from there: about a
sixth of a second of CPU. A command line has two ways to start it ahead:

- :func:`fork_forkserver`: import the workers' modules itself (it needs them
  anyway) and fork the server from itself, still single-threaded, so that
  nothing is imported twice. On two cores the command's processes are
  CPU-bound while it starts, and the duplicate imports were a quarter of it.
  multiprocessing's resource tracker is forked the same way, not exec'd.
- :func:`prestart_forkserver`: start multiprocessing's own server first
  thing, so that its imports overlap the command line's. Where forking is
  not safe (another thread running, a platform other than Linux, a
  multiprocessing whose server this module does not know).

Either way a pool started later forks its workers from that server
(:mod:`pipeline.compute` imports this module's functions).
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import multiprocessing
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from multiprocessing import connection, forkserver, resource_tracker, util
from typing import Any, NoReturn

__all__ = [
    "fork_forkserver",
    "leave_arithmetic_to_workers",
    "prestart_forkserver",
    "server_preload",
    "start_method",
]

WORKER_MODULE = "pipeline.worker"
"""The module whose initializer every worker runs first (:mod:`pipeline.worker`)."""

WORKER_LIBRARIES = ("threadpoolctl",)
"""What that initializer imports when it runs, not when its module is imported (the
pool's owner imports the module too): the server imports them, so workers fork with them."""

SERVER_ENVIRONMENT = "pipeline.forkserver_env"
"""Imported first in the server, before NumPy: one BLAS thread there (and so in every
worker until its initializer sets the pool's count), whoever starts the server."""

SERVER_FROZEN = "pipeline.forkserver_frozen"
"""Imported last in the server: everything preloaded is frozen out of its garbage
collections, which after the first fork would copy every page they walk."""

_BLAS_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def start_method() -> str:
    """``forkserver`` where the platform has it, else ``spawn`` (never ``fork``)."""
    methods = multiprocessing.get_all_start_methods()
    return "forkserver" if "forkserver" in methods else "spawn"


def server_preload(preload: Sequence[str]) -> list[str]:
    """``preload`` after the module whose initializer every worker runs first, and what
    that initializer imports; then the module that freezes it all."""
    first = [SERVER_ENVIRONMENT, WORKER_MODULE, *WORKER_LIBRARIES]
    own = [*first, SERVER_FROZEN]
    return [*first, *(n for n in preload if n not in own), SERVER_FROZEN]


def prestart_forkserver(preload: Sequence[str]) -> None:
    """Start the forkserver now, in the background, importing ``preload``.

    A command line that will need a pool soon calls this first: the server's
    imports then overlap the caller's own (and its reading of the data)
    instead of following them. Pools started later fork from the same server.
    A no-op where workers are spawned instead, or when the server runs already.
    A command line that can, forks the server instead (:func:`fork_forkserver`).
    """
    if start_method() != "forkserver":
        return
    multiprocessing.get_context("forkserver").set_forkserver_preload(server_preload(preload))
    forkserver.ensure_running()


_SERVER_MAIN_ARGUMENTS = ("listener_fd", "alive_r", "preload", "main_path", "sys_path")
"""``multiprocessing.forkserver.main``'s parameters as :func:`_serve` calls it (3.11 to
3.13); another multiprocessing (3.14 adds an authentication key) gets its own server."""


def _single_threaded() -> bool:
    """Whether this process has one thread, native ones (OpenBLAS's) counted: a fork
    copies only the calling thread, and a lock another one held stays held forever."""
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def _knows_the_server() -> bool:
    server = getattr(forkserver, "_forkserver", None)
    code = getattr(getattr(forkserver, "main", None), "__code__", None)
    return (
        code is not None
        and code.co_varnames[: code.co_argcount] == _SERVER_MAIN_ARGUMENTS
        and code.co_kwonlyargcount == 0
        and all(
            hasattr(server, name)
            for name in ("_forkserver_address", "_forkserver_alive_fd", "_forkserver_pid", "_lock")
        )
    )


def _can_fork() -> bool:
    return (
        sys.platform.startswith("linux")
        and start_method() == "forkserver"
        and _knows_the_server()
        and _single_threaded()
    )


def fork_forkserver(preload: Sequence[str]) -> bool:
    """Import the workers' modules and ``preload`` here, then fork the forkserver from
    this process; ``False`` (and nothing started) where that is not safe.

    The server is what multiprocessing's own would be, run by its own
    ``forkserver.main``, only not exec'd: it shares this process's imports
    instead of repeating them, and is ready as soon as they are done. It is
    forked before anything else starts a thread, with the signals a fresh
    interpreter has; like multiprocessing's, it exits when this process does,
    however that ends. Only multiprocessing's bookkeeping of the running
    server is written to here (its address, pipe and pid), as its own
    ``ensure_running`` would after starting one.
    """
    if not _can_fork():
        return False
    modules = server_preload(preload)
    multiprocessing.get_context("forkserver").set_forkserver_preload(modules)  # for a restart
    for name in (WORKER_MODULE, *preload):
        importlib.import_module(name)
    if not _single_threaded():  # the imports started threads (a BLAS thread count set)
        return False
    if not _flushed():
        return False
    server: Any = forkserver._forkserver  # its private state: see the docstring
    with server._lock:
        if server._forkserver_pid is not None:
            return True
        with socket.socket(socket.AF_UNIX) as listener:
            address = connection.arbitrary_address("AF_UNIX")  # type: ignore[attr-defined]
            listener.bind(address)
            if not util.is_abstract_socket_namespace(address):
                os.chmod(address, 0o600)
            listener.listen()
            alive_r, alive_w = os.pipe()  # the server exits at EOF: every client gone
            try:
                with _signals_held() as mask:
                    pid = os.fork()
                    if pid == 0:
                        _serve(listener.fileno(), alive_r, alive_w, modules, mask)
            except BaseException:
                os.close(alive_w)
                raise
            finally:
                os.close(alive_r)
        server._forkserver_address = address
        server._forkserver_alive_fd = alive_w
        server._forkserver_pid = pid
    _fork_resource_tracker()  # as the pool would start one, now that nothing is forked
    return True


def _knows_the_tracker() -> bool:
    tracker = getattr(resource_tracker, "_resource_tracker", None)
    code = getattr(getattr(resource_tracker, "main", None), "__code__", None)
    return (
        code is not None
        and code.co_varnames[: code.co_argcount] == ("fd",)
        and all(hasattr(tracker, name) for name in ("_lock", "_fd", "_pid"))
    )


def _fork_resource_tracker() -> None:
    """Start multiprocessing's resource tracker as a fork of this process, where
    that is safe; else as multiprocessing starts it, exec'd.

    The tracker is multiprocessing's own loop (``resource_tracker.main``), run
    as an exec'd one would: a process of its own with the command's standard
    streams and its read end of the pipe, no other descriptor, no Python signal
    handler, SIGINT and SIGTERM blocked until it ignores them. An exec'd
    interpreter would first spend some 35 ms of CPU starting up, on the core
    the command's own start-up and the workers share. Only multiprocessing's
    bookkeeping of the running tracker is written to here (its pipe and pid),
    as its own ``ensure_running`` would after starting one.
    """
    safe = sys.platform.startswith("linux") and _single_threaded() and _knows_the_tracker()
    if not (safe and _flushed()):
        resource_tracker.ensure_running()
        return
    tracker: Any = resource_tracker._resource_tracker  # its private state: see above
    with tracker._lock:
        if tracker._fd is not None:
            return
        reader, writer = os.pipe()
        try:
            with _signals_held() as mask:
                pid = os.fork()
                if pid == 0:
                    # As multiprocessing does (bpo-33613): these stay blocked until the
                    # tracker's loop ignores them, since one before would kill it.
                    _track(reader, mask | _TRACKER_IGNORES)
        except BaseException:
            os.close(writer)
            raise
        finally:
            os.close(reader)
        tracker._fd, tracker._pid = writer, pid


_TRACKER_IGNORES = {signal.SIGINT, signal.SIGTERM}
"""What the tracker's loop ignores once it starts (multiprocessing's own list)."""


def _track(reader: int, mask: Iterable[int]) -> NoReturn:
    """The forked tracker: multiprocessing's loop, with the signal ``mask`` once the
    parent's handlers are gone, then out without the parent's exit handlers; what this
    process holds stays out of its garbage collections."""
    code = 1
    try:
        gc.freeze()  # the parent's objects, and their descriptors, are not this one's to close
        gc.enable()  # as in an exec'd tracker, whatever the caller chose
        os.closerange(3, reader)
        os.closerange(max(3, reader + 1), os.sysconf("SC_OPEN_MAX"))  # 0-2 stay, even as its pipe
        _drop_signal_handlers()
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        resource_tracker.main(reader)
        code = 0
    except SystemExit as done:  # 3.13's loop exits with a status: 1 after a leak
        code = done.code if isinstance(done.code, int) else 1
    except BaseException:  # as an exec'd tracker's interpreter would, say why on stderr
        _print_traceback()
    finally:
        os._exit(code)


@contextlib.contextmanager
def _signals_held() -> Iterator[set[int | signal.Signals]]:
    """Every signal held back while this process forks; the mask it had is yielded.

    Until a child has dropped the Python handlers it inherited, a signal would
    run its parent's handler in it (a KeyboardInterrupt out of its set-up, say).
    Held, the signal waits for the child's own handlers or the defaults, as
    for a fresh interpreter; the child sets its mask once they are in place.
    """
    before = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        yield before
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _drop_signal_handlers() -> None:
    """The parent's Python signal handlers and wakeup descriptor gone, as in a fresh
    interpreter; SIGINT is left to the caller, which ignores it first."""
    signal.set_wakeup_fd(-1)
    for signum in signal.valid_signals():
        if signum != signal.SIGINT and callable(signal.getsignal(signum)):
            signal.signal(signum, signal.SIG_DFL)


def _print_traceback() -> None:
    with contextlib.suppress(BaseException):
        sys.excepthook(*sys.exc_info())
        if sys.stderr is not None:
            sys.stderr.flush()


def _flushed() -> bool:
    """Whether both standard streams hold nothing buffered: else the server would hold a
    copy of it too. A stream that is closed, or cannot be flushed, means no fork."""
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        return False
    return True


def _serve(
    listener_fd: int, alive_r: int, alive_w: int, modules: list[str], mask: Iterable[int]
) -> NoReturn:
    """The forked server: multiprocessing's server loop, then out without this process's
    exit handlers (they are its parent's).

    The server starts as an exec'd one would: a fresh lock for multiprocessing's
    bookkeeping of its server (the parent's was held at the fork, and a task that
    starts a forkserver process of its own would wait on it forever), garbage
    collection on, no Python signal handlers, SIGINT ignored. Like an exec'd
    server it keeps the command's standard streams; it also keeps the other
    descriptors the command had open, which it and its workers hold no longer
    than the command lives.
    """
    code = 1
    try:
        forkserver._forkserver._lock = threading.Lock()  # type: ignore[attr-defined]
        # What it inherited is frozen first, as its last preload freezes what it imports
        # (see pipeline.forkserver_frozen): the command imports with collection off, and
        # the first collection here would walk all of it, copying every page it wrote to.
        gc.freeze()
        gc.enable()  # as in an exec'd server (and so in its workers), whatever the caller chose
        os.close(alive_w)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # first: a Ctrl-C now is the server's too
        _drop_signal_handlers()
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # the caller's, as an exec'd server has
        forkserver.main(listener_fd, alive_r, modules)
    except SystemExit:  # the server's way out once every client has gone
        code = 0
    except BaseException:  # as an exec'd server's interpreter would, say why on stderr
        _print_traceback()
    finally:
        os._exit(code)


def leave_arithmetic_to_workers() -> None:
    """One BLAS and OpenMP thread in this process, unless its environment names a
    number; call it before NumPy is imported.

    A command line whose arithmetic all runs on the pool's workers (each pinned
    to its own threads by :func:`pipeline.worker.init_worker`) needs no BLAS
    threads of its own, and OpenBLAS would start one per core at NumPy's import
    and keep them spinning a while, on the cores the forkserver and the workers
    are starting on.
    """
    for name in _BLAS_VARIABLES:
        os.environ.setdefault(name, "1")
