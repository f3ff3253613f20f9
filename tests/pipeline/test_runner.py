from __future__ import annotations

import asyncio

import pytest

from pipeline.channel import Channel
from pipeline.runner import Pipeline, StageFailed


async def produce(outbox: Channel[int], count: int) -> None:
    async with outbox:
        for i in range(count):
            await outbox.send(i)


async def double(inbox: Channel[int], outbox: Channel[int]) -> None:
    async with outbox:
        async for item in inbox:
            await outbox.send(2 * item)


async def collect(inbox: Channel[int], into: list[int]) -> None:
    async for item in inbox:
        into.append(item)


async def test_stages_run_top_to_bottom() -> None:
    pipe = Pipeline()
    numbers, doubled = pipe.channel("numbers", 2), pipe.channel("doubled", 2)
    out: list[int] = []
    pipe.stage("produce", produce, numbers, 50)
    pipe.stage("double", double, numbers, doubled)
    pipe.stage("collect", collect, doubled, out)
    await pipe.run()
    assert out == [2 * i for i in range(50)]
    assert pipe.stage_names == ["produce", "double", "collect"]


async def test_first_error_names_the_stage_and_chains_the_cause() -> None:
    async def explode(inbox: Channel[int]) -> None:
        await inbox.receive()
        raise ZeroDivisionError("bad item")

    pipe = Pipeline()
    numbers = pipe.channel("numbers", 1)
    pipe.stage("produce", produce, numbers, 1000)
    pipe.stage("explode", explode, numbers)
    with pytest.raises(StageFailed) as caught:
        await asyncio.wait_for(pipe.run(), 10)
    assert caught.value.stage == "explode"
    assert isinstance(caught.value.__cause__, ZeroDivisionError)
    assert "explode" in str(caught.value)


async def test_failure_while_a_producer_is_blocked_on_a_full_channel_does_not_hang() -> None:
    producer_blocked = asyncio.Event()
    channel_seen: list[Channel[int]] = []

    async def stuck_producer(outbox: Channel[int]) -> None:
        channel_seen.append(outbox)
        async with outbox:
            await outbox.send(0)
            producer_blocked.set()
            await outbox.send(1)  # full: blocks until cancelled

    async def failing_consumer(inbox: Channel[int]) -> None:
        await producer_blocked.wait()
        raise RuntimeError("consumer died")

    pipe = Pipeline()
    numbers = pipe.channel("numbers", 1)
    pipe.stage("producer", stuck_producer, numbers)
    pipe.stage("consumer", failing_consumer, numbers)
    with pytest.raises(StageFailed) as caught:
        await asyncio.wait_for(pipe.run(), 10)
    assert caught.value.stage == "consumer"
    assert channel_seen[0].closed


async def test_cancelling_the_caller_cancels_every_stage() -> None:
    started = asyncio.Event()
    cancelled: list[str] = []

    async def forever(name: str) -> None:
        try:
            started.set()
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(name)
            raise

    pipe = Pipeline()
    pipe.stage("a", forever, "a")
    pipe.stage("b", forever, "b")
    task = asyncio.create_task(pipe.run())
    await started.wait()
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(cancelled) == ["a", "b"]


def test_stage_names_are_unique() -> None:
    pipe = Pipeline()
    pipe.stage("a", produce, Channel(1), 1)
    with pytest.raises(ValueError, match="already has a stage"):
        pipe.stage("a", produce, Channel(1), 1)
