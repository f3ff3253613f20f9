"""A log consumer running in the test's own event loop, and helpers to wait on it."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.logs.server import LogServerOptions, LogServerStats, serve_logs

HANG_GUARD = 10.0
"""Seconds after which a test that waits is stuck (a guard, not a timing claim)."""


@dataclass
class Server:
    port: int
    stop: asyncio.Event
    task: asyncio.Task[LogServerStats]
    report: io.StringIO

    async def finish(self) -> LogServerStats:
        self.stop.set()
        return await asyncio.wait_for(self.task, HANG_GUARD)


@contextlib.asynccontextmanager
async def running_server(out: Path | str, port: int = 0, **kw: Any) -> AsyncIterator[Server]:
    """``serve_logs`` on 127.0.0.1 (an ephemeral port unless given), stopped on exit;
    ``kw`` are further :class:`LogServerOptions`."""
    bound: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    report = io.StringIO()
    options = LogServerOptions(
        host="127.0.0.1", port=port, out=str(out), ready=bound.set_result, report=report, **kw
    )
    task = asyncio.create_task(serve_logs(options, stop=stop))
    first: set[asyncio.Future[Any]] = {bound, task}
    await asyncio.wait(first, timeout=HANG_GUARD, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    server = Server(bound.result()[1], stop, task, report)
    try:
        yield server
    finally:
        if not task.done():
            await server.finish()


async def wait_until(condition: Callable[[], bool]) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), HANG_GUARD)


async def send(writer: asyncio.StreamWriter, *lines: bytes) -> None:
    writer.write(b"".join(lines))
    await writer.drain()


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
