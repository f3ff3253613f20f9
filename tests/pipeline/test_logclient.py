"""Resilient sender against a real consumer on loopback: absent, restarted, overflowing."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import socket
from pathlib import Path
from typing import Any

import pytest

from pipeline.logs.client import TcpLineSender
from tests.pipeline.log_servers import HANG_GUARD, running_server, wait_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def read_ids(path: Path) -> list[Any]:
    if not path.exists():
        return []
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


def other_tasks() -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}


@pytest.mark.asyncio
async def test_records_reach_the_consumer(tmp_path: Path) -> None:
    out = tmp_path / "log.jsonl"
    async with running_server(out) as server:
        sender = TcpLineSender("127.0.0.1", server.port)
        await sender.start()
        for i in range(20):
            sender.send_nowait({"id": i, "score": 0.5})
        stats = await asyncio.wait_for(sender.aclose(timeout=HANG_GUARD), HANG_GUARD)
        await wait_until(lambda: len(read_ids(out)) >= 20)

    assert read_ids(out) == list(range(20))
    assert out.read_text().splitlines()[0] == '{"id":0,"score":0.5}'
    assert (stats.sent, stats.dropped, stats.undelivered) == (20, 0, 0)
    assert stats.connected_ever
    assert stats.reconnects == 0


@pytest.mark.asyncio
async def test_consumer_started_late_gets_everything(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pipeline.logs.client")
    out = tmp_path / "log.jsonl"
    port = free_port()
    sender = TcpLineSender("127.0.0.1", port, max_backoff=0.1, initial_backoff=0.01)
    await sender.start()
    for i in range(10):
        sender.send_nowait({"id": i})
    await wait_until(lambda: caplog.text.count("cannot connect") >= 2)
    assert not sender.stats.connected_ever

    async with running_server(out, port=port):
        stats = await asyncio.wait_for(sender.aclose(timeout=HANG_GUARD), HANG_GUARD)
        await wait_until(lambda: len(read_ids(out)) >= 10)

    assert read_ids(out) == list(range(10))
    assert (stats.sent, stats.undelivered) == (10, 0)
    assert stats.connected_ever


@pytest.mark.asyncio
async def test_consumer_restart_mid_stream_loses_nothing(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    loop_errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: loop_errors.append(context))
    out = tmp_path / "log.jsonl"
    total = 300

    async with running_server(out) as first:
        port = first.port
        sender = TcpLineSender("127.0.0.1", port, max_backoff=0.1, initial_backoff=0.01)
        await sender.start()

        async def produce() -> None:
            for i in range(total):
                sender.send_nowait({"id": i})
                await asyncio.sleep(0.001)

        producing = asyncio.create_task(produce())
        await wait_until(lambda: len(read_ids(out)) >= 30)
        await first.finish()

    async with running_server(out, port=port):
        await asyncio.wait_for(producing, HANG_GUARD)
        stats = await asyncio.wait_for(sender.aclose(timeout=HANG_GUARD), HANG_GUARD)
        await wait_until(lambda: set(read_ids(out)) >= set(range(total)))

    assert set(read_ids(out)) == set(range(total))
    assert stats.undelivered == 0
    assert stats.dropped == 0
    assert stats.reconnects >= 1
    assert stats.sent >= total
    assert not other_tasks()
    gc.collect()
    assert loop_errors == []


@pytest.mark.asyncio
async def test_full_buffer_drops_the_oldest(tmp_path: Path) -> None:
    out = tmp_path / "log.jsonl"
    async with running_server(out) as server:
        sender = TcpLineSender("127.0.0.1", server.port, buffer_limit=5)
        for i in range(8):
            sender.send_nowait({"id": i})
        assert (sender.stats.dropped, sender.stats.undelivered) == (3, 5)

        await sender.start()
        stats = await asyncio.wait_for(sender.aclose(timeout=HANG_GUARD), HANG_GUARD)
        await wait_until(lambda: len(read_ids(out)) >= 5)

    assert read_ids(out) == [3, 4, 5, 6, 7]
    assert (stats.sent, stats.dropped, stats.undelivered) == (5, 3, 0)


@pytest.mark.asyncio
async def test_aclose_without_consumer_reports_undelivered() -> None:
    sender = TcpLineSender("127.0.0.1", free_port(), max_backoff=0.05, initial_backoff=0.01)
    await sender.start()
    for i in range(3):
        sender.send_nowait({"id": i})
    stats = await asyncio.wait_for(sender.aclose(timeout=0.2), HANG_GUARD)

    assert (stats.sent, stats.undelivered, stats.dropped) == (0, 3, 0)
    assert not stats.connected_ever
    assert not other_tasks()

    sender.send_nowait({"id": "late"})
    assert sender.stats.dropped == 1


@pytest.mark.asyncio
async def test_cancelled_aclose_leaves_no_task_behind() -> None:
    sender = TcpLineSender("127.0.0.1", free_port(), initial_backoff=0.01)
    await sender.start()
    sender.send_nowait({"id": 1})
    closing = asyncio.create_task(sender.aclose(timeout=HANG_GUARD))
    await asyncio.sleep(0)
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(closing, HANG_GUARD)
    assert not other_tasks()
    assert sender.stats.undelivered == 1


@pytest.mark.asyncio
async def test_context_manager_flushes(tmp_path: Path) -> None:
    out = tmp_path / "log.jsonl"
    async with running_server(out) as server:
        async with TcpLineSender("127.0.0.1", server.port) as sender:
            sender.send_nowait({"id": "ctx"})
        await wait_until(lambda: len(read_ids(out)) >= 1)
    assert read_ids(out) == ["ctx"]


def test_unserialisable_record_is_the_callers_bug() -> None:
    sender = TcpLineSender("127.0.0.1", 1)
    with pytest.raises(TypeError):
        sender.send_nowait({"id": object()})
    assert sender.stats.undelivered == 0
