"""Reusable stage bodies: small building blocks a pipeline reads top to bottom."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Awaitable, Callable
from typing import TypeVar

from .channel import Sender

__all__ = ["map_concurrently"]

T = TypeVar("T")
R = TypeVar("R")


async def map_concurrently(
    inbox: AsyncIterable[T],
    outbox: Sender[R],
    fn: Callable[[T], Awaitable[R]],
    *,
    limit: int | Callable[[], int],
) -> None:
    """Send ``await fn(item)`` for every item, up to ``limit`` at once, in completion order.

    ``limit`` may be a function, read again as calls finish: a pool on a
    cluster grows and shrinks with its workers. ``inbox`` is a channel's
    receiver or any async iterable. Closes ``outbox`` when the inbox is
    drained and every call has finished. The first failing call cancels the
    others, and its own exception (not an exception group)
    propagates, so callers see what went wrong directly.
    """
    bound = limit if callable(limit) else (lambda: limit)
    if bound() < 1:
        raise ValueError(f"limit must be at least 1, got {bound()}")
    running = 0
    finished = asyncio.Event()
    first_error: Exception | None = None

    async def one(item: T) -> None:
        nonlocal first_error, running
        try:
            await outbox.send(await fn(item))
        except Exception as error:
            first_error = first_error or error
            raise
        finally:
            running -= 1
            finished.set()

    try:
        async with outbox, asyncio.TaskGroup() as group:
            async for item in inbox:
                while running >= max(1, bound()):
                    finished.clear()
                    await finished.wait()
                running += 1
                group.create_task(one(item))
    except BaseExceptionGroup:
        if first_error is None:
            raise
        raise first_error from first_error.__cause__
