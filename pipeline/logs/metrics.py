"""Prometheus metrics of the log consumer: what it receives, turned into gauges and counters.

The consumer calls :class:`LogMetrics` where it accepts and rejects lines and where it opens
and closes connections; :func:`serve_metrics` serves the metrics over HTTP from a thread of
its own. Everything lives in a registry of its own, never ``prometheus_client``'s global
one, so that several consumers (or tests) in one process do not clash.

Records come from the network, so nothing in them is trusted to be well-formed or small:

* ``kind`` labels only the event kinds registered with :mod:`pipeline.events` when the
  metrics are made (the framework's own, and a job's once its events module is imported),
  plus ``new_best``, which these metrics read; any other value (or a missing one) is
  counted as ``other``, so producers cannot create series at will.
* Per-run series are labelled with ``run_id`` only when it is a string of at most
  :data:`MAX_RUN_ID_LENGTH` characters; fields of the wrong type are ignored.
* Per-run series stay bounded: the series of the last ``keep_finished`` finished runs are
  kept (a run is finished by ``run_finished`` or ``run_failed``), older ones are removed;
  and at most ``max_live_runs`` unfinished runs are followed: beyond it, the run heard from
  least recently is forgotten (a producer that was killed never says its run ended).

Updating a metric takes a lock that a scrape holds only to copy a few values, so the
consumer's event loop never waits on the HTTP side.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from ..errors import InputError
from ..events import RunFailed, RunFinished, RunStarted, UnitDone, event_types
from .address import format_address

__all__ = [
    "DEFAULT_KEEP_FINISHED",
    "DEFAULT_MAX_LIVE_RUNS",
    "MAX_RUN_ID_LENGTH",
    "NEW_BEST",
    "LogMetrics",
    "MetricsServer",
    "serve_metrics",
]

# A job's new leader: its mean_score is the run's best so far. The framework does not
# define it (a job does, as the k-NN tuning's stages.events.NewBest), so it is known here
# by its kind on the wire and that one field, and counted under its own label whether or
# not the job's events are imported.
NEW_BEST = "new_best"
OTHER_KIND = "other"
DEFAULT_KEEP_FINISHED = 100
"""Finished runs whose per-run series are kept."""
DEFAULT_MAX_LIVE_RUNS = 1000
"""Unfinished runs followed at once."""
MAX_RUN_ID_LENGTH = 64
"""Longer run ids get no per-run series (a run's own ids are 12 characters)."""

Reason = Literal["bad", "oversized"]


@dataclass
class _Run:
    """What is known of one run, and whether it counts as in progress."""

    in_progress: bool = False
    has_units: bool = False
    units_done: int = 0


class LogMetrics:
    """The consumer's metrics, fed with the records it accepts and the lines it rejects.

    Call from one thread only (the consumer's event loop); scrapes may come from any.
    """

    def __init__(
        self,
        *,
        keep_finished: int = DEFAULT_KEEP_FINISHED,
        max_live_runs: int = DEFAULT_MAX_LIVE_RUNS,
    ) -> None:
        if keep_finished < 0:
            raise ValueError("keep_finished must be at least 0")
        if max_live_runs < 1:
            raise ValueError("max_live_runs must be at least 1")
        self.registry = CollectorRegistry()
        self._keep_finished = keep_finished
        self._max_live_runs = max_live_runs
        registry = self.registry
        events = Counter(
            "knnp_logs_events",
            "Records accepted, by event kind (other: a kind that is no event kind).",
            ["kind"],
            registry=registry,
        )
        rejected = Counter(
            "knnp_logs_lines_rejected",
            "Lines dropped, by reason (bad: not a strict JSON object; oversized: too long).",
            ["reason"],
            registry=registry,
        )
        self._in_progress = Gauge(
            "knnp_logs_runs_in_progress",
            "Runs with a run_started and no run_finished or run_failed yet.",
            registry=registry,
        )
        self._units_done = Gauge(
            "knnp_logs_run_units_done",
            "Units of work the run has finished (unit_done's done).",
            ["run_id"],
            registry=registry,
        )
        self._units_planned = Gauge(
            "knnp_logs_run_units_planned",
            "Units of work in the run (run_started's units_total, unit_done's total).",
            ["run_id"],
            registry=registry,
        )
        self._best_score = Gauge(
            "knnp_logs_run_best_score",
            "Mean ranking score of the run's best candidate (new_best, run_finished).",
            ["run_id"],
            registry=registry,
        )
        self._connections = Gauge(
            "knnp_logs_connections_open",
            "Producer connections open now.",
            registry=registry,
        )
        # Children looked up once: a record costs one dict lookup and one locked add.
        kinds = dict.fromkeys([*(cls.kind for cls in event_types()), NEW_BEST])
        self._kinds = {kind: events.labels(kind) for kind in kinds}
        self._other = events.labels(OTHER_KIND)
        self._rejected: dict[Reason, Counter] = {
            "bad": rejected.labels("bad"),
            "oversized": rejected.labels("oversized"),
        }
        self._live: OrderedDict[str, _Run] = OrderedDict()  # least recently heard first
        self._finished: OrderedDict[str, _Run] = OrderedDict()  # first finished first
        self._running = 0

    def connection_opened(self) -> None:
        self._connections.inc()

    def connection_closed(self) -> None:
        self._connections.dec()

    def rejected(self, reason: Reason) -> None:
        self._rejected[reason].inc()

    def accepted(self, record: Mapping[str, Any]) -> None:
        """Count ``record`` by kind and update its run's series."""
        kind = record.get("kind")
        counter = self._kinds.get(kind) if isinstance(kind, str) else None
        if counter is None:
            self._other.inc()
            return
        counter.inc()
        run_id = record.get("run_id")
        if not isinstance(run_id, str) or not 0 < len(run_id) <= MAX_RUN_ID_LENGTH:
            return
        if kind == RunStarted.kind:
            self._run_started(run_id, _count(record.get("units_total")))
        elif kind == UnitDone.kind:
            self._unit_done(run_id, _count(record.get("done")), _count(record.get("total")))
        elif kind == NEW_BEST:
            self._new_best(run_id, _score(record.get("mean_score")))
        elif kind in (RunFinished.kind, RunFailed.kind):
            self._run_ended(run_id, _score(record.get("best_score")))
        elif run_id in self._live:
            self._live.move_to_end(run_id)  # still heard from: not the one to forget

    def _run_started(self, run_id: str, units_total: int | None) -> None:
        again = self._finished.pop(run_id, None)  # a finished run started over
        if again is not None:
            again.has_units = False  # counts start over too
        run = self._follow(run_id, again)
        if not run.in_progress:
            run.in_progress = True
            self._running += 1
            self._in_progress.set(self._running)
        if units_total is not None:
            self._units_planned.labels(run_id).set(units_total)
            if not run.has_units:
                run.has_units, run.units_done = True, 0
                self._units_done.labels(run_id).set(0)

    def _unit_done(self, run_id: str, done: int | None, total: int | None) -> None:
        run = self._known(run_id)
        if done is not None:
            # Delivery is at least once: a batch sent again repeats older counts.
            run.units_done = max(run.units_done, done) if run.has_units else done
            run.has_units = True
            self._units_done.labels(run_id).set(run.units_done)
        if total is not None:
            self._units_planned.labels(run_id).set(total)

    def _new_best(self, run_id: str, score: float | None) -> None:
        self._known(run_id)
        if score is not None:
            self._best_score.labels(run_id).set(score)

    def _run_ended(self, run_id: str, best_score: float | None) -> None:
        if best_score is not None:
            self._best_score.labels(run_id).set(best_score)
        run = self._live.pop(run_id, None)
        if run is None:
            if run_id in self._finished:
                return  # told twice
            run = _Run()
        elif run.in_progress:
            run.in_progress = False
            self._running -= 1
            self._in_progress.set(self._running)
        self._finished[run_id] = run
        while len(self._finished) > self._keep_finished:
            self._remove(self._finished.popitem(last=False)[0])

    def _known(self, run_id: str) -> _Run:
        """The run, finished or not; one not heard of before is followed from now on."""
        run = self._finished.get(run_id)
        return run if run is not None else self._follow(run_id)

    def _follow(self, run_id: str, run: _Run | None = None) -> _Run:
        """The unfinished run ``run_id`` (``run`` if it is new), as heard from last."""
        live = self._live.get(run_id)
        if live is not None:
            self._live.move_to_end(run_id)
            return live
        if len(self._live) >= self._max_live_runs:
            gone_id, gone = self._live.popitem(last=False)
            if gone.in_progress:
                self._running -= 1
                self._in_progress.set(self._running)
            self._remove(gone_id)
        run = self._live[run_id] = run if run is not None else _Run()
        return run

    def _remove(self, run_id: str) -> None:
        for gauge in (self._units_done, self._units_planned, self._best_score):
            with contextlib.suppress(KeyError):  # a run need not have every series
                gauge.remove(run_id)


def _count(value: object) -> int | None:
    """A count from a record: a non-negative integer a double holds, else None."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**53:
        return value
    return None


def _score(value: object) -> float | None:
    """A score from a record: a finite number (not a boolean), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits
        return None
    return number if math.isfinite(number) else None


class MetricsServer:
    """The registry served over HTTP by ``prometheus_client`` from threads of its own."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        name = server.socket.getsockname()
        self.address: tuple[str, int] = (str(name[0]), int(name[1]))

    def close(self) -> None:
        """Stop serving and free the port (blocks for up to half a second: use a thread)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def _start(registry: CollectorRegistry, host: str, port: int) -> MetricsServer:
    try:
        server, thread = start_http_server(port, host, registry=registry)
    except OSError as error:
        shown = format_address(host, port)
        reason = error.strerror or str(error) or type(error).__name__
        raise InputError(
            f"--metrics {shown}: cannot serve metrics there ({reason}); "
            "choose a free port or stop the program using it"
        ) from None
    return MetricsServer(server, thread)


async def serve_metrics(metrics: LogMetrics, host: str, port: int) -> MetricsServer:
    """Serve ``metrics`` on ``host:port`` (port 0: any free one); :class:`InputError` when
    the address cannot be bound.

    Binding resolves names and so may block: it runs in a thread, and a server bound while
    the caller was cancelled is closed rather than left serving.
    """
    starting = asyncio.ensure_future(asyncio.to_thread(_start, metrics.registry, host, port))
    try:
        return await asyncio.shield(starting)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            started = await starting
            await asyncio.to_thread(started.close)
        raise
