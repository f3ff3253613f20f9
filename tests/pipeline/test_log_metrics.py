"""Prometheus metrics of the log consumer: scraped over HTTP while real producers send lines."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Metric
from prometheus_client.parser import text_string_to_metric_families

import stages.events  # noqa: F401  (registers the tuning's kinds, as the command line does)
from pipeline.errors import InputError
from pipeline.logs.address import parse_metrics
from pipeline.logs.metrics import LogMetrics
from pipeline.logs.server import LogServerOptions, run_log_server, serve_logs
from tests.pipeline.log_servers import HANG_GUARD, Server, close, running_server, send, wait_until

ROOT = Path(__file__).resolve().parents[2]

Series = dict[tuple[str, str], float]
"""``(sample name, its label's value or "")`` to value; ``_created`` samples left out."""

KINDS = (
    "run_started",
    "stage_progress",
    "unit_done",
    "candidate_scored",
    "new_best",
    "run_finished",
    "run_failed",
    "log",
    "other",
)


def flatten(families: Iterable[Metric]) -> Series:
    series: Series = {}
    for family in families:
        assert family.name.startswith("knnp_logs_") and family.documentation, family
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            assert len(sample.labels) <= 1, sample
            key = (sample.name, next(iter(sample.labels.values()), ""))
            series[key] = sample.value
    return series


def zeros() -> Series:
    """Every series a consumer serves before anything arrives."""
    series: Series = {("knnp_logs_events_total", kind): 0.0 for kind in KINDS}
    series[("knnp_logs_lines_rejected_total", "bad")] = 0.0
    series[("knnp_logs_lines_rejected_total", "oversized")] = 0.0
    series[("knnp_logs_runs_in_progress", "")] = 0.0
    series[("knnp_logs_connections_open", "")] = 0.0
    return series


def with_values(**changes: float) -> Series:
    """``zeros()`` with ``events_KIND``, ``bad``, ``oversized``, ``in_progress``, ``open``."""
    series = zeros()
    for name, value in changes.items():
        if name.startswith("events_"):
            series[("knnp_logs_events_total", name.removeprefix("events_"))] = value
        elif name in ("bad", "oversized"):
            series[("knnp_logs_lines_rejected_total", name)] = value
        elif name == "in_progress":
            series[("knnp_logs_runs_in_progress", "")] = value
        else:
            assert name == "open", name
            series[("knnp_logs_connections_open", "")] = value
    return series


def per_run(run_id: str, *, done: float, planned: float, best: float | None = None) -> Series:
    series = {
        ("knnp_logs_run_units_done", run_id): done,
        ("knnp_logs_run_units_planned", run_id): planned,
    }
    if best is not None:
        series[("knnp_logs_run_best_score", run_id)] = best
    return series


def registry_series(registry: CollectorRegistry) -> Series:
    return flatten(registry.collect())


def scrape_text(address: tuple[str, int]) -> str:
    url = f"http://{address[0]}:{address[1]}/metrics"
    with urllib.request.urlopen(url, timeout=HANG_GUARD) as response:
        return str(response.read().decode("utf-8"))


async def scrape(address: tuple[str, int]) -> Series:
    text = await asyncio.to_thread(scrape_text, address)
    return flatten(text_string_to_metric_families(text))


async def scrape_when(address: tuple[str, int], ready: Callable[[Series], bool]) -> Series:
    """Scrape until ``ready(series)`` holds (the consumer has read what was sent)."""

    async def poll() -> Series:
        while not ready(series := await scrape(address)):
            await asyncio.sleep(0.01)
        return series

    return await asyncio.wait_for(poll(), HANG_GUARD)


def lines_counted(series: Series) -> float:
    """Lines the consumer has accepted or rejected so far."""
    return sum(
        value
        for (name, _), value in series.items()
        if name in ("knnp_logs_events_total", "knnp_logs_lines_rejected_total")
    )


def line(obj: object) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def event(kind: str, run_id: str, **fields: Any) -> bytes:
    return line({"v": 1, "kind": kind, "ts": 1_700_000_000.5, "run_id": run_id, **fields})


async def connect(port: int) -> asyncio.StreamWriter:
    _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), HANG_GUARD)
    return writer


def refuses(address: tuple[str, int]) -> bool:
    with socket.socket() as sock:
        try:
            sock.connect(address)
        except ConnectionRefusedError:
            return True
    return False


@contextlib.asynccontextmanager
async def with_metrics(
    out: Path, metrics: tuple[str, int] = ("127.0.0.1", 0), **kw: Any
) -> AsyncIterator[tuple[Server, tuple[str, int]]]:
    """A consumer serving metrics; yields it and the metrics' bound address."""
    bound: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
    async with running_server(out, metrics=metrics, metrics_ready=bound.set_result, **kw) as server:
        yield server, await asyncio.wait_for(bound, HANG_GUARD)


async def test_every_metric_has_its_exact_value(tmp_path: Path) -> None:
    oversized = line({"pad": "x" * 2000})
    first = [
        event("run_started", "r1", job="knn-tuning", params={}, units_total=4, workers=2),
        event("stage_progress", "r1", stage="load", done=1, total=1, channel_depths={}),
        event("unit_done", "r1", unit="fold 0", seconds=0.1, done=1, total=4),
        event("new_best", "r1", params={"k": 1}, mean_score=0.8, folds_done=1),
        b"this is not json\n",
        event("unit_done", "r1", unit="fold 1", seconds=0.1, done=2, total=4),
        event("candidate_scored", "r1", params={}, fold="0", score=1, folds_done=1),
        event("new_best", "r1", params={"k": 3}, mean_score=0.9, folds_done=2),
        oversized,
        event("log", "r1", level="INFO", logger="x", message="m", pid=1),
        b"[1, 2, 3]\n",
        event("run_finished", "r1", seconds=1.0, best={"k": 3}, best_score=0.95, candidates=2),
    ]
    second = [
        event("run_started", "r2", job="knn-tuning", params={}, units_total=6, workers=2),
        event("unit_done", "r2", unit="fold 0", seconds=0.1, done=3, total=6),
        event("new_best", "r2", params={"k": 5}, mean_score=-0.25, folds_done=1),
        line({"kind": "mystery", "run_id": "r2"}),
        line({"no": "kind"}),
        b'{"a": NaN}\n',
        b"\n   \n",  # blank lines: neither accepted nor rejected
    ]
    third = [
        event("run_started", "r3", job="knn-predict", params={}, units_total=1, workers=1),
        event("run_failed", "r3", error="interrupted", stage=None, interrupted=True),
    ]
    counted = len(first) + len(second) - 1 + len(third)

    async with with_metrics(tmp_path / "log.jsonl", max_line_bytes=1024) as (server, address):
        assert await scrape(address) == zeros()
        writers = [await connect(server.port) for _ in range(3)]
        for writer, lines in zip(writers, (first, second, third), strict=True):
            await send(writer, *lines)
        series = await scrape_when(address, lambda s: lines_counted(s) == counted)

        expected = {
            **with_values(
                events_run_started=3,
                events_stage_progress=1,
                events_unit_done=3,
                events_candidate_scored=1,
                events_new_best=3,
                events_run_finished=1,
                events_run_failed=1,
                events_log=1,
                events_other=2,
                bad=3,
                oversized=1,
                in_progress=1,
                open=3,
            ),
            **per_run("r1", done=2, planned=4, best=0.95),
            **per_run("r2", done=3, planned=6, best=-0.25),
            **per_run("r3", done=0, planned=1),
        }
        assert series == expected

        await close(writers[0])
        await close(writers[1])
        series = await scrape_when(address, lambda s: s[("knnp_logs_connections_open", "")] == 1)
        assert series == {**expected, ("knnp_logs_connections_open", ""): 1}

        await close(writers[2])
        series = await scrape_when(address, lambda s: s[("knnp_logs_connections_open", "")] == 0)
        assert series == {**expected, ("knnp_logs_connections_open", ""): 0}
        stats = await server.finish()

    assert (stats.accepted, stats.rejected, stats.oversized) == (16, 3, 1)


async def test_refused_connections_are_not_counted_as_open(tmp_path: Path) -> None:
    async with with_metrics(tmp_path / "log.jsonl", max_connections=1) as (server, address):
        producer = await connect(server.port)
        await send(producer, event("log", "r", level="INFO", logger="x", message="m", pid=1))
        await scrape_when(address, lambda s: lines_counted(s) == 1)
        reader, extra = await asyncio.open_connection("127.0.0.1", server.port)
        with contextlib.suppress(ConnectionError):  # closed at once: one over the limit
            assert await asyncio.wait_for(reader.read(), HANG_GUARD) == b""
        await close(extra)
        await send(producer, event("log", "r", level="INFO", logger="x", message="m", pid=1))
        series = await scrape_when(address, lambda s: lines_counted(s) == 2)
        assert series == with_values(events_log=2, open=1)
        await close(producer)
        stats = await server.finish()
    assert (stats.connections, stats.refused) == (1, 1)


async def test_two_consumers_in_one_process_count_apart(tmp_path: Path) -> None:
    async with (
        with_metrics(tmp_path / "a.jsonl") as (server_a, address_a),
        with_metrics(tmp_path / "b.jsonl") as (server_b, address_b),
    ):
        writer_a, writer_b = await connect(server_a.port), await connect(server_b.port)
        await send(writer_a, event("run_started", "only-a", units_total=2))
        await send(writer_b, b"not json\n", b"nor this\n")
        series_a = await scrape_when(address_a, lambda s: lines_counted(s) == 1)
        series_b = await scrape_when(address_b, lambda s: lines_counted(s) == 2)
        assert series_a == {
            **with_values(events_run_started=1, in_progress=1, open=1),
            **per_run("only-a", done=0, planned=2),
        }
        assert series_b == with_values(bad=2, open=1)
        await close(writer_a)
        await close(writer_b)


async def test_metrics_bind_loopback_by_default(tmp_path: Path) -> None:
    async with with_metrics(tmp_path / "log.jsonl", metrics=parse_metrics("0")) as (_, address):
        assert address[0] == "127.0.0.1" and address[1] > 0
        assert await scrape(address) == zeros()


async def test_a_busy_metrics_port_is_one_clear_input_error(tmp_path: Path) -> None:
    writers_before = sum(t.name == "log-writer" for t in threading.enumerate())
    with socket.socket() as busy, socket.socket() as spare:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        spare.bind(("127.0.0.1", 0))
        log_port = spare.getsockname()[1]
        spare.close()
        with pytest.raises(InputError) as caught:
            await serve_logs(
                LogServerOptions(
                    host="127.0.0.1",
                    port=log_port,
                    out=str(tmp_path / "log.jsonl"),
                    report=io.StringIO(),
                    metrics=("127.0.0.1", port),
                )
            )
    message = str(caught.value)
    assert message.startswith(f"--metrics 127.0.0.1:{port}: cannot serve metrics there (")
    assert message.endswith("choose a free port or stop the program using it")
    assert "\n" not in message
    assert refuses(("127.0.0.1", log_port))  # the consumer never listened
    await wait_until(
        lambda: sum(t.name == "log-writer" for t in threading.enumerate()) == writers_before
    )


def test_run_log_server_with_a_busy_metrics_port_raises_input_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(InputError, match=rf"^--metrics 127\.0\.0\.1:{port}: cannot serve"):
            run_log_server(
                LogServerOptions(
                    host="127.0.0.1",
                    port=0,
                    out=str(tmp_path / "log.jsonl"),
                    report=io.StringIO(),
                    metrics=("127.0.0.1", port),
                )
            )


async def test_stopping_the_consumer_frees_the_metrics_port(tmp_path: Path) -> None:
    out = tmp_path / "log.jsonl"
    async with with_metrics(out) as (server, address):
        writer = await connect(server.port)
        await send(writer, event("run_started", "r1", units_total=3))
        await scrape_when(address, lambda s: lines_counted(s) == 1)
        await close(writer)
        await server.finish()
        assert refuses(address)

    # The same port again, in the same process: served afresh, nothing carried over.
    async with with_metrics(out, metrics=address) as (server, again):
        assert again == address
        assert await scrape(again) == zeros()
    assert refuses(address)


async def test_cancelling_the_consumer_frees_the_metrics_port(tmp_path: Path) -> None:
    async with with_metrics(tmp_path / "log.jsonl") as (server, address):
        assert await scrape(address) == zeros()
        server.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(server.task, HANG_GUARD)
        assert refuses(address)


async def test_without_prometheus_client_metrics_are_an_input_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pipeline.logs.metrics", None)
    with pytest.raises(InputError, match=r"^--metrics: needs prometheus_client .*\[metrics\]"):
        await serve_logs(
            LogServerOptions(
                host="127.0.0.1",
                port=0,
                out=str(tmp_path / "log.jsonl"),
                report=io.StringIO(),
                metrics=("127.0.0.1", 0),
            )
        )


def printed_by(script: str, *args: str) -> Any:
    """The JSON that ``script`` prints, run in a fresh interpreter (nothing imported yet)."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_without_metrics_prometheus_client_is_never_imported(tmp_path: Path) -> None:
    script = (
        "import asyncio, json, sys\n"
        "from pipeline.logs.server import LogServerOptions, serve_logs\n"
        "async def main():\n"
        "    stop = asyncio.Event()\n"
        "    bound = asyncio.get_running_loop().create_future()\n"
        "    options = LogServerOptions(host='127.0.0.1', port=0, out=sys.argv[1],"
        " ready=bound.set_result)\n"
        "    task = asyncio.create_task(serve_logs(options, stop=stop))\n"
        "    host, port = await bound\n"
        "    _, writer = await asyncio.open_connection(host, port)\n"
        '    writer.write(b\'{"kind": "log", "run_id": "r"}\\nnot json\\n\')\n'
        "    await writer.drain()\n"
        "    writer.close()\n"
        "    while not open(sys.argv[1]).read():\n"
        "        await asyncio.sleep(0.01)\n"
        "    stop.set()\n"
        "    stats = await task\n"
        "    print(json.dumps([stats.accepted, stats.rejected,"
        " sorted(m for m in sys.modules if 'prometheus' in m or m == 'pipeline.logs.metrics')]))\n"
        "asyncio.run(main())\n"
    )
    assert printed_by(script, str(tmp_path / "log.jsonl")) == [1, 1, []]


# LogMetrics on its own: what it makes of untrusted, repeated and endless records.


def record(kind: object, run_id: object, **fields: Any) -> dict[str, Any]:
    return {"v": 1, "kind": kind, "ts": 1.0, "run_id": run_id, **fields}


def test_only_the_last_finished_runs_keep_their_series() -> None:
    metrics = LogMetrics(keep_finished=2)
    for run_id in ("a", "b", "c"):
        metrics.accepted(record("run_started", run_id, units_total=2))
        metrics.accepted(record("unit_done", run_id, done=2, total=2))
        metrics.accepted(record("new_best", run_id, mean_score=0.5))
    metrics.accepted(record("run_finished", "b", best_score=0.75))
    metrics.accepted(record("run_failed", "a", error="x", stage=None, interrupted=False))
    assert registry_series(metrics.registry) == {
        **with_values(events_run_started=3, events_unit_done=3, events_new_best=3),
        ("knnp_logs_events_total", "run_finished"): 1,
        ("knnp_logs_events_total", "run_failed"): 1,
        ("knnp_logs_runs_in_progress", ""): 1,
        **per_run("a", done=2, planned=2, best=0.5),
        **per_run("b", done=2, planned=2, best=0.75),
        **per_run("c", done=2, planned=2, best=0.5),
    }
    metrics.accepted(record("run_finished", "c", best_score=None))  # the third to finish
    series = registry_series(metrics.registry)
    assert series[("knnp_logs_runs_in_progress", "")] == 0
    assert {key for key in series if key[1] in ("a", "b", "c")} == {
        *per_run("a", done=2, planned=2, best=0.5),
        *per_run("c", done=2, planned=2, best=0.5),  # best_score null: the last new_best
    }


def test_unfinished_runs_beyond_the_limit_are_forgotten() -> None:
    metrics = LogMetrics(max_live_runs=2)
    metrics.accepted(record("run_started", "a", units_total=1))
    metrics.accepted(record("run_started", "b", units_total=1))
    metrics.accepted(record("log", "a", level="INFO", logger="x", message="m", pid=1))
    metrics.accepted(record("unit_done", "c", done=1, total=5))  # no run_started seen
    series = registry_series(metrics.registry)
    assert series[("knnp_logs_runs_in_progress", "")] == 1  # b, heard from least, is gone
    assert {key: value for key, value in series.items() if key[1] in ("a", "b", "c")} == {
        **per_run("a", done=0, planned=1),
        **per_run("c", done=1, planned=5),
    }
    metrics.accepted(record("run_finished", "a", best_score=None))
    metrics.accepted(record("run_finished", "c", best_score=1.0))
    assert registry_series(metrics.registry)[("knnp_logs_runs_in_progress", "")] == 0


def test_repeated_records_count_once_in_the_run() -> None:
    metrics = LogMetrics()
    start = record("run_started", "r", units_total=4)
    for _ in range(2):  # a batch delivered twice
        metrics.accepted(start)
        metrics.accepted(record("unit_done", "r", done=1, total=4))
        metrics.accepted(record("unit_done", "r", done=3, total=4))
    metrics.accepted(record("unit_done", "r", done=2, total=4))  # an older count, late
    series = registry_series(metrics.registry)
    assert series[("knnp_logs_runs_in_progress", "")] == 1
    assert series[("knnp_logs_run_units_done", "r")] == 3
    assert series[("knnp_logs_events_total", "unit_done")] == 5
    for _ in range(2):
        metrics.accepted(record("run_finished", "r", best_score=0.5))
    assert registry_series(metrics.registry)[("knnp_logs_runs_in_progress", "")] == 0

    metrics.accepted(start)  # the same run started over
    metrics.accepted(record("unit_done", "r", done=1, total=4))
    series = registry_series(metrics.registry)
    assert series[("knnp_logs_runs_in_progress", "")] == 1
    assert series[("knnp_logs_run_units_done", "r")] == 1


def test_fields_of_the_wrong_shape_are_ignored() -> None:
    metrics = LogMetrics()
    for kind in (42, None, "other", "Run_Started", ["run_started"]):
        metrics.accepted(record(kind, "r"))
    metrics.accepted({"run_id": "r"})
    for run_id in (7, None, "", "x" * 65, {"id": 1}):
        metrics.accepted(record("run_started", run_id, units_total=3))
    for count in ("3", True, -1, 2.5, 2**53, 10**400, None):
        metrics.accepted(record("unit_done", "r", done=count, total=count))
    for score in ("0.5", True, 10**400, None, [0.5]):
        metrics.accepted(record("new_best", "r", mean_score=score))
    metrics.accepted(record("run_started", "y" * 64, units_total=10**400))
    assert registry_series(metrics.registry) == {
        **with_values(events_other=6, events_run_started=6, events_unit_done=7),
        ("knnp_logs_events_total", "new_best"): 5,
        ("knnp_logs_runs_in_progress", ""): 1,  # the 64-character id
    }


def test_the_metrics_read_a_new_leader_without_the_jobs_events() -> None:
    """The framework's metrics import no job: ``new_best`` is read by its kind on the wire,
    while a job kind that was never registered (``candidate_scored``) is ``other``."""
    script = (
        "import json, sys\n"
        "from pipeline.logs.metrics import LogMetrics\n"
        "metrics = LogMetrics()\n"
        "for kind in ('run_started', 'new_best', 'candidate_scored'):\n"
        "    metrics.accepted({'kind': kind, 'run_id': 'r', 'units_total': 2, 'mean_score': 0.5})\n"
        "value = metrics.registry.get_sample_value\n"
        "print(json.dumps([\n"
        "    sorted(m for m in sys.modules if m.split('.')[0] == 'stages'),\n"
        "    value('knnp_logs_run_best_score', {'run_id': 'r'}),\n"
        "    [value('knnp_logs_events_total', {'kind': k}) for k in ('new_best', 'other')],\n"
        "    value('knnp_logs_events_total', {'kind': 'candidate_scored'}),\n"
        "]))\n"
    )
    assert printed_by(script) == [[], 0.5, [1.0, 1.0], None]


def test_limits_must_make_sense() -> None:
    with pytest.raises(ValueError, match="keep_finished"):
        LogMetrics(keep_finished=-1)
    with pytest.raises(ValueError, match="max_live_runs"):
        LogMetrics(max_live_runs=0)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_logs_command_serves_metrics_until_it_stops(tmp_path: Path) -> None:
    import signal
    import time

    port = free_port()
    command = [sys.executable, "-m", "pipeline", "logs", "--listen", "127.0.0.1:0"]
    process = subprocess.Popen(
        [*command, "--out", str(tmp_path / "out.jsonl"), "--metrics", str(port)],
        cwd=Path(__file__).resolve().parents[2],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        said = {process.stderr.readline().strip() for _ in range(2)}
        assert f"serving metrics on http://127.0.0.1:{port}/metrics" in said, said
        deadline = time.monotonic() + 30
        while True:
            try:
                text = scrape_text(("127.0.0.1", port))
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert flatten(text_string_to_metric_families(text)) == zeros()
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
        assert refuses(("127.0.0.1", port))
    finally:
        process.kill()
        process.wait()


def test_the_logs_command_on_a_busy_metrics_port_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from stages.cli import main

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["logs", "--listen", "127.0.0.1:0", "--metrics", f":{port}"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: --metrics 127.0.0.1:{port}: "), lines
