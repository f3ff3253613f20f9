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
    A failing call cancels the others and propagates, as in a task group.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    slots = asyncio.Semaphore(limit)

    async def one(item: T) -> None:
        try:
            await outbox.send(await fn(item))
        finally:
            slots.release()

    async with outbox, asyncio.TaskGroup() as group:
        async for item in inbox:
            await slots.acquire()
            group.create_task(one(item))
