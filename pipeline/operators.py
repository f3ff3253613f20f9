"""Reusable stage bodies: small building blocks a pipeline reads top to bottom."""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable
from typing import TypeVar

import anyio

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

    The bound is an :class:`anyio.CapacityLimiter` (one token a call), its size
    set again from ``limit`` as each call ends.

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
    calls = anyio.CapacityLimiter(bound())
    first_error: Exception | None = None

    async def one(item: T, ticket: object) -> None:
        nonlocal first_error
        try:
            await outbox.send(await fn(item))
        except Exception as error:
            first_error = first_error or error
            raise
        finally:
            calls.total_tokens = max(1, bound())  # a cluster may have grown or shrunk
            calls.release_on_behalf_of(ticket)

    try:
        async with outbox, anyio.create_task_group() as group:
            async for item in inbox:
                ticket = object()  # each call holds its own token, released when it ends
                await calls.acquire_on_behalf_of(ticket)
                group.start_soon(one, item, ticket)
    except BaseExceptionGroup:
        if first_error is None:
            raise
        raise first_error from first_error.__cause__
