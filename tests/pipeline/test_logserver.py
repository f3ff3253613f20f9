"""Log consumer over real loopback sockets: what lands in the file, what is refused, and why."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

import pipeline.logs.server as log_server
from pipeline.logs.server import LineSplitter, LogServerOptions, encode_record, serve_logs
from tests.pipeline.log_servers import HANG_GUARD, close, running_server, send, wait_until

ROOT = Path(__file__).resolve().parents[2]


def read_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


async def wait_for_records(path: Path, count: int) -> list[dict[str, Any]]:
    await wait_until(lambda: len(read_records(path)) >= count)
    return read_records(path)


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), HANG_GUARD)


def line(obj: object) -> bytes:
    return json.dumps(obj).encode() + b"\n"


@pytest.mark.asyncio
async def test_records_arrive_as_compact_json_lines(tmp_path: Path) -> None:
    out = tmp_path / "log.jsonl"
    records = [{"id": 1, "msg": "h\u00e9llo"}, {"id": 2, "nested": {"a": [1, 2]}}]
    async with running_server(out) as server:
        _, writer = await connect(server.port)
        await send(writer, line(records[0]), b"\n   \n", line(records[1]))
        await wait_for_records(out, 2)
        await close(writer)
        stats = await server.finish()

    expected = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
    assert out.read_text() == expected
    assert (stats.connections, stats.accepted, stats.rejected) == (1, 2, 0)


@pytest.mark.asyncio
async def test_output_is_appended_not_truncated(tmp_path: Path) -> None:
    out = tmp_path / "log.jsonl"
    out.write_text('{"old":true}\n')
    async with running_server(out) as server:
        _, writer = await connect(server.port)
        await send(writer, line({"new": True}))
        await wait_for_records(out, 2)
        await close(writer)
    assert read_records(out) == [{"old": True}, {"new": True}]


@pytest.mark.asyncio
async def test_concurrent_producers_all_arrive(tmp_path: Path) -> None:
    out = tmp_path / "log.jsonl"

    async def produce(port: int, producer: int) -> None:
        _, writer = await connect(port)
        for i in range(50):
            await send(writer, line({"producer": producer, "i": i}))
        await close(writer)

    async with running_server(out) as server:
        await asyncio.gather(*(produce(server.port, p) for p in range(5)))
        records = await wait_for_records(out, 250)
        stats = await server.finish()

    assert sorted((r["producer"], r["i"]) for r in records) == [
        (p, i) for p in range(5) for i in range(50)
    ]
    assert (stats.connections, stats.accepted) == (5, 250)
    for p in range(5):
        mine = [r["i"] for r in records if r["producer"] == p]
        assert mine == sorted(mine)


@pytest.mark.asyncio
async def test_hundreds_of_open_connections(tmp_path: Path) -> None:
    out = tmp_path / "log.jsonl"
    async with running_server(out) as server:
        writers = []
        for i in range(300):
            _, writer = await connect(server.port)
            await send(writer, line({"id": i}))
            writers.append(writer)
        records = await wait_for_records(out, 300)
        await asyncio.gather(*(close(writer) for writer in writers))
        stats = await server.finish()

    assert sorted(r["id"] for r in records) == list(range(300))
    assert (stats.connections, stats.accepted, stats.refused) == (300, 300, 0)


@pytest.mark.asyncio
async def test_bad_lines_are_counted_and_the_connection_survives(tmp_path: Path) -> None:
    out = tmp_path / "log.jsonl"
    huge = b'{"pad":"' + b"x" * (100 * 1024) + b'"}\n'
    async with running_server(out, max_line_bytes=1024) as server:
        _, writer = await connect(server.port)
        await send(
            writer,
            b"this is not json\n",
            b"\xff\xfe\x00\x81binary\n",
            b"[1, 2, 3]\n",
            b"42\n",
            b'"just a string"\n',
        )
        for start in range(0, len(huge), 7000):
            await send(writer, huge[start : start + 7000])
        await send(writer, line({"id": "after"}))
        assert await wait_for_records(out, 1) == [{"id": "after"}]

        await send(writer, line({"id": "still open"}))
        await wait_for_records(out, 2)
        await close(writer)
        stats = await server.finish()

    assert read_records(out) == [{"id": "after"}, {"id": "still open"}]
    assert (stats.accepted, stats.rejected, stats.oversized) == (2, 5, 1)
    assert "accepted=2 rejected=5 oversized=1" in server.report.getvalue()


@pytest.mark.asyncio
async def test_unterminated_last_line(tmp_path: Path) -> None:
    out = tmp_path / "log.jsonl"
    async with running_server(out, max_line_bytes=1024) as server:
        for tail in (b'{"id":"tail"}', b'{"id": "cut', b"x" * 4096):
            _, writer = await connect(server.port)
            await send(writer, tail)
            await close(writer)
        await wait_until(lambda: server.report.getvalue().count("disconnected") == 3)
        stats = await server.finish()

    assert read_records(out) == [{"id": "tail"}]
    assert (stats.accepted, stats.rejected, stats.oversized) == (1, 1, 1)


@pytest.mark.asyncio
async def test_idle_connection_is_closed(tmp_path: Path) -> None:
    out = tmp_path / "log.jsonl"
    async with running_server(out, idle_timeout=0.2) as server:
        reader, writer = await connect(server.port)
        await send(writer, line({"id": 1}))
        assert await asyncio.wait_for(reader.read(), HANG_GUARD) == b""
        await close(writer)
        stats = await server.finish()

    assert read_records(out) == [{"id": 1}]
    assert stats.timed_out == 1
    assert "(idle timeout)" in server.report.getvalue()


@pytest.mark.asyncio
async def test_connections_over_the_limit_are_refused(tmp_path: Path) -> None:
    out = tmp_path / "log.jsonl"
    async with running_server(out, max_connections=2) as server:
        writers = []
        for i in range(2):
            _, writer = await connect(server.port)
            await send(writer, line({"id": i}))
            writers.append(writer)
        await wait_for_records(out, 2)

        reader, extra = await connect(server.port)
        with contextlib.suppress(ConnectionError):
            assert await asyncio.wait_for(reader.read(), HANG_GUARD) == b""
        extra.close()

        await send(writers[0], line({"id": "later"}))
        await wait_for_records(out, 3)
        for writer in writers:
            await close(writer)
        stats = await server.finish()

    assert (stats.connections, stats.refused, stats.accepted) == (2, 1, 3)


@pytest.mark.asyncio
async def test_stop_writes_everything_already_sent(tmp_path: Path) -> None:
    out = tmp_path / "log.jsonl"
    sent = [{"id": i, "payload": "p" * (i % 50)} for i in range(300)]
    async with running_server(out) as server:
        _, writer = await connect(server.port)
        idle_reader, idle_writer = await connect(server.port)
        await send(writer, line(sent[0]))
        await wait_for_records(out, 1)
        await send(writer, *(line(r) for r in sent[1:]))

        stats = await server.finish()
        assert await asyncio.wait_for(idle_reader.read(), HANG_GUARD) == b""
        await close(writer)
        await close(idle_writer)

    assert read_records(out) == sent
    assert (stats.connections, stats.accepted, stats.timed_out) == (2, 300, 0)
    assert "logs: total: connections=2 accepted=300" in server.report.getvalue()


@pytest.mark.asyncio
async def test_cancelling_the_server_still_shuts_down_in_order(tmp_path: Path) -> None:
    out = tmp_path / "log.jsonl"
    async with running_server(out) as server:
        _, writer = await connect(server.port)
        await send(writer, line({"id": 1}))
        await wait_for_records(out, 1)
        server.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(server.task, HANG_GUARD)
        await close(writer)
    assert "logs: total: connections=1 accepted=1" in server.report.getvalue()


@pytest.mark.asyncio
async def test_stdout_output(capsys: pytest.CaptureFixture[str]) -> None:
    async with running_server("-") as server:
        _, writer = await connect(server.port)
        await send(writer, line({"to": "stdout"}))
        await close(writer)
        await wait_until(lambda: "disconnected" in server.report.getvalue())
    assert capsys.readouterr().out == '{"to":"stdout"}\n'


@pytest.mark.asyncio
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_run_log_server_stops_on_signal(tmp_path: Path, sig: signal.Signals) -> None:
    out = tmp_path / "log.jsonl"
    script = (
        "import sys\n"
        "from pipeline.logs.server import LogServerOptions, run_log_server\n"
        "sys.exit(run_log_server(LogServerOptions(host='127.0.0.1', port=0, out=sys.argv[1],"
        " ready=lambda addr: print(addr[1], flush=True))))\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        str(out),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        port_line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert port_line.strip().isdigit(), port_line
        _, writer = await connect(int(port_line))
        sent = [{"id": i} for i in range(100)]
        await send(writer, line(sent[0]))
        await wait_for_records(out, 1)
        await send(writer, *(line(r) for r in sent[1:]))

        proc.send_signal(sig)
        _, stderr = await asyncio.wait_for(proc.communicate(), 30)
        await close(writer)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

    assert proc.returncode == 0, stderr.decode()
    assert read_records(out) == sent
    assert "logs: total: connections=1 accepted=100" in stderr.decode()


def test_line_splitter_handles_chunk_boundaries() -> None:
    splitter = LineSplitter(8)
    assert splitter.feed(b"ab") == []
    assert splitter.feed(b"c\nde") == [b"abc"]
    assert splitter.feed(b"f\n\n12345678\n") == [b"def", b"", b"12345678"]
    assert splitter.feed(b"123456789\nok\n") == [None, b"ok"]
    assert splitter.feed(b"tail") == []
    assert splitter.finish() == [b"tail"]
    assert splitter.finish() == []


def test_line_splitter_never_holds_an_oversized_line() -> None:
    splitter = LineSplitter(1024)
    for _ in range(100):
        assert splitter.feed(b"x" * 1000) == []
        assert splitter.buffered <= 1024
    assert splitter.feed(b"xx\n{}\n") == [None, b"{}"]
    assert splitter.feed(b"y" * 2000) == []
    assert splitter.buffered == 0
    assert splitter.finish() == [None]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{ "a" : 1 }', b'{"a":1}\n'),
        (b'{"s":"\xc3\xa9"}\r', b'{"s":"\\u00e9"}\n'),
        (b"[1]", None),
        (b"null", None),
        (b"\xff{}", None),
        (b'{"a":1} trailing', None),
        (b"[" * 100_000 + b"]" * 100_000, None),
        ('{"a":1}'.encode("utf-16"), None),
    ],
)
def test_encode_record(raw: bytes, expected: bytes | None) -> None:
    assert encode_record(raw) == expected


@pytest.mark.parametrize(
    "raw", [b'{"a": NaN}', b'{"a": Infinity}', b'{"a": -Infinity}', b'{"a": 1e400}']
)
def test_what_is_not_strict_json_is_rejected(raw: bytes) -> None:
    assert encode_record(raw) is None
    assert encode_record(b'{"a": 1e300}') == b'{"a":1e+300}\n'


class _NeverReadStream:
    """A report stream like a pipe nobody reads: every write blocks (until released)."""

    def __init__(self) -> None:
        import threading

        self.release = threading.Event()

    def write(self, text: str) -> int:
        self.release.wait()
        return len(text)

    def flush(self) -> None:
        self.release.wait()


async def test_a_report_stream_nobody_reads_does_not_stop_the_consumer(tmp_path: Path) -> None:
    out = tmp_path / "log.jsonl"
    stalled = _NeverReadStream()
    bound: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    options = LogServerOptions(
        host="127.0.0.1",
        port=0,
        out=str(out),
        ready=bound.set_result,
        report=stalled,  # type: ignore[arg-type]
    )
    task = asyncio.create_task(serve_logs(options, stop=stop))
    port = (await asyncio.wait_for(bound, HANG_GUARD))[1]
    for i in range(300):  # each connection reports a line when it ends
        _, writer = await connect(port)
        await send(writer, line({"id": i}))
        await close(writer)
    records = await wait_for_records(out, 300)
    stop.set()
    stats = await asyncio.wait_for(task, HANG_GUARD)
    stalled.release.set()
    assert sorted(r["id"] for r in records) == list(range(300))
    assert stats.written == 300


async def test_unfinished_lines_are_capped_across_connections(tmp_path: Path) -> None:
    out = tmp_path / "log.jsonl"
    async with running_server(out, max_buffered_bytes=2_000) as server:
        writers = []
        for size in (600, 900, 700):  # 2,200 bytes held in all: over the cap
            _, writer = await connect(server.port)
            writer.write(b"x" * size)
            await writer.drain()
            writers.append(writer)
            await asyncio.sleep(0.05)
        _, producer = await connect(server.port)
        await send(producer, line({"id": "real"}))
        await wait_for_records(out, 1)
        await close(producer)
        for writer in writers:
            writer.close()
        stats = await server.finish()
    assert stats.evicted == 1  # the 900-byte one
    assert stats.accepted == 1


async def test_idle_connections_make_room_for_a_producer(tmp_path: Path) -> None:
    out = tmp_path / "log.jsonl"
    async with running_server(out, max_connections=4, first_line_timeout=60) as server:
        idle = [await connect(server.port) for _ in range(4)]
        await asyncio.sleep(1.1)  # idle long enough to be closed for a newcomer
        _, producer = await connect(server.port)
        await send(producer, line({"id": "real"}))
        records = await wait_for_records(out, 1)
        await close(producer)
        for _, writer in idle:
            writer.close()
        stats = await server.finish()
    assert records == [{"id": "real"}]
    assert (stats.evicted, stats.refused) == (1, 0)


async def test_a_connection_without_a_first_line_is_closed_soon(tmp_path: Path) -> None:
    out = tmp_path / "log.jsonl"
    async with running_server(out, first_line_timeout=0.3) as server:
        reader, writer = await connect(server.port)
        writer.write(b"{")  # a byte, never a line
        await writer.drain()
        with contextlib.suppress(ConnectionError):
            assert await asyncio.wait_for(reader.read(), HANG_GUARD) == b""
        writer.close()
        stats = await server.finish()
    assert stats.timed_out == 1


async def test_a_full_output_is_reported_and_nothing_counted_as_written() -> None:
    async with running_server("/dev/full") as server:
        _, writer = await connect(server.port)
        await send(writer, line({"id": 1}))
        await close(writer)
        await wait_until(lambda: "disconnected" in server.report.getvalue())
        stats = await server.finish()
    assert (stats.accepted, stats.written) == (1, 0)
    assert stats.write_error == "No space left on device"
    assert "--out /dev/full: writing failed (No space left on device)" in server.report.getvalue()


def test_an_output_that_cannot_be_opened_names_the_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from stages.cli import main

    assert main(["logs", "--listen", "127.0.0.1:0", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"--out {tmp_path}" in err and "listen" not in err


async def test_many_producers_wait_for_a_slow_output_and_all_arrive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The output's buffer fills: every waiting connection resumes once it drains."""
    out = tmp_path / "log.jsonl"
    monkeypatch.setattr(log_server, "_SINK_BUFFER_BYTES", 64)  # a few records fill it
    async with running_server(out) as server:
        writers = [(await connect(server.port))[1] for _ in range(20)]
        for i, writer in enumerate(writers):
            await send(writer, *(line({"producer": i, "n": n}) for n in range(20)))
        records = await wait_for_records(out, 400)
        for writer in writers:
            await close(writer)
        stats = await server.finish()
    assert len(records) == 400 and stats.written == 400


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"max_line_bytes": 0}, "max_line_bytes"),
        ({"idle_timeout": 0.0}, "idle_timeout"),
        ({"max_connections": 0}, "max_connections"),
    ],
)
def test_options_that_make_no_sense_are_refused_when_made(
    change: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        LogServerOptions(out="-", **change)
