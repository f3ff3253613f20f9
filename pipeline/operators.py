"""Reusable stage bodies: small building blocks a pipeline reads top to bottom."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from .channel import Channel

__all__ = ["map_concurrently"]

T = TypeVar("T")
R = TypeVar("R")


async def map_concurrently(
    inbox: Channel[T],
    outbox: Channel[R],
    fn: Callable[[T], Awaitable[R]],
    *,
    limit: int,
) -> None:
    """Send ``await fn(item)`` for every item, up to ``limit`` at once, in completion order.

    Closes ``outbox`` when the inbox is drained and every call has finished.
    The first failing call cancels the others, and its own exception (not an
    exception group) propagates, so callers see what went wrong directly.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    slots = asyncio.Semaphore(limit)
    first_error: Exception | None = None

    async def one(item: T) -> None:
        nonlocal first_error
        try:
            await outbox.send(await fn(item))
        except Exception as error:
            first_error = first_error or error
            raise
        finally:
            slots.release()

    try:
        async with outbox, asyncio.TaskGroup() as group:
            async for item in inbox:
                await slots.acquire()
                group.create_task(one(item))
    except BaseExceptionGroup:
        if first_error is None:
            raise
        raise first_error from first_error.__cause__
