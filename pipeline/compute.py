"""The one shared compute pool behind every CPU-bound stage.

Stages hand plain, picklable, module-level functions to
:meth:`ComputePool.run`, which awaits ``loop.run_in_executor`` with a bound on
tasks in flight, so cancelling a pipeline only has a few small tasks to drop.

By default the pool is a :class:`~concurrent.futures.ProcessPoolExecutor`
started with ``forkserver`` (``spawn`` where that is missing; never ``fork``
from a process with threads) whose workers ignore SIGINT (the parent decides),
run BLAS/OpenMP on one thread each (threadpoolctl), so parallelism comes from
processes without oversubscription, and send their log records to the parent.
Workers run at a lower priority (``niceness``, default 5): on an idle machine
they still get every core, but the event loop's process wins the CPU at once
when it wakes, so an application's coroutines keep their timing. Any
:class:`concurrent.futures.Executor` handed in is used as it is, and is left
running for its owner.

On a Dask cluster (``dask=`` an address, a ``Client``, or an executor from
``Client.get_executor()``) the pool is sized from the cluster's threads and
re-sized as workers join and leave; see :mod:`pipeline.cluster`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import sys
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from concurrent.futures import (
    CancelledError,
    Executor,
    InvalidStateError,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
)
from concurrent.futures.process import BrokenProcessPool, _ExecutorManagerThread
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import anyio

from . import worker
from .cluster import ClusterLost, DaskCluster, Published
from .errors import OptionError
from .prestart import (
    prestart_forkserver as prestart_forkserver,  # re-exported: the command line's
    server_preload as _server_preload,
    start_method as _start_method,
)
from .shared import SharedArrays, guard_semaphores
from .worker_logs import WorkerLogForwarder

__all__ = ["ClusterLost", "ComputePool", "WorkerCrashed", "default_workers"]

R = TypeVar("R")
log = logging.getLogger(__name__)

_REAP_SECONDS = 2.0
_WATCH_SECONDS = 0.5
_UNNOTICED_SECONDS = 2.0
"""A dead worker the executor has not reported for this long is stuck mid-send."""
_CLUSTER_POLL_SECONDS = 0.5
"""How often a Dask cluster's workers are counted, to follow joins and departures."""
_LOCAL_TASK_SECONDS = 0.003
_CLUSTER_TASK_SECONDS = 0.007


def _quiet_teardown_race(args: threading.ExceptHookArgs) -> None:
    """Drop one harmless error of Python < 3.13's process pool, report all others.

    Aborting a pool cancels its queued futures and stops its workers; the
    pool's manager thread then marks every pending future broken, including
    the cancelled ones, which raises InvalidStateError in that thread (and
    prints a traceback). Python 3.13 ignores it there; this does the same.
    """
    if isinstance(args.exc_value, InvalidStateError) and isinstance(
        args.thread, _ExecutorManagerThread
    ):
        return
    _report_thread_error(args)


_report_thread_error = threading.excepthook
if sys.version_info < (3, 13):
    threading.excepthook = _quiet_teardown_race


def default_workers() -> int:
    """CPUs this process may run on (respects affinity masks and container limits)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


_ready = os.getpid
"""A no-op task that makes the executor start its worker processes: a builtin, so a
worker unpickles it without importing anything (a function of this module would make
every new worker import asyncio, anyio and this module before it is ready)."""


def _warm_up(executor: Executor, workers: int, spawned: threading.Event) -> None:
    """Start the workers: submitting spawns them (set ``spawned`` then), and each
    ready task returns once its worker has imported what it needs."""
    try:
        futures = [executor.submit(_ready) for _ in range(workers)]
    finally:
        spawned.set()
    for future in futures:
        with contextlib.suppress(CancelledError):  # an abort cancelled it
            future.exception()


def _refuse_unguarded_main() -> None:
    """Stop a script that starts a pool when imported, before its workers rerun it.

    Worker processes (forkserver or spawn) import the main script again; one
    whose top-level code starts the tuning without the ``if __name__ ==
    "__main__":`` guard would start it again in every worker, and the pool
    would fail only after its retries, its cause buried in their output.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path is None:  # an interactive session or a notebook: nothing is rerun
        return
    spec_name = getattr(getattr(main, "__spec__", None), "name", None) or ""
    if spec_name == "__main__" or spec_name.endswith(".__main__"):
        return  # `python -m package`: multiprocessing does not rerun a package's __main__
    hint = (
        f"{path} starts a compute pool when it is imported, and every worker process "
        'imports it again: put its top-level code under `if __name__ == "__main__":`'
    )
    if (
        multiprocessing.parent_process() is not None
        and getattr(main, "__name__", "") == "__mp_main__"
    ):
        raise RuntimeError(hint)  # this is such a worker: do not start pools of pools
    if not Path(path).is_file():  # `python - < script.py`: multiprocessing would rerun `<stdin>`
        raise RuntimeError(
            f"the main script {path} is not a file, and every worker process imports it "
            "again: save it to a file and run that, or hand the pool a thread executor"
        )
    try:
        source = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return
    if "__main__" not in source:
        raise RuntimeError(hint)


class WorkerCrashed(RuntimeError):
    """A task killed its worker process every time it was tried."""


class _IsolationGate:
    """Shared/exclusive access to the pool: a suspect task runs with nothing beside it."""

    def __init__(self) -> None:
        self._active = 0
        self._exclusive = False
        self._changed = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        async with self._changed:
            await self._changed.wait_for(lambda: not self._exclusive)
            self._active += 1
        try:
            yield
        finally:
            async with self._changed:
                self._active -= 1
                self._changed.notify_all()

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        async with self._changed:
            await self._changed.wait_for(lambda: not self._exclusive and self._active == 0)
            self._exclusive = True
        try:
            yield
        finally:
            async with self._changed:
                self._exclusive = False
                self._changed.notify_all()


class ComputePool:
    """One executor shared by every stage of a run.

    Use as ``async with ComputePool(workers=4) as pool: await pool.run(fn, x)``.
    """

    def __init__(
        self,
        executor: Executor | None = None,
        *,
        workers: int | None = None,
        max_in_flight: int | None = None,
        preload: Sequence[str] = (),
        blas_threads: int = 1,
        log_level: int = logging.INFO,
        retries: int = 3,
        niceness: int = 5,
        dask: Any = None,
    ) -> None:
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if executor is not None and not isinstance(executor, Executor):
            raise OptionError(
                "executor",
                f"{executor!r} is not a concurrent.futures.Executor; give one such as "
                "ThreadPoolExecutor(), or leave it out for the shared process pool",
            )
        if dask is not None and (executor is not None or workers is not None):
            raise OptionError(
                "dask",
                "give a cluster, or an executor or a worker count, not both "
                "(a local cluster's size is `dask` local:N)",
            )
        self._dask_address = dask if isinstance(dask, str) else None
        if dask is not None and self._dask_address is None:
            self.cluster: DaskCluster | None = DaskCluster.of(dask)
        else:
            self.cluster = DaskCluster.of_executor(executor) if executor is not None else None
        if self.cluster is not None and workers is not None:
            raise OptionError(
                "workers", "a Dask cluster's size is its workers' threads; leave `workers` out"
            )
        sized_by_executor = executor is not None and self.cluster is None
        self.workers = (
            workers
            or (getattr(executor, "_max_workers", None) if sized_by_executor else None)
            or default_workers()
        )
        self._owned = executor is None and dask is None
        self._owns_cluster = self._dask_address is not None
        self._executor = executor
        self._preload = list(preload)
        self._blas_threads = blas_threads
        self._log_level = log_level
        self._niceness = niceness
        self._logs: WorkerLogForwarder | None = None
        if max_in_flight is not None and max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight}")
        self._max_in_flight = max_in_flight
        self._slots: anyio.CapacityLimiter | None = None
        self._gate: _IsolationGate | None = None
        self._warming: asyncio.Future[None] | None = None
        self._spawned = threading.Event()
        self._helper: ThreadPoolExecutor | None = None  # tasks here while the workers start
        self._helping = False
        self._helper_idle: asyncio.Event = asyncio.Event()  # made anew in the loop by start()
        self._watchdog: asyncio.Task[None] | None = None
        self._unsticking: asyncio.Future[None] | None = None
        self._context: BaseContext | None = None
        self._lifeline: tuple[Connection, Connection] | None = None
        self._generation = 0
        self._cluster_workers: dict[str, int] = {}
        self.retries = retries
        self.restarts = 0
        self.in_flight = 0

    @property
    def task_seconds(self) -> float:
        """About what one task costs this process beyond its work: ~3 ms on the local
        pool (sending it, receiving its results and what the stage does with them,
        measured on bench M); on a Dask cluster ~4 ms more, the scheduler's and client's
        share (measured with ``benchmarks/on_dask.py``). Stages size their tasks from it."""
        return _CLUSTER_TASK_SECONDS if self.cluster is not None else _LOCAL_TASK_SECONDS

    @property
    def max_in_flight(self) -> int:
        """Tasks submitted at once: twice the workers unless given (so it follows a cluster)."""
        return self._max_in_flight if self._max_in_flight is not None else 2 * self.workers

    @classmethod
    def given_or_new(
        cls,
        pool: ComputePool | None,
        executor: Executor | None = None,
        workers: int | None = None,
        **options: Any,
    ) -> tuple[ComputePool, bool]:
        """A job's pool: the ``pool`` handed in, or a new one (on ``executor``, with
        ``workers``); and whether the job owns it, and so starts and stops it."""
        if pool is not None:
            if executor is not None or workers is not None or options.get("dask") is not None:
                raise ValueError(
                    "give a pool, or an executor, a cluster or workers to make one, not both"
                )
            return pool, False
        return cls(executor, workers=workers, **options), True

    @property
    def executor(self) -> Executor:
        if self._executor is None:
            raise RuntimeError("the compute pool is not started; use 'async with ComputePool()'")
        return self._executor

    @property
    def started(self) -> bool:
        """Entered and not yet closed: tasks can run."""
        return self._slots is not None and self._executor is not None

    @property
    def local_processes(self) -> bool:
        """True when workers are processes on this machine (so shared memory works)."""
        return self._owned or isinstance(self._executor, ProcessPoolExecutor)

    def placement(self) -> SharedArrays:
        """Where a run's arrays go: shared memory for local processes, else inline,
        and on a cluster placed on every worker once."""
        return SharedArrays(use_shared_memory=self.local_processes, cluster=self.cluster)

    async def open(self) -> None:
        """Start the pool; on a Dask cluster, connect and size it first."""
        if self._dask_address is not None and self.cluster is None:
            self.cluster = await DaskCluster.connect(self._dask_address)
        if self.cluster is not None:
            try:
                await self.cluster.wait_for_workers()  # a cluster that scales up starts empty
                await self.cluster.check_workers(self._preload)
                self._cluster_workers = await self.cluster.threads()
                self._resize(self._cluster_workers)
                self._executor = self.cluster.executor()
            except BaseException:
                await self._close_cluster()
                raise
        self.start()
        if self.cluster is not None:
            self._watchdog = asyncio.get_running_loop().create_task(
                self._watch_cluster(self.cluster), name="compute-pool-cluster-watch"
            )

    def _resize(self, threads: dict[str, int]) -> None:
        self.workers = max(1, sum(threads.values()))
        if self._slots is not None:
            self._slots.total_tokens = self.max_in_flight

    async def _watch_cluster(self, cluster: DaskCluster) -> None:
        """Follow workers joining and leaving while the pool is open."""
        while True:
            await asyncio.sleep(_CLUSTER_POLL_SECONDS)
            if not await self._follow_cluster(cluster):
                return

    async def _follow_cluster(self, cluster: DaskCluster) -> bool:
        """Re-size to the cluster's workers now, and say which left; False if it is gone.

        Dask itself re-runs a departed worker's tasks elsewhere; the warning
        tells the user why the run slowed down.
        """
        try:
            now = await cluster.threads()
        except ClusterLost:  # the scheduler is gone: the tasks report it
            return False
        except Exception as error:  # a slow answer: ask again next time
            log.debug("counting the Dask cluster's workers failed: %s", error)
            return cluster.client.status == "running"
        known = self._cluster_workers
        for address in sorted(set(known) - set(now)):
            log.warning(
                "Dask worker %s left the cluster; its tasks run again on the %d workers left",
                address,
                len(now),
            )
        for address in sorted(set(now) - set(known)):
            log.info("Dask worker %s joined the cluster", address)
        if now != known:
            self._resize(now)
        self._cluster_workers = now
        return True

    def start(self) -> None:
        """Create the default process pool (no-op for an executor handed in)."""
        if self.cluster is not None and self._executor is None:
            raise RuntimeError("a pool on a Dask cluster starts with 'async with' or open()")
        if self._executor is None:
            _refuse_unguarded_main()
            method = _start_method()
            self._context = multiprocessing.get_context(method)
            self._lifeline = self._context.Pipe(duplex=False)
            if method == "forkserver":
                self._context.set_forkserver_preload(_server_preload(self._preload))
            self._executor = self._new_executor()
            self._watchdog = asyncio.get_running_loop().create_task(
                self._watch_workers(), name="compute-pool-watchdog"
            )
        self._slots = anyio.CapacityLimiter(self.max_in_flight)
        self._gate = _IsolationGate()
        self._helper_idle = asyncio.Event()

    async def _watch_workers(self) -> None:
        """Unstick an executor whose worker died without the executor noticing.

        CPython's executor notices a dead worker at once, except one killed
        while sending its result (see :func:`_stop_workers`): then nothing
        would ever fail. A dead worker that the executor has not reported
        within :data:`_UNNOTICED_SECONDS` is taken for that case, and the
        executor is made to report itself broken, so the pool restarts and
        retries as after any crash.
        """
        loop = asyncio.get_running_loop()
        dead_since: float | None = None
        while True:
            await asyncio.sleep(_WATCH_SECONDS)
            executor = self._executor
            processes = dict(getattr(executor, "_processes", None) or {})
            broken = getattr(executor, "_broken", False)
            if broken or not any(p.exitcode is not None for p in processes.values()):
                dead_since = None
                continue
            if dead_since is None:
                dead_since = loop.time()
            elif loop.time() - dead_since >= _UNNOTICED_SECONDS and executor is not None:
                log.warning("a worker process died while sending its result; restarting the pool")
                # Kept, so a rebuild or a close waits for it: both stop the same workers
                # and close the same pipe, which must not happen twice at once.
                self._unsticking = asyncio.ensure_future(asyncio.to_thread(_unstick, executor))
                await asyncio.shield(self._unsticking)  # a close waits for it, not cancels it
                self._unsticking = None
                dead_since = None

    def _new_executor(self) -> ProcessPoolExecutor:
        assert self._context is not None and self._lifeline is not None
        # A fresh log queue too: a worker killed while writing may have left the old one locked.
        self._logs = WorkerLogForwarder(self._context)
        self._logs.start()
        executor = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=self._context,
            initializer=worker.init_worker,
            initargs=(
                self._blas_threads,
                self._logs.queue,
                self._log_level,
                self._lifeline[0],
                self._niceness,
            ),
        )
        guard_semaphores(
            getattr(executor, "_call_queue", None),
            getattr(executor, "_result_queue", None),
            self._logs.queue,
        )
        # Starting workers blocks while the forkserver imports its preload list;
        # do it in a thread, overlapping whatever the pipeline does first.
        self._spawned = threading.Event()
        self._warming = asyncio.get_running_loop().run_in_executor(
            None, _warm_up, executor, self.workers, self._spawned
        )
        return executor

    async def run(self, fn: Callable[..., R], *args: Any, may_run_here: bool = False) -> R:
        """Run ``fn(*args)`` on the pool, waiting for a free slot first.

        ``may_run_here`` lets the task run in a thread of this process instead
        while the pool's own workers are still starting, one such task at a
        time: a cold pool spends its first few tenths of a second importing
        in the forkserver, with a core to spare. Only for short tasks (a
        cancelled one is waited for) that are safe in this process (no crash,
        no exit, no change to the process's state); never while a crashed
        pool is replaced.

        On a Dask cluster, Dask re-runs the tasks of a worker that died; a task
        that kills every worker it runs on raises :class:`WorkerCrashed` too,
        and a scheduler gone raises :class:`ClusterLost`.

        If a worker process dies (killed, out of memory), an owned pool is
        rebuilt and the task retried alone, so a task that kills its worker
        every time is recognised: after ``retries`` such deaths it raises
        :class:`WorkerCrashed`. Tasks that merely shared the pool with it are
        retried without counting against them.
        """
        if self._slots is None or self._gate is None:
            raise RuntimeError("the compute pool is not started; use 'async with ComputePool()'")
        deaths = losses = 0
        suspect = False
        while True:
            async with self._gate.exclusive() if suspect else self._gate.shared():
                generation = self._generation
                sent: list[tuple[Published, Any]] = []  # the futures the task was given
                try:
                    # Here only while the first workers start: never a task suspected of
                    # killing its worker, nor while a crashed pool is replaced.
                    here = may_run_here and not suspect and self._generation == 0
                    return await self._submit(fn, *args, sent=sent, may_run_here=here)
                except asyncio.CancelledError:
                    if not self._cancelled_by_cluster():
                        raise
                    # Lost, or placed anew by another task since this one was sent.
                    lost = [(a, seen) for a, seen in sent if a.lost or a.future is not seen]
                    if not lost:
                        raise RuntimeError(
                            "a Dask task of this run was cancelled outside it"
                        ) from None
                    if losses >= self.retries:
                        raise RuntimeError(
                            f"the Dask cluster lost the run's data {losses} times"
                        ) from None
                    losses += 1
                    for value, seen in lost:  # the data went with their last worker
                        await value.replace(seen)
                    continue
                except BrokenProcessPool as error:
                    if not self._owned:
                        raise
                    broken = error
                    # Rebuild before leaving the gate, so the next task alone meets a sound pool.
                    await self._rebuild(generation)
                except Exception as error:
                    if self.cluster is not None and self.cluster.killed_worker(error):
                        raise WorkerCrashed(
                            "a Dask worker died each time it ran this task "
                            "(the scheduler's allowed failures)"
                        ) from error
                    raise
            if suspect:
                deaths += 1
                if deaths >= self.retries:
                    raise WorkerCrashed(
                        f"a worker process died {deaths} times running this task alone"
                    ) from broken
            suspect = True
            log.warning("a worker process died; the pool was restarted and the task is retried")

    def _cancelled_by_cluster(self) -> bool:
        """Whether a cancellation came from the Dask cluster, not from this task's owner.

        Raises :class:`ClusterLost` when the client is cut off: the scheduler is
        gone. Connected, it is data lost with a worker (or a cancel from outside).
        """
        task = asyncio.current_task()
        if self.cluster is None or task is None or task.cancelling():
            return False
        if self.cluster.client.status == "running":
            return True
        raise ClusterLost(
            f"lost the Dask scheduler at {self.cluster.address} mid-run; "
            "start it again (with --checkpoint the run resumes where it stopped)"
        )

    async def _submit(
        self,
        fn: Callable[..., R],
        *args: Any,
        sent: list[tuple[Published, Any]] | None = None,
        may_run_here: bool = False,
    ) -> R:
        assert self._slots is not None
        if self._warming is not None:
            while may_run_here and not self._warming.done():
                if not self._helping:
                    return await self._run_here(fn, *args)
                await _first_of(self._warming, self._helper_idle.wait())
            await asyncio.shield(self._warming)
        async with self._slots:
            self.in_flight += 1
            try:
                loop = asyncio.get_running_loop()
                given = [a.future if isinstance(a, Published) else a for a in args]
                if sent is not None:
                    sent.extend((a, a.future) for a in args if isinstance(a, Published))
                return await loop.run_in_executor(self.executor, fn, *given)
            finally:
                self.in_flight -= 1

    async def _run_here(self, fn: Callable[..., R], *args: Any) -> R:
        """``fn(*args)`` in a thread of this process, while the workers start.

        The thread runs at the workers' priority: the forkserver's imports and
        the workers' start, which it would slow on a machine with few cores,
        come first, and this process's event loop keeps its lead.
        """
        if self._helper is None:
            self._helper = ThreadPoolExecutor(
                1,
                "compute-pool-helper",
                initializer=_lower_thread_priority,
                initargs=(self._niceness,),
            )
        self._helping = True
        self._helper_idle.clear()
        self.in_flight += 1
        running = asyncio.get_running_loop().run_in_executor(self._helper, fn, *args)
        try:
            return await asyncio.shield(running)
        except asyncio.CancelledError:
            # A thread cannot be stopped: let the short task end, so nothing it uses
            # (shared memory, this process's caches) is released under it.
            await asyncio.wait([running])
            raise
        finally:
            self.in_flight -= 1
            self._helping = False
            self._helper_idle.set()

    async def _rebuild(self, broken_generation: int) -> None:
        """Replace a broken executor once, however many tasks saw it break."""
        if self._generation != broken_generation or self._executor is None:
            return
        self._generation += 1
        self.restarts += 1
        broken, logs = self._executor, self._logs
        for pending in (self._warming, self._unsticking):
            if pending is not None:
                await asyncio.wait([pending])
        _abort(broken)
        if logs is not None:
            logs.stop()
        self._executor = self._new_executor()

    async def aclose(self, *, abort: bool = False) -> None:
        """Shut an owned pool down; with ``abort``, drop queued work and stop the workers now."""
        if self._warming is not None and not abort:
            await asyncio.wait([self._warming])
        elif self._warming is not None:
            # Only until the workers are spawned (none may appear after the abort), not
            # until they are ready: a run cancelled at once ends at once.
            await asyncio.to_thread(self._spawned.wait)
        if self._helper is not None:  # a task it runs now ends on its own, unawaited
            self._helper.shutdown(wait=False)
            self._helper = None
        if self.cluster is not None:
            await self._close_cluster()
            return
        if not self._owned:
            return  # the caller's executor: used, never shut down
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None
        if self._unsticking is not None:  # the watchdog's thread may still be at work
            await asyncio.wait([self._unsticking])
            self._unsticking = None
        executor, self._executor = self._executor, None
        if executor is None:
            return
        try:
            if abort:
                _abort(executor)
            else:
                await asyncio.to_thread(executor.shutdown, wait=True)
        finally:
            if self._logs is not None:
                self._logs.stop()
                self._logs = None
            if self._lifeline is not None:
                for end in self._lifeline:
                    end.close()
                self._lifeline = None

    async def _close_cluster(self) -> None:
        """Stop following the cluster (a last look first: a worker may have left
        since); close it if this pool connected to it."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None
            if self.cluster is not None:
                await self._follow_cluster(self.cluster)
        cluster = self.cluster
        if cluster is not None and self._owns_cluster:
            self.cluster = self._executor = None
            await cluster.aclose()

    async def __aenter__(self) -> ComputePool:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose(abort=exc is not None)


async def _first_of(future: asyncio.Future[Any], waiting: Coroutine[Any, Any, Any]) -> None:
    """Wait until ``future`` is done or ``waiting`` returns, whichever comes first."""
    other = asyncio.ensure_future(waiting)
    try:
        await asyncio.wait([future, other], return_when=asyncio.FIRST_COMPLETED)
    finally:
        other.cancel()


def _lower_thread_priority(niceness: int) -> None:
    """Give the calling thread the workers' ``niceness`` (Linux: niceness is per thread)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            current = os.getpriority(os.PRIO_PROCESS, 0)
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), current + niceness)


def _unstick(executor: Executor) -> None:
    """Stop every worker of ``executor`` and end its result pipe, so it reports itself broken.

    For :meth:`ComputePool._watch_workers`; :func:`_abort` does the same after a shutdown.
    """
    _stop_workers(
        dict(getattr(executor, "_processes", None) or {}),
        getattr(executor, "_result_queue", None),
    )


def _stop_workers(procs: dict[int, Any], results: Any) -> None:
    """Terminate ``procs`` (a process pool's workers) and close our end of its ``results`` pipe.

    A worker killed while sending a result leaves half a message in the
    result pipe and the pipe's lock taken: the executor's manager thread then
    waits for the rest of the message forever, the other workers wait for the
    lock, and no future ever fails. With every worker gone and this process's
    copy of the pipe's write end closed, that wait ends in end-of-file, which
    the executor handles as a broken pool: its futures fail with
    :class:`BrokenProcessPool`, the ordinary path of a crash.
    """
    for proc in procs.values():
        if proc.is_alive():
            proc.terminate()
    for proc in procs.values():
        proc.join(_REAP_SECONDS)
        if proc.is_alive():
            proc.kill()
            proc.join(_REAP_SECONDS)
    writer = getattr(results, "_writer", None)
    if writer is not None and not any(proc.is_alive() for proc in procs.values()):
        writer.close()


def _abort(executor: Executor) -> None:
    """Cancel queued futures and terminate worker processes, leaving no orphan behind.

    The standard library offers no way to stop running tasks before Python 3.14
    (``terminate_workers``), so the worker processes are terminated by hand.

    Then the result pipe is ended as :func:`_stop_workers` says, so no
    thread waits for half a message (nor the interpreter with it, at exit).
    """
    procs = dict(getattr(executor, "_processes", None) or {})
    results = getattr(executor, "_result_queue", None)  # shutdown forgets it
    executor.shutdown(wait=False, cancel_futures=True)
    _stop_workers(procs, results)
