"""The bridge from :mod:`logging` to the event stream: records become ``log`` events."""

from __future__ import annotations

import asyncio
import logging

from .bus import EventBus
from .records import Log

__all__ = ["EventLogHandler"]


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
