"""Bounded channels between stages, with an explicit end of stream.

A channel is the only way two stages talk. It is bounded, so a fast producer
waits for a slow consumer and memory stays flat, and it ends when the producer
closes it: no value a user could send means "stop".
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Generic, TypeVar

__all__ = ["Channel", "ChannelClosed", "EndOfStream"]

T = TypeVar("T")


class ChannelClosed(RuntimeError):
    """Raised when sending on a channel that its producer already closed."""


class EndOfStream(Exception):
    """Raised by :meth:`Channel.receive` once a closed channel is drained."""


class _End:
    """The private end-of-stream marker; no user value can be this object."""


_END = _End()


class Channel(Generic[T]):
    """A bounded FIFO between stages, closed by its producer.

    Built on :class:`asyncio.Queue`. The bound is held by a semaphore rather
    than the queue's ``maxsize`` so that :meth:`close` never blocks, even on a
    full channel: closing must work while a failing pipeline is tearing down.

    >>> ch: Channel[int] = Channel(capacity=8, name="numbers")
    >>> async def produce():
    ...     async with ch:  # closes on exit
    ...         await ch.send(1)
    >>> async def consume():
    ...     async for item in ch:
    ...         print(item)
    """

    def __init__(self, capacity: int = 16, *, name: str = "channel") -> None:
        if capacity < 1:
            raise ValueError(f"channel {name!r}: capacity must be at least 1, got {capacity}")
        self.name = name
        self.capacity = capacity
        self._queue: asyncio.Queue[T | _End] = asyncio.Queue()
        self._slots = asyncio.Semaphore(capacity)
        self._closed = False
        self.sent = 0

    @property
    def closed(self) -> bool:
        """True once the producer has closed the channel."""
        return self._closed

    def depth(self) -> int:
        """Items waiting to be received (shown in progress events)."""
        return self._queue.qsize() - (1 if self._closed and self._queue.qsize() else 0)

    async def send(self, item: T) -> None:
        """Send ``item``, waiting while the channel is full."""
        if self._closed:
            raise ChannelClosed(f"channel {self.name!r} is closed")
        await self._slots.acquire()
        if self._closed:
            self._slots.release()
            raise ChannelClosed(f"channel {self.name!r} is closed")
        self._queue.put_nowait(item)
        self.sent += 1

    def close(self) -> None:
        """End the stream; receivers drain what was sent, then stop. Idempotent."""
        if not self._closed:
            self._closed = True
            self._queue.put_nowait(_END)

    async def receive(self) -> T:
        """Receive the next item, or raise :class:`EndOfStream` once closed and drained."""
        item = await self._queue.get()
        if isinstance(item, _End):
            self._queue.put_nowait(item)  # let every other receiver see the end too
            raise EndOfStream(self.name)
        self._slots.release()
        return item

    def __aiter__(self) -> AsyncIterator[T]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[T]:
        while True:
            try:
                yield await self.receive()
            except EndOfStream:
                return

    async def __aenter__(self) -> Channel[T]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<Channel {self.name!r} {state} depth={self.depth()}/{self.capacity}>"
