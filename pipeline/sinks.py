"""Where events go: a JSON-lines file, a log consumer over TCP, or any coroutine.

A sink is a coroutine that consumes one :class:`Subscription`. Run it with
:func:`run_sink`: a sink that fails is reported and unsubscribed, and the run
goes on, because watching a run must never break it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .abandonable import run_abandonable
from .events import Subscription
from .logs.client import SenderStats, TcpLineSender

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


FLUSH_SECONDS = 0.5
"""The longest an event waits in the writer before it is flushed to the file."""

PIECE_LINES = 64
"""Lines in one piece for the writer, at most (a burst of events is cut into pieces)."""

WAITING_PIECES = 1 << 10
"""Pieces queued for the writer, at most (65,536 lines): if it stalls (a slow disk, a
FIFO whose reader pauses), the sink waits and the subscription's own bound applies,
never memory."""


def write_jsonl(path: str | os.PathLike[str]) -> Sink:
    """A sink that writes every event as one JSON line to ``path``.

    One thread writes: the event loop only encodes the events waiting (a burst,
    such as a fold's scores for every candidate, as one piece) and queues them,
    so a run with ``--events`` costs little more than one without. The thread
    writes what has queued up as one batch and flushes it within
    :data:`FLUSH_SECONDS`, and at the end. It is a daemon (see
    :mod:`pipeline.abandonable`): a FIFO nobody reads, or a disk that stalls,
    blocks only it, never the command's exit.
    """

    async def sink(events: Subscription) -> int:
        pieces: queue.Queue[tuple[bytes, int] | None] = queue.Queue(WAITING_PIECES)
        writing = asyncio.ensure_future(run_abandonable(_write_lines, path, pieces))

        async def queue_piece(piece: tuple[bytes, int] | None) -> None:
            while not writing.done():  # a stalled writer: wait here, not in memory
                try:
                    pieces.put_nowait(piece)
                    return
                except queue.Full:
                    await asyncio.sleep(FLUSH_SECONDS / 10)

        try:
            async for event in events:
                burst = [event, *events.ready(PIECE_LINES - 1)]
                await queue_piece((b"".join(e.json_line() for e in burst), len(burst)))
                if writing.done():
                    break  # the write failed: its error is the result
        finally:
            await queue_piece(None)
        return await writing

    return sink


def _write_lines(
    path: str | os.PathLike[str], pieces: queue.Queue[tuple[bytes, int] | None]
) -> int:
    """Write the queued pieces (lines, and how many) until ``None``, in batches; the
    number of lines written."""
    written = 0
    try:
        with open(path, "wb") as stream:
            flushed = time.monotonic()
            ended = False
            while not ended:
                try:
                    batch = [pieces.get(timeout=FLUSH_SECONDS)]
                except queue.Empty:
                    batch = []
                while batch and batch[-1] is not None:
                    try:
                        batch.append(pieces.get_nowait())
                    except queue.Empty:
                        break
                ended = bool(batch) and batch[-1] is None
                lines = [piece for piece in batch if piece is not None]
                if lines:
                    stream.write(b"".join(text for text, _ in lines))
                now = time.monotonic()
                if ended or (lines and pieces.empty()) or now - flushed >= FLUSH_SECONDS:
                    stream.flush()
                    flushed = now
                written += sum(count for _, count in lines)
    except OSError as error:
        raise WriteFailed(written, error) from error
    return written


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
                sender.send_line_nowait(event.json_line())
        finally:
            stats = await sender.aclose(timeout=close_timeout)
        return stats

    return sink
