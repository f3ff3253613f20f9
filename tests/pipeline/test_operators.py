"""map_concurrently: a bound on calls at once, read again as calls finish."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.channel import Channel
from pipeline.operators import map_concurrently


async def run_map(limit: object, items: int, on_call: object = None) -> tuple[list[int], int]:
    inbox: Channel[int] = Channel(items)
    outbox: Channel[int] = Channel(items)
    running = most = 0

    async def call(item: int) -> int:
        nonlocal running, most
        running += 1
        most = max(most, running)
        if callable(on_call):
            on_call(item)
        await asyncio.sleep(0.01)
        running -= 1
        return item * 2

    for item in range(items):
        await inbox.sender.send(item)
    inbox.sender.close()
    await map_concurrently(inbox.receiver, outbox.sender, call, limit=limit)  # type: ignore[arg-type]
    return sorted([item async for item in outbox.receiver]), most


async def test_no_more_calls_at_once_than_the_limit() -> None:
    results, most = await run_map(3, 20)
    assert results == [2 * i for i in range(20)]
    assert most == 3


async def test_a_limit_that_grows_is_followed() -> None:
    """A pool whose cluster gains workers: the bound rises while the map runs."""
    bound = {"now": 2}

    def grow(item: int) -> None:
        if item == 4:
            bound["now"] = 6

    results, most = await run_map(lambda: bound["now"], 40, grow)
    assert results == [2 * i for i in range(40)]
    assert most == 6


async def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        await run_map(0, 1)
