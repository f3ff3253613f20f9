from __future__ import annotations

import asyncio

import pytest

from pipeline.channel import Receiver, Sender
from pipeline.runner import Pipeline, StageFailed


async def produce(outbox: Sender[int], count: int) -> None:
    async with outbox:
        for i in range(count):
            await outbox.send(i)


async def double(inbox: Receiver[int], outbox: Sender[int]) -> None:
    async with outbox:
        async for item in inbox:
            await outbox.send(2 * item)


async def collect(inbox: Receiver[int], into: list[int]) -> None:
    async for item in inbox:
        into.append(item)


async def test_stages_run_top_to_bottom() -> None:
    pipe = Pipeline()
    numbers, doubled = pipe.channel("numbers", 2), pipe.channel("doubled", 2)
    out: list[int] = []
    pipe.stage("produce", produce, numbers.sender, 50)
    pipe.stage("double", double, numbers.receiver, doubled.sender)
    pipe.stage("collect", collect, doubled.receiver, out)
    await pipe.run()
    assert out == [2 * i for i in range(50)]
    assert pipe.stage_names == ["produce", "double", "collect"]


async def test_first_error_names_the_stage_and_chains_the_cause() -> None:
    async def explode(inbox: Receiver[int]) -> None:
        await inbox.receive()
        raise ZeroDivisionError("bad item")

    pipe = Pipeline()
    numbers = pipe.channel("numbers", 1)
    pipe.stage("produce", produce, numbers.sender, 1000)
    pipe.stage("explode", explode, numbers.receiver)
    with pytest.raises(StageFailed) as caught:
        await asyncio.wait_for(pipe.run(), 10)
    assert caught.value.stage == "explode"
    assert isinstance(caught.value.__cause__, ZeroDivisionError)
    assert "explode" in str(caught.value)


async def test_failure_while_a_producer_is_blocked_on_a_full_channel_does_not_hang() -> None:
    producer_blocked = asyncio.Event()

    async def stuck_producer(outbox: Sender[int]) -> None:
        async with outbox:
            await outbox.send(0)
            producer_blocked.set()
            await outbox.send(1)  # full: blocks until cancelled

    async def failing_consumer(inbox: Receiver[int]) -> None:
        await producer_blocked.wait()
        raise RuntimeError("consumer died")

    pipe = Pipeline()
    numbers = pipe.channel("numbers", 1)
    pipe.stage("producer", stuck_producer, numbers.sender)
    pipe.stage("consumer", failing_consumer, numbers.receiver)
    with pytest.raises(StageFailed) as caught:
        await asyncio.wait_for(pipe.run(), 10)
    assert caught.value.stage == "consumer"
    assert numbers.closed


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
    numbers = pipe.channel("numbers")
    pipe.stage("a", produce, numbers.sender, 1)
    with pytest.raises(ValueError, match="already has a stage"):
        pipe.stage("a", produce, numbers.sender, 1)


def test_a_stage_is_given_an_end_not_the_channel() -> None:
    pipe = Pipeline()
    numbers = pipe.channel("numbers")
    with pytest.raises(TypeError, match=r"numbers\.sender or numbers\.receiver"):
        pipe.stage("a", produce, numbers, 1)


async def test_a_consumer_that_leaves_early_stops_its_producer_quietly() -> None:
    """The consumer returns after three items: the producer, blocked on the full
    channel, is woken by the departure and ends without failing the run."""
    produced: list[int] = []

    async def endless(outbox: Sender[int]) -> None:
        for i in range(10**9):
            await outbox.send(i)
            produced.append(i)

    async def take_three(inbox: Receiver[int], into: list[int]) -> None:
        async for item in inbox:
            into.append(item)
            if len(into) == 3:
                return

    pipe = Pipeline()
    numbers = pipe.channel("numbers", 2)
    taken: list[int] = []
    pipe.stage("produce", endless, numbers.sender)
    pipe.stage("take", take_three, numbers.receiver, taken)
    await asyncio.wait_for(pipe.run(), 10)
    assert taken == [0, 1, 2]
    assert len(produced) < 10


async def test_a_stage_that_returns_without_closing_its_outbox_still_ends_the_stream() -> None:
    async def forgetful(outbox: Sender[int]) -> None:
        await outbox.send(7)  # no ``async with``: the runner closes the end

    pipe = Pipeline()
    numbers = pipe.channel("numbers", 1)
    out: list[int] = []
    pipe.stage("produce", forgetful, numbers.sender)
    pipe.stage("collect", collect, numbers.receiver, out)
    await asyncio.wait_for(pipe.run(), 10)
    assert out == [7]


async def test_a_producer_that_fails_while_the_channel_is_full_ends_the_run() -> None:
    filled = asyncio.Event()

    async def fill_then_fail(outbox: Sender[int]) -> None:
        await outbox.send(0)
        await outbox.send(1)
        filled.set()
        raise OSError("disk gone")

    async def slow(inbox: Receiver[int], into: list[int]) -> None:
        await filled.wait()
        async for item in inbox:
            into.append(item)

    pipe = Pipeline()
    numbers = pipe.channel("numbers", 2)
    out: list[int] = []
    pipe.stage("produce", fill_then_fail, numbers.sender)
    pipe.stage("consume", slow, numbers.receiver, out)
    with pytest.raises(StageFailed) as caught:
        await asyncio.wait_for(pipe.run(), 10)
    assert caught.value.stage == "produce"
    assert isinstance(caught.value.__cause__, OSError)


async def test_cancelled_from_outside_every_end_is_closed() -> None:
    """Cancelling the run closes every stage's ends: nothing stays open to leak."""
    started = asyncio.Event()

    async def wait_forever(inbox: Receiver[int]) -> None:
        started.set()
        async for _ in inbox:
            pass

    async def send_forever(outbox: Sender[int]) -> None:
        while True:
            await outbox.send(1)

    pipe = Pipeline()
    numbers = pipe.channel("numbers", 1)
    pipe.stage("produce", send_forever, numbers.sender)
    pipe.stage("consume", wait_forever, numbers.receiver)
    task = asyncio.create_task(pipe.run())
    await started.wait()
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    stats = numbers.sender.statistics()
    assert (stats.open_send_streams, stats.open_receive_streams) == (0, 0)
