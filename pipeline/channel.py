"""Bounded channels between stages: anyio's memory object streams, with a name.

A channel is the only way two stages talk. It is bounded, so a fast producer
waits for a slow consumer and memory stays flat. It has two ends, each with
its own open count: the stream ends when every sending end is closed (the
receiver's ``async for`` stops; no value a user could send means "stop"), and
a sender whose receivers have all closed their ends gets
:class:`BrokenResourceError` from its next ``send``, instead of waiting for
ever on a full channel nobody reads.

Built on :func:`anyio.create_memory_object_stream`, which has exactly these
semantics (and ``clone()`` for several producers or consumers); this module
adds the name and the depth that progress events report. Its names:

- :class:`Channel`: a named pair of ends, with its depth.
- :data:`Sender` and :data:`Receiver`: the two ends (anyio's
  ``MemoryObjectSendStream`` and ``MemoryObjectReceiveStream``).
- :class:`EndOfStream`: ``receive()`` once every sender is closed and the
  channel is drained (``async for`` stops instead).
- :class:`BrokenResourceError`: ``send()`` once every receiver has left.
- :class:`ClosedResourceError`: using an end after closing it.

>>> numbers: Channel[int] = Channel(8, name="numbers")
>>> async def produce(outbox: Sender[int]) -> None:
...     async with outbox:  # closes this end on exit: the stream ends
...         await outbox.send(1)
>>> async def consume(inbox: Receiver[int]) -> None:
...     async with inbox:  # closes this end on exit: the producer stops
...         async for item in inbox:
...             print(item)
"""

from __future__ import annotations

from typing import Generic, TypeVar

from anyio import BrokenResourceError, ClosedResourceError, EndOfStream, create_memory_object_stream
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

__all__ = [
    "BrokenResourceError",
    "Channel",
    "ClosedResourceError",
    "EndOfStream",
    "Receiver",
    "Sender",
]

T = TypeVar("T")

Sender = MemoryObjectSendStream
"""The sending end of a channel: ``await send(item)``; ``close()`` ends the stream."""

Receiver = MemoryObjectReceiveStream
"""The receiving end of a channel: ``async for item in receiver``; ``close()`` leaves it."""


class Channel(Generic[T]):
    """A named, bounded channel: a :data:`Sender` and a :data:`Receiver` of ``T``.

    Hand ``channel.sender`` to the producing stage and ``channel.receiver``
    to the consuming one; each closes its own end when it is done.
    """

    def __init__(self, capacity: int = 16, *, name: str = "channel") -> None:
        if capacity < 1:
            raise ValueError(f"channel {name!r}: capacity must be at least 1, got {capacity}")
        self.name = name
        self.capacity = capacity
        self.sender: Sender[T]
        self.receiver: Receiver[T]
        self.sender, self.receiver = create_memory_object_stream[T](capacity)

    def depth(self) -> int:
        """Items waiting to be received (shown in progress events)."""
        return self.receiver.statistics().current_buffer_used

    @property
    def closed(self) -> bool:
        """True once no sending end is open: the stream has ended (or is draining)."""
        return self.sender.statistics().open_send_streams == 0

    def close(self) -> None:
        """Close both original ends (clones handed to stages stay theirs to close)."""
        self.sender.close()
        self.receiver.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<Channel {self.name!r} {state} depth={self.depth()}/{self.capacity}>"
