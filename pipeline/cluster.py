"""A Dask cluster behind the compute pool: connect, size the work, place data once.

``local[:N]`` starts a :class:`distributed.LocalCluster` of N worker processes
for one run and closes it after; any other address (``tcp://HOST:PORT``) joins
a running scheduler and leaves it running. Dask runs the tasks, re-runs those
of a worker that dies, and moves data between workers; what this module adds
is what the pool needs on top:

- the cluster's size, read from the scheduler (its workers' threads), never
  from an executor's private attributes, so work is planned for the cluster;
- :meth:`DaskCluster.broadcast`, which places a run's data on every worker
  once (``Client.scatter(..., broadcast=True)``), so tasks carry a small
  future instead of pickling the data set into every task;
- one clear error when the workers lack this package, or the scheduler is
  unreachable or goes away.

Dask is an optional extra, imported only when a cluster is used.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
from collections.abc import Sequence
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any

from .errors import InputError

if TYPE_CHECKING:
    from distributed import Client, Future, LocalCluster

__all__ = ["ClusterLost", "DaskCluster", "Published", "parse_local"]

log = logging.getLogger(__name__)

CONNECT_SECONDS = 10.0
"""How long to try reaching a scheduler, and to wait for its first worker."""

ANSWER_SECONDS = 2.0
"""How long a question to the scheduler (its workers' threads) may take."""

CLOSE_SECONDS = 5.0
"""How long closing the client may take (a scheduler that is gone does not answer)."""

WORKER_NICENESS = 5
"""A local cluster's workers run this much nicer than the run's own process."""

QUIET_LOGGER_FAMILIES = ("distributed", "dask", "tornado", "bokeh")
"""Dask's loggers and those of the libraries it runs on, kept off the terminal."""


def _local_worker_setup() -> str:
    """What a local cluster's processes run as they start, restarted ones too (Dask's
    ``preload`` takes Python source): lower priority than this process, whose event
    loop then keeps its timing on a machine the workers fill; and deaf to the
    terminal's Ctrl-C, which is this process's to handle (they share its process
    group); and silent on the terminal they share with it. Dask's ``silence_logs``
    holds only while a worker runs, so its teardown after a Ctrl-C printed
    tracebacks of broken connections; what matters in a worker reaches the user
    through its tasks' results and this process's warnings. The niceness is
    absolute, as nannies and their workers both run it."""
    niceness = os.getpriority(os.PRIO_PROCESS, 0) + WORKER_NICENESS
    return (
        "import logging, os, signal\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        f"os.setpriority(os.PRIO_PROCESS, 0, max({niceness}, os.getpriority(os.PRIO_PROCESS, 0)))\n"
        f"families = {QUIET_LOGGER_FAMILIES!r}\n"
        "for name in {*families, *logging.root.manager.loggerDict}:\n"
        "    if name.split('.')[0] in families:\n"
        "        logging.getLogger(name).handlers = [logging.NullHandler()]\n"
        "        logging.getLogger(name).propagate = False\n"
    )


_LOCAL = re.compile(r"local(?::([0-9]+))?")
_INSTALL = "pip install 'knn-pipeline[dask]'"


class ClusterLost(RuntimeError):
    """The Dask scheduler went away while the run's tasks were on it."""


def parse_local(address: str) -> int | None:
    """The worker count of ``local`` (the CPU count) or ``local:N``; None for other addresses."""
    match = _LOCAL.fullmatch(address.strip())
    if match is None:
        if address.strip().startswith("local"):
            raise InputError(
                f"--dask {address}: give local for a worker a CPU, or local:N for N workers"
            )
        return None
    count = int(match.group(1)) if match.group(1) else _cpus()
    if count < 1:
        raise InputError(f"--dask {address}: a local cluster needs at least 1 worker (local:N)")
    return count


def _cpus() -> int:
    from .compute import default_workers  # compute imports this module

    return default_workers()


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise InputError(f"--dask needs Dask's distributed package: {_INSTALL}") from None
    return distributed


class DaskCluster:
    """A Dask client to run on, and the local cluster started for it, if any."""

    def __init__(
        self,
        client: Client,
        *,
        local: LocalCluster | None = None,
        owned: bool = False,
        executor: Executor | None = None,
    ) -> None:
        self.client = client
        self.local = local
        self.owned = owned  # the client (and a local cluster) is closed with the pool
        self._executor = executor

    @property
    def address(self) -> str:
        return str(getattr(self.client.scheduler, "address", "the scheduler"))

    @classmethod
    def of(cls, spec: Any) -> DaskCluster:
        """A cluster from a :class:`distributed.Client` or a :class:`DaskCluster`."""
        if isinstance(spec, DaskCluster):
            return spec
        client_type = _distributed().Client
        if not isinstance(spec, client_type):
            raise TypeError(
                f"dask must be an address, a distributed.Client or a DaskCluster, got {spec!r}"
            )
        return cls(spec)

    @classmethod
    def of_executor(cls, executor: Executor) -> DaskCluster | None:
        """The cluster behind a ``Client.get_executor()``; None for any other executor."""
        if "distributed" not in sys.modules:  # no Dask executor can exist without it
            return None
        from distributed.cfexecutor import ClientExecutor

        if not isinstance(executor, ClientExecutor):
            return None
        # Dask offers no public accessor for an executor's client; this attribute
        # has held it since the executor was added.
        client = executor._client
        return cls(client, executor=executor)

    @classmethod
    async def connect(cls, address: str, *, timeout: float = CONNECT_SECONDS) -> DaskCluster:
        """Start ``local[:N]`` or join the scheduler at ``address`` (trying for ``timeout`` s)."""
        distributed = _distributed()
        workers = parse_local(address)
        if workers is not None:
            local = await asyncio.to_thread(
                distributed.LocalCluster,
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                scheduler_kwargs={"dashboard_address": ":0"},  # its HTTP server: any free port
                silence_logs=logging.ERROR,
                preload=[_local_worker_setup()],
            )
            try:
                client = await asyncio.to_thread(
                    distributed.Client, local, set_as_default=False, direct_to_workers=True
                )
            except BaseException:
                await asyncio.to_thread(local.close)
                raise
            return cls(client, local=local, owned=True)
        _check_address(address)
        try:
            client = await asyncio.to_thread(
                distributed.Client,
                address,
                timeout=timeout,
                set_as_default=False,
                direct_to_workers=True,  # results straight from the workers, not via the scheduler
            )
        except (OSError, ValueError, TypeError) as error:
            raise InputError(
                f"--dask {address}: cannot reach a Dask scheduler there ({_reason(error)}); "
                "start one with 'dask scheduler', or give local:N for a cluster on this machine"
            ) from None
        cluster = cls(client, owned=True)
        try:
            await cluster.wait_for_workers(timeout)
        except BaseException:
            await cluster.aclose()
            raise
        return cluster

    def executor(self) -> Executor:
        if self._executor is None:
            self._executor = self.client.get_executor()  # type: ignore[no-untyped-call]
        return self._executor

    async def wait_for_workers(self, timeout: float = CONNECT_SECONDS) -> None:
        """Wait up to ``timeout`` s for a first worker (an adaptive cluster starts with none)."""
        try:
            await asyncio.to_thread(self.client.wait_for_workers, 1, timeout)
        except TimeoutError:
            raise InputError(
                f"--dask {self.address}: the scheduler has no workers; "
                f"start some with 'dask worker {self.address}'"
            ) from None

    async def threads(self) -> dict[str, int]:
        """Each worker's threads, as the scheduler knows them now.

        Bounded in time: a scheduler that has gone would hold the call (and
        its thread, which the event loop waits for at exit) until the client
        gives up reconnecting.
        """
        if self.client.status != "running":
            raise ClusterLost(f"the Dask scheduler at {self.address} is not reachable")
        threads: dict[str, int] = await asyncio.to_thread(
            self.client.nthreads, callback_timeout=ANSWER_SECONDS
        )
        return threads

    async def check_workers(self, modules: Sequence[str]) -> None:
        """Make sure every worker can import ``modules`` (the tasks' code and kernels).

        A worker without them would otherwise fail each task with a pickling
        traceback. The probe is ``exec``, a builtin, so it reaches any worker.
        """
        for module in modules:
            try:
                await asyncio.to_thread(self.client.run, exec, f"import {module}")
            except Exception as error:  # ImportError, or whatever importing it raised there
                raise InputError(
                    f"--dask {self.address}: a worker cannot import {module} ({_reason(error)}); "
                    "install knn-pipeline, the same version as here, on every worker "
                    f"(pip install knn-pipeline, or {_INSTALL} from its source)"
                ) from None

    @staticmethod
    def killed_worker(error: BaseException) -> bool:
        """Whether ``error`` is Dask giving up on a task that killed its workers."""
        return isinstance(error, _distributed().KilledWorker)

    async def broadcast(self, value: Any) -> Published:
        """``value`` placed on every worker once; tasks take the returned handle."""
        published = Published(self, value)
        await published.place()
        return published

    async def scatter(self, value: Any) -> Future[Any]:
        future: Future[Any] = await asyncio.to_thread(
            self.client.scatter, value, broadcast=True, hash=False
        )
        return future

    async def aclose(self) -> None:
        """Close what this process opened: the client, and a local cluster with its workers."""
        if not self.owned:
            return
        try:
            await asyncio.to_thread(self.client.close, CLOSE_SECONDS)
        finally:
            if self.local is not None:
                await asyncio.to_thread(self.local.close, CLOSE_SECONDS)


class Published:
    """A value placed on every worker of a cluster, placed again if the cluster loses it.

    Every worker holds a copy, so a worker that dies loses nothing, unless it
    held the last copy (a cluster of one worker): the tasks that need it are
    then cancelled, and :meth:`replace` places it anew for their retry.
    """

    def __init__(self, cluster: DaskCluster, value: Any) -> None:
        self.cluster = cluster
        self.value = value
        self.future: Future[Any] | None = None
        self._placing = asyncio.Lock()

    async def place(self) -> None:
        self.future = await self.cluster.scatter(self.value)

    @property
    def lost(self) -> bool:
        return self.future is None or self.future.status != "finished"

    async def replace(self, seen: Future[Any] | None) -> None:
        """Place the value again, once however many tasks saw ``seen`` lost."""
        async with self._placing:
            if self.future is seen:
                log.warning("the Dask cluster lost the run's data with a worker; placing it again")
                await self.place()

    def release(self) -> None:
        if self.future is not None:
            self.future.release()  # type: ignore[no-untyped-call]
            self.future = None


def _check_address(address: str) -> None:
    """Refuse what no scheduler address can be, before a client tries it for seconds."""
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address.strip())
        if scheme in ("tcp", "tls", "ws", "wss", "ucx"):
            parse_host_port(location)
    except (ValueError, TypeError):
        raise InputError(
            f"--dask {address!r}: not a scheduler address; give tcp://HOST:PORT, "
            "or local[:N] for a cluster on this machine"
        ) from None


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text.rstrip(".")
