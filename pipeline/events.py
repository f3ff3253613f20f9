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
import logging
import math
import time
import types
import typing
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

__all__ = [
    "EVENT_TYPES",
    "SCHEMA_VERSION",
    "SILENT",
    "CandidateScored",
    "Event",
    "EventBus",
    "EventLogHandler",
    "Log",
    "NewBest",
    "RunFailed",
    "RunFinished",
    "RunStarted",
    "StageEvents",
    "StageProgress",
    "Subscription",
    "UnitDone",
    "new_run_id",
    "schema",
]

SCHEMA_VERSION = 1


def _plain(value: Any) -> Any:
    """Mappings as dicts, so ``json.dumps`` accepts any Mapping a stage passed, and an
    undefined number (NaN, as an AUC of a fold with one class) as null, which JSON has."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return dict(value) if isinstance(value, Mapping) else value


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
        body = {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}
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


E = TypeVar("E", bound=Event)


class StageEvents:
    """A stage's handle on the event stream: stamps the run id, adds channel depths."""

    def __init__(
        self,
        bus: EventBus | None,
        stage: str,
        depths: Callable[[], Mapping[str, int]] | None = None,
    ) -> None:
        self.bus = bus
        self.stage = stage
        self._depths = depths

    @property
    def run_id(self) -> str:
        return self.bus.run_id if self.bus is not None else ""

    def emit(self, kind: type[E], **fields: Any) -> None:
        """Emit a ``kind`` event with these fields (no-op without a bus)."""
        if self.bus is not None:
            self.bus.emit(kind(run_id=self.bus.run_id, **fields))

    def progress(self, done: int, total: int | None = None) -> None:
        """Emit ``stage_progress`` for this stage, with every channel's depth."""
        depths = dict(self._depths()) if self._depths is not None else {}
        self.emit(StageProgress, stage=self.stage, done=done, total=total, channel_depths=depths)


SILENT = StageEvents(None, "")
"""Events of a stage run without a bus: dropped."""


EVENT_TYPES: tuple[type[Event], ...] = (
    RunStarted,
    StageProgress,
    UnitDone,
    CandidateScored,
    NewBest,
    RunFinished,
    RunFailed,
    Log,
)
"""Every kind of event, in the order the schema lists them."""


def schema() -> dict[str, dict[str, str]]:
    """Every event kind and its fields with their JSON types (documented in README.md)."""
    kinds: dict[str, dict[str, str]] = {}
    for cls in EVENT_TYPES:
        hints = typing.get_type_hints(cls)
        fields = {"v": "integer", "kind": "string"}
        fields.update({f.name: _json_type(hints[f.name]) for f in dataclasses.fields(cls)})
        kinds[cls.kind] = fields
    return kinds


def _json_type(hint: Any) -> str:
    names = {str: "string", int: "integer", float: "number", bool: "boolean"}
    options = (
        typing.get_args(hint)
        if typing.get_origin(hint) in (types.UnionType, typing.Union)
        else (hint,)
    )
    parts = []
    for option in options:
        if option is type(None):
            parts.append("null")
        elif option in names:
            parts.append(names[option])
        else:
            parts.append("object")
    return " or ".join(parts)


class EventLogHandler(logging.Handler):
    """Turns log records (the parent's and forwarded workers') into ``log`` events.

    Records may arrive on any thread; events are emitted on the bus's loop.
    """

    def __init__(self, bus: EventBus, loop: asyncio.AbstractEventLoop, level: int) -> None:
        super().__init__(level)
        self._bus = bus
        self._loop = loop

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a malformed call (arguments that do not fit): never the run's end
            self.handleError(record)
            return
        event = Log(
            run_id=self._bus.run_id,
            ts=record.created,
            level=record.levelname,
            logger=record.name,
            message=message,
            pid=record.process or 0,
        )
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._bus.emit(event)
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._bus.emit, event)


class Subscription:
    """One subscriber's bounded view of the stream.

    Iterate it with ``async for``; the iteration ends after the run's last
    event. Use it as ``async with bus.subscribe() as events:`` so that a
    subscriber that stops early (or raises) is unsubscribed at once.
    """

    def __init__(self, bus: EventBus, limit: int) -> None:
        self._bus = bus
        self._limit = limit
        self._buffer: deque[Event] = deque()
        # The droppable events queued, oldest first, and those dropped while queued (by
        # id; skipped when their turn comes): making room costs the same however many
        # events wait, where a search of the buffer would cost its length each time.
        self._droppable: deque[Event] = deque()
        self._skipped: set[int] = set()
        self._wakeup = asyncio.Event()
        self._closed = False
        self.dropped = 0

    def offer(self, event: Event) -> None:
        """Queue ``event`` without blocking, dropping a progress event if full."""
        if self._closed:
            return
        if len(self._buffer) - len(self._skipped) >= self._limit:
            if event.droppable:
                self.dropped += 1
                return
            if self._droppable:  # the oldest progress event makes room
                self._skipped.add(id(self._droppable.popleft()))
                self.dropped += 1
        self._buffer.append(event)
        if event.droppable:
            self._droppable.append(event)
        self._wakeup.set()

    def close(self) -> None:
        """End the iteration once the buffer is drained."""
        self._closed = True
        self._wakeup.set()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        while True:
            while not self._buffer:
                if self._closed:
                    self._bus.unsubscribe(self)
                    raise StopAsyncIteration
                self._wakeup.clear()
                await self._wakeup.wait()
            event = self._buffer.popleft()
            if not event.droppable:
                return event
            if id(event) in self._skipped:
                self._skipped.discard(id(event))
                continue
            self._droppable.popleft()  # it is the oldest droppable still queued
            return event

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._bus.unsubscribe(self)


class EventBus:
    """Fans events out to subscribers; :meth:`emit` never blocks the pipeline."""

    def __init__(self, run_id: str | None = None, *, default_limit: int = 1024) -> None:
        self.run_id = run_id or new_run_id()
        self._default_limit = default_limit
        self._subscribers: list[Subscription] = []
        self._closed = False
        self._dropped_by_gone = 0
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
        """Stop delivering to ``sub`` (its dropped count is kept in the bus's total)."""
        sub.close()
        if sub in self._subscribers:
            self._subscribers.remove(sub)
            self._dropped_by_gone += sub.dropped

    def emit(self, event: Event) -> None:
        self.emitted += 1
        for sub in list(self._subscribers):
            sub.offer(event)

    @property
    def dropped(self) -> int:
        """Progress events dropped by subscribers' full buffers so far."""
        return self._dropped_by_gone + sum(s.dropped for s in self._subscribers)

    def close(self) -> None:
        """End every subscription once it has drained."""
        self._closed = True
        for sub in list(self._subscribers):
            sub.close()
