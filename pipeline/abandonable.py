"""Blocking calls that may never return, run so that the process can still end.

``asyncio.to_thread`` runs a call on the loop's default executor, whose
threads the interpreter waits for at exit (and ``asyncio.run`` on shutdown):
a thread stuck in ``open()`` on a FIFO nobody writes, or in a read of a
terminal, would keep an interrupted command alive for good. Such calls run
here in a daemon thread instead; cancelling the awaiting task abandons the
thread, which ends with the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["run_abandonable"]

T = TypeVar("T")


async def run_abandonable(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a daemon thread; awaiting it can be cancelled at any moment."""
    loop = asyncio.get_running_loop()
    result: asyncio.Future[T] = loop.create_future()

    def deliver(outcome: Callable[[], None]) -> None:
        if not result.done():
            outcome()

    def call() -> None:
        try:
            value = fn(*args)
        except BaseException as error:  # handed to the awaiting task, not lost in the thread
            failure = error
            outcome = lambda: result.set_exception(failure)  # noqa: E731
        else:
            outcome = lambda: result.set_result(value)  # noqa: E731
        with contextlib.suppress(RuntimeError):  # the loop closed while this was stuck
            loop.call_soon_threadsafe(deliver, outcome)

    threading.Thread(
        target=call, name=f"abandonable-{getattr(fn, '__name__', 'call')}", daemon=True
    ).start()
    return await result
