"""Typed progress and result events, and the bus that fans them out.

Every event is a small frozen record with a ``kind``, a timestamp ``ts``
(seconds since the epoch) and the ``run_id``; :meth:`Event.to_dict` gives its
JSON form. Emitting never blocks: each subscriber has a bounded buffer, and
when it is full, progress events (``stage_progress``, ``unit_done``, ``log``)
are dropped and counted, while result and terminal events are always kept.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = [
    "SCHEMA_VERSION",
    "CandidateScored",
    "Event",
    "EventBus",
    "Log",
    "NewBest",
    "RunFailed",
    "RunFinished",
    "RunStarted",
    "StageProgress",
    "Subscription",
    "UnitDone",
    "new_run_id",
]

SCHEMA_VERSION = 1


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of every event. ``droppable`` events may be lost by a slow subscriber."""

    kind: ClassVar[str] = "event"
    droppable: ClassVar[bool] = False
    run_id: str
    ts: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-serialisable form: ``{"v", "kind", "ts", "run_id", ...fields}``."""
        body = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {"v": SCHEMA_VERSION, "kind": self.kind, **body}


@dataclass(frozen=True, kw_only=True)
class RunStarted(Event):
    kind: ClassVar[str] = "run_started"
    job: str
    params: Mapping[str, Any]
    units_total: int
    workers: int


@dataclass(frozen=True, kw_only=True)
class StageProgress(Event):
    kind: ClassVar[str] = "stage_progress"
    droppable: ClassVar[bool] = True
    stage: str
    done: int
    total: int | None
    channel_depths: Mapping[str, int]


@dataclass(frozen=True, kw_only=True)
class UnitDone(Event):
    kind: ClassVar[str] = "unit_done"
    droppable: ClassVar[bool] = True
    unit: str
    seconds: float
    done: int
    total: int


@dataclass(frozen=True, kw_only=True)
class CandidateScored(Event):
    kind: ClassVar[str] = "candidate_scored"
    params: Mapping[str, Any]
    fold: str
    score: float
    folds_done: int
    folds_total: int
    mean_score: float


@dataclass(frozen=True, kw_only=True)
class NewBest(Event):
    kind: ClassVar[str] = "new_best"
    params: Mapping[str, Any]
    mean_score: float
    folds_done: int


@dataclass(frozen=True, kw_only=True)
class RunFinished(Event):
    kind: ClassVar[str] = "run_finished"
    seconds: float
    best: Mapping[str, Any] | None
    best_score: float | None
    candidates: int
    events_dropped: int = 0


@dataclass(frozen=True, kw_only=True)
class RunFailed(Event):
    kind: ClassVar[str] = "run_failed"
    error: str
    stage: str | None
    interrupted: bool


@dataclass(frozen=True, kw_only=True)
class Log(Event):
    kind: ClassVar[str] = "log"
    droppable: ClassVar[bool] = True
    level: str
    logger: str
    message: str
    pid: int


class Subscription:
    """One subscriber's bounded view of the stream; iterate it with ``async for``."""

    def __init__(self, bus: EventBus, limit: int) -> None:
        self._bus = bus
        self._limit = limit
        self._buffer: deque[Event] = deque()
        self._wakeup = asyncio.Event()
        self._closed = False
        self.dropped = 0

    def offer(self, event: Event) -> None:
        """Queue ``event`` without blocking, dropping a progress event if full."""
        if self._closed:
            return
        if len(self._buffer) >= self._limit:
            if event.droppable:
                self.dropped += 1
                return
            for i, queued in enumerate(self._buffer):
                if queued.droppable:
                    del self._buffer[i]
                    self.dropped += 1
                    break
        self._buffer.append(event)
        self._wakeup.set()

    def close(self) -> None:
        """End the iteration once the buffer is drained."""
        self._closed = True
        self._wakeup.set()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        try:
            while True:
                while self._buffer:
                    yield self._buffer.popleft()
                if self._closed:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
        finally:
            self._bus.unsubscribe(self)


class EventBus:
    """Fans events out to subscribers; :meth:`emit` never blocks the pipeline."""

    def __init__(self, run_id: str | None = None, *, default_limit: int = 1024) -> None:
        self.run_id = run_id or new_run_id()
        self._default_limit = default_limit
        self._subscribers: list[Subscription] = []
        self._closed = False
        self.emitted = 0

    def subscribe(self, limit: int | None = None) -> Subscription:
        """A new subscriber that sees every event emitted from now on."""
        sub = Subscription(self, limit or self._default_limit)
        if self._closed:
            sub.close()
        else:
            self._subscribers.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        sub.close()
        if sub in self._subscribers:
            self._subscribers.remove(sub)

    def emit(self, event: Event) -> None:
        self.emitted += 1
        for sub in list(self._subscribers):
            sub.offer(event)

    @property
    def dropped(self) -> int:
        """Progress events dropped by the current subscribers' full buffers."""
        return sum(s.dropped for s in self._subscribers)

    def close(self) -> None:
        """End every subscription once it has drained."""
        self._closed = True
        for sub in list(self._subscribers):
            sub.close()
