"""The bus that fans a run's events out to its subscribers.

Emitting never blocks: each subscriber has a bounded buffer, and when it is
full, progress events (``stage_progress``, ``unit_done``, ``log``) are
dropped and counted, while result and terminal events are always kept.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from .records import Event, StageProgress, new_run_id

__all__ = ["SILENT", "EventBus", "StageEvents", "Subscription"]

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

    def _next_waiting(self) -> Event | None:
        """The next event to deliver if one waits (dropped progress events skipped)."""
        while self._buffer:
            event = self._buffer.popleft()
            if not event.droppable:
                return event
            if id(event) in self._skipped:
                self._skipped.discard(id(event))
                continue
            self._droppable.popleft()  # it is the oldest droppable still queued
            return event
        return None

    def ready(self, limit: int | None = None) -> list[Event]:
        """The events waiting now (at most ``limit``), in order, without waiting for
        more: a sink takes a burst (a fold's scores for every candidate) at once rather
        than one by one."""
        events: list[Event] = []
        while limit is None or len(events) < limit:
            event = self._next_waiting()
            if event is None:
                break
            events.append(event)
        return events

    async def __anext__(self) -> Event:
        while True:
            event = self._next_waiting()
            if event is not None:
                return event
            if self._closed:
                self._bus.unsubscribe(self)
                raise StopAsyncIteration
            self._wakeup.clear()
            await self._wakeup.wait()

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
