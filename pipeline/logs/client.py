"""Producer side of the log stream: newline-delimited JSON over TCP that never holds up a run.

Records wait in a bounded in-memory buffer (the oldest are dropped when it is full) and a
background task connects, reconnects with exponential backoff and writes them.

Delivery is at-least-once as far as TCP lets a silent protocol tell: a record leaves the
buffer only once the kernel has taken all of its bytes, so a record caught in a write that
failed is sent again on the next connection and the consumer may see it twice. The consumer
never talks back, so EOF from it means it is going away: the sender stops writing at once
and keeps the rest for the next connection. Bytes the kernel accepted for a consumer that
then crashed, or refused the connection, cannot be detected and are lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType

from ..json_lines import json_line
from .address import format_address

__all__ = ["SenderStats", "TcpLineSender"]

_log = logging.getLogger(__name__)

_BATCH_BYTES = 64 * 1024
_CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True)
class SenderStats:
    """What happened to the records given to a :class:`TcpLineSender`."""

    sent: int = 0
    dropped: int = 0
    undelivered: int = 0
    reconnects: int = 0
    connected_ever: bool = False


class TcpLineSender:
    """Streams JSON records to a log consumer; the caller never waits and never sees errors.

    Use from the event loop's thread only. ``buffer_limit`` records can wait, plus one
    batch being written.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        buffer_limit: int = 10_000,
        max_backoff: float = 2.0,
        initial_backoff: float = 0.05,
    ) -> None:
        if buffer_limit < 1:
            raise ValueError("buffer_limit must be at least 1")
        if initial_backoff <= 0 or max_backoff < initial_backoff:
            raise ValueError("need 0 < initial_backoff <= max_backoff")
        self._host = host
        self._port = port
        self._address = format_address(host, port)  # for messages
        self._limit = buffer_limit
        self._max_backoff = max_backoff
        self._initial_backoff = initial_backoff
        self._buffer: deque[bytes] = deque()
        self._inflight: list[bytes] = []
        self._wakeup = asyncio.Event()
        self._flushed = asyncio.Event()
        self._flushed.set()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._sent = 0
        self._dropped = 0
        self._reconnects = 0
        self._connected_ever = False

    @property
    def stats(self) -> SenderStats:
        return SenderStats(
            sent=self._sent,
            dropped=self._dropped,
            undelivered=len(self._buffer) + len(self._inflight),
            reconnects=self._reconnects,
            connected_ever=self._connected_ever,
        )

    async def start(self) -> None:
        """Start the background connection task; returns at once, connected or not."""
        if self._closed:
            raise RuntimeError("sender is closed")
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"log sender to {self._address}"
            )

    def send_nowait(self, record: Mapping[str, object]) -> None:
        """Queue one record; when the buffer is full the oldest record is dropped.

        Raises only if ``record`` cannot be serialised (``TypeError`` from
        :func:`pipeline.json_lines.json_line`), which is a bug in the caller, never
        for network trouble.
        Records sent after :meth:`aclose` are counted as dropped.
        """
        self.send_line_nowait(json_line(record))

    def send_line_nowait(self, line: bytes) -> None:
        """Queue one record already written as a JSON line (newline included), as
        :meth:`send_nowait` queues a record."""
        if self._closed:
            self._dropped += 1
            return
        if len(self._buffer) >= self._limit:
            self._buffer.popleft()
            self._dropped += 1
        self._buffer.append(line)
        self._flushed.clear()
        self._wakeup.set()

    async def aclose(self, timeout: float = 2.0) -> SenderStats:
        """Flush for up to ``timeout`` seconds, then stop; whatever is left is undelivered."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            try:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._flushed.wait()
            finally:
                task.cancel()
                await asyncio.wait({task})
            if not task.cancelled() and (exc := task.exception()) is not None:
                _log.warning("log sender to %s failed: %r", self._address, exc)
        return self.stats

    async def __aenter__(self) -> TcpLineSender:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _run(self) -> None:
        backoff = self._initial_backoff
        while True:
            try:
                async with asyncio.timeout(_CONNECT_TIMEOUT):
                    reader, writer = await asyncio.open_connection(self._host, self._port)
            except OSError as exc:
                _log.debug("log sender: cannot connect to %s: %s", self._address, exc)
            else:
                if self._connected_ever:
                    self._reconnects += 1
                self._connected_ever = True
                if await self._pump(reader, writer):
                    backoff = self._initial_backoff
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Write buffered records until the connection ends; True if any were delivered."""
        # With no write buffering in the transport, drain() returning means the kernel has
        # every byte, which is what lets a record leave the buffer.
        writer.transport.set_write_buffer_limits(high=0)
        watcher = asyncio.create_task(self._watch_peer(reader))
        delivered = False
        try:
            while not watcher.done():
                if not self._buffer:
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                self._inflight = self._take_batch()
                writer.write(b"".join(self._inflight))
                await writer.drain()
                self._sent += len(self._inflight)
                self._inflight = []
                delivered = True
                if not self._buffer:
                    self._flushed.set()
        except OSError as exc:
            _log.debug("log sender: connection to %s lost: %s", self._address, exc)
        finally:
            self._requeue_inflight()
            writer.transport.abort()
            watcher.cancel()
            await asyncio.wait({watcher})
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        return delivered

    async def _watch_peer(self, reader: asyncio.StreamReader) -> None:
        """The consumer never sends anything, so EOF or an error means it is going away."""
        try:
            while await reader.read(_BATCH_BYTES):
                pass
        except OSError:
            pass
        finally:
            self._wakeup.set()

    def _take_batch(self) -> list[bytes]:
        batch: list[bytes] = []
        size = 0
        while self._buffer and size < _BATCH_BYTES:
            line = self._buffer.popleft()
            batch.append(line)
            size += len(line)
        return batch

    def _requeue_inflight(self) -> None:
        if not self._inflight:
            return
        self._buffer.extendleft(reversed(self._inflight))
        self._inflight = []
        while len(self._buffer) > self._limit:
            self._buffer.popleft()
            self._dropped += 1
