from __future__ import annotations

import asyncio

import pytest

from pipeline.channel import Channel, ChannelClosed, EndOfStream


async def test_items_arrive_in_order_and_iteration_ends_on_close() -> None:
    channel: Channel[int] = Channel(4)

    async def produce() -> None:
        async with channel:
            for i in range(10):
                await channel.send(i)

    task = asyncio.create_task(produce())
    received = [item async for item in channel]
    await task
    assert received == list(range(10))


async def test_none_is_ordinary_data_not_a_stop_signal() -> None:
    channel: Channel[object] = Channel(4)
    await channel.send(None)
    await channel.send(0)
    channel.close()
    assert [item async for item in channel] == [None, 0]


async def test_a_full_channel_makes_the_producer_wait() -> None:
    channel: Channel[int] = Channel(2)
    await channel.send(1)
    await channel.send(2)
    blocked = asyncio.create_task(channel.send(3))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert not blocked.done()
    assert channel.depth() == 2
    assert await channel.receive() == 1
    await asyncio.wait_for(blocked, 5)
    assert channel.depth() == 2


async def test_close_never_blocks_even_when_full() -> None:
    channel: Channel[int] = Channel(1)
    await channel.send(1)
    channel.close()
    assert channel.closed
    assert await channel.receive() == 1
    with pytest.raises(EndOfStream):
        await channel.receive()


async def test_send_after_close_raises() -> None:
    channel: Channel[int] = Channel(1)
    channel.close()
    with pytest.raises(ChannelClosed):
        await channel.send(1)


async def test_every_receiver_sees_the_end() -> None:
    channel: Channel[int] = Channel(8)
    for i in range(6):
        await channel.send(i)
    channel.close()

    async def drain() -> list[int]:
        return [item async for item in channel]

    first, second = await asyncio.wait_for(asyncio.gather(drain(), drain()), 5)
    assert sorted(first + second) == list(range(6))


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity"):
        Channel(0)
