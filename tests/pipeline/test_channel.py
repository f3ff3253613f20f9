"""Channels: bounded, two ends with their own open counts, ended by their senders."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.channel import BrokenResourceError, Channel, ClosedResourceError, EndOfStream


async def test_items_arrive_in_order_and_iteration_ends_when_the_sender_closes() -> None:
    channel: Channel[int] = Channel(4)

    async def produce() -> None:
        async with channel.sender:
            for i in range(10):
                await channel.sender.send(i)

    task = asyncio.create_task(produce())
    received = [item async for item in channel.receiver]
    await task
    assert received == list(range(10))
    assert channel.closed


async def test_none_is_ordinary_data_not_a_stop_signal() -> None:
    channel: Channel[object] = Channel(4)
    await channel.sender.send(None)
    await channel.sender.send(0)
    channel.sender.close()
    assert [item async for item in channel.receiver] == [None, 0]


async def test_a_full_channel_makes_the_producer_wait() -> None:
    channel: Channel[int] = Channel(2)
    await channel.sender.send(1)
    await channel.sender.send(2)
    blocked = asyncio.create_task(channel.sender.send(3))
    for _ in range(3):
        await asyncio.sleep(0)
    assert not blocked.done()
    assert channel.depth() == 2
    assert await channel.receiver.receive() == 1
    await asyncio.wait_for(blocked, 5)
    assert channel.depth() == 2


async def test_closing_the_sender_never_blocks_even_when_full() -> None:
    channel: Channel[int] = Channel(1)
    await channel.sender.send(1)
    channel.sender.close()
    assert channel.closed
    assert await channel.receiver.receive() == 1
    with pytest.raises(EndOfStream):
        await channel.receiver.receive()


async def test_send_on_a_closed_end_raises() -> None:
    channel: Channel[int] = Channel(1)
    channel.sender.close()
    with pytest.raises(ClosedResourceError):
        await channel.sender.send(1)


async def test_a_receiver_that_leaves_wakes_a_sender_blocked_on_a_full_channel() -> None:
    channel: Channel[int] = Channel(1)
    await channel.sender.send(0)
    blocked = asyncio.create_task(channel.sender.send(1))
    await asyncio.sleep(0.01)
    channel.receiver.close()
    with pytest.raises(BrokenResourceError):
        await asyncio.wait_for(blocked, 5)


async def test_the_stream_ends_only_when_every_sender_clone_is_closed() -> None:
    channel: Channel[int] = Channel(8)
    first, second = channel.sender, channel.sender.clone()
    await first.send(1)
    first.close()
    await second.send(2)
    assert not channel.closed
    second.close()
    assert [item async for item in channel.receiver] == [1, 2]


async def test_every_receiver_clone_shares_the_items_and_sees_the_end() -> None:
    channel: Channel[int] = Channel(8)
    for i in range(6):
        await channel.sender.send(i)
    channel.sender.close()
    other = channel.receiver.clone()

    async def drain(receiver: object) -> list[int]:
        return [item async for item in receiver]  # type: ignore[attr-defined]

    first, second = await asyncio.wait_for(asyncio.gather(drain(channel.receiver), drain(other)), 5)
    assert sorted(first + second) == list(range(6))


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity"):
        Channel(0)


def test_the_repr_names_the_channel_and_its_depth() -> None:
    channel: Channel[int] = Channel(3, name="numbers")
    assert repr(channel) == "<Channel 'numbers' open depth=0/3>"
    channel.close()
