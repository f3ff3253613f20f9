"""Where events go: a JSON-lines file, a log consumer over TCP, or any coroutine.

A sink is a coroutine that consumes one :class:`Subscription`. Run it with
:func:`run_sink`: a sink that fails is reported and unsubscribed, and the run
goes on, because watching a run must never break it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiofiles

from .abandonable import run_abandonable
from .events import Subscription
from .files import is_special_file
from .logclient import SenderStats, TcpLineSender

__all__ = ["SinkStopped", "WriteFailed", "run_sink", "stream_to_consumer", "write_jsonl"]

log = logging.getLogger(__name__)

Sink = Callable[[Subscription], Awaitable[Any]]


@dataclass(frozen=True)
class SinkStopped:
    """What :func:`run_sink` returns for a sink that failed: its name and why."""

    name: str
    error: Exception


class WriteFailed(OSError):
    """Writing events failed after ``written`` of them."""

    def __init__(self, written: int, cause: OSError) -> None:
        super().__init__(cause.errno, cause.strerror or str(cause))
        self.written = written


async def run_sink(name: str, sink: Sink, subscription: Subscription) -> Any:
    """Run ``sink`` on ``subscription``; log its failure and return :class:`SinkStopped`.

    The run goes on, and the caller can say at the end what was lost.
    """
    async with subscription:
        try:
            return await sink(subscription)
        except Exception as error:  # a broken sink must not break the run
            log.warning("event sink %s stopped: %s: %s", name, type(error).__name__, error)
            return SinkStopped(name, error)


def write_jsonl(path: str | os.PathLike[str]) -> Sink:
    """A sink that writes every event as one JSON line to ``path``, flushed as it goes."""

    async def sink(events: Subscription) -> int:
        if is_special_file(path):
            return await _write_through(path, events)
        written = 0
        try:
            async with aiofiles.open(path, "w", encoding="utf-8") as stream:
                async for event in events:
                    await stream.write(json.dumps(event.to_dict(), separators=(",", ":")) + "\n")
                    await stream.flush()
                    written += 1
        except OSError as error:
            raise WriteFailed(written, error) from error
        return written

    return sink


async def _write_through(path: str | os.PathLike[str], events: Subscription) -> int:
    """Events to a device or FIFO, from a daemon thread: a reader that never comes, or
    stops reading, then blocks only that thread, never the command's exit."""
    lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()

    def write() -> int:
        written = 0
        try:
            with open(path, "w", encoding="utf-8") as stream:
                while (line := lines.get()) is not None:
                    stream.write(line)
                    stream.flush()
                    written += 1
        except OSError as error:
            raise WriteFailed(written, error) from error
        return written

    writing = asyncio.ensure_future(run_abandonable(write))
    try:
        async for event in events:
            if writing.done():
                break  # the write failed: its error is the result
            lines.put(json.dumps(event.to_dict(), separators=(",", ":")) + "\n")
    finally:
        lines.put(None)
    return await writing


def stream_to_consumer(host: str, port: int, *, close_timeout: float = 2.0) -> Sink:
    """A sink that sends every event to a log consumer, reconnecting as needed.

    The consumer may be absent or restart: events are buffered (a bounded
    amount, oldest dropped first) and sent when it is back.
    """

    async def sink(events: Subscription) -> SenderStats:
        sender = TcpLineSender(host, port)
        await sender.start()
        try:
            async for event in events:
                sender.send_nowait(event.to_dict())
        finally:
            stats = await sender.aclose(timeout=close_timeout)
        return stats

    return sink
