"""The event stream of a run: schema, subscribers, sinks, worker logs, the CLI options."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from pipeline.compute import ComputePool
from pipeline.events import SCHEMA_VERSION, Event, Subscription, schema
from pipeline.logs.server import LogServerOptions, serve_logs
from pipeline.sinks import run_sink, write_jsonl
from stages import Tuning
from stages.progress import show_progress
from tests import workers

ROOT = Path(__file__).resolve().parents[1]
JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "null": (type(None),),
}


def assert_valid(record: dict[str, Any]) -> None:
    """``record`` has exactly the documented fields of its kind, with their JSON types."""
    fields = schema()[record["kind"]]
    assert set(record) == set(fields), record
    assert record["v"] == SCHEMA_VERSION
    for name, json_type in fields.items():
        allowed = tuple(t for part in json_type.split(" or ") for t in JSON_TYPES[part])
        assert isinstance(record[name], allowed), (record["kind"], name, record[name])


def test_the_schema_in_the_readme_is_the_schema_in_the_code() -> None:
    readme = (ROOT / "README.md").read_text()
    common = ("v", "kind", "run_id", "ts")
    for kind, fields in schema().items():
        for name, json_type in fields.items():
            row = (
                f"| every event | `{name}` | {json_type} |"
                if name in common
                else (f"| `{kind}` | `{name}` | {json_type} |")
            )
            assert row in readme, (kind, name)


def test_cli_events_file_validates_and_ends_with_run_finished(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "run",
            "--k",
            "1-7",
            "--weights",
            "uniform,distance",
            "--events",
            str(events),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in events.read_text().splitlines()]
    for record in records:
        assert_valid(record)
    kinds = [r["kind"] for r in records]
    assert kinds[-1] == "run_finished"
    assert {"run_started", "stage_progress", "unit_done", "candidate_scored", "new_best"} <= set(
        kinds
    )
    assert len({r["run_id"] for r in records}) == 1
    assert kinds.count("candidate_scored") == 7 * 4 * 2 * 5  # every candidate, every fold
    assert records[-1]["best"] is not None
    stages_reporting = {r["stage"] for r in records if r["kind"] == "stage_progress"}
    assert stages_reporting == {"load", "partition", "plan", "neighbours", "score", "rank"}
    # Not a terminal: plain progress lines on stderr, ending at 100%.
    assert "progress: 20/20 units (100%)" in done.stderr


async def unit_logs(tuning: Tuning) -> list[Event]:
    async with tuning.subscribe() as events:
        task = asyncio.create_task(tuning.run())
        logs = [e async for e in events if e.kind == "log"]
        await task
    for event in logs:
        assert_valid(json.loads(json.dumps(event.to_dict())))
    return [e for e in logs if e.logger == "stages.neighbours"]  # type: ignore[attr-defined]


async def test_worker_log_records_arrive_as_log_events() -> None:
    async with ComputePool(workers=2, log_level=logging.DEBUG) as pool:
        await pool.run(os.getpid)  # the workers are up: every unit runs on them
        worker_logs = await unit_logs(Tuning("iris", k="1-3", pool=pool, log_level=logging.DEBUG))
    assert len(worker_logs) == 20  # one per unit: 5 folds x 4 metrics
    assert all(e.pid != os.getpid() for e in worker_logs)  # type: ignore[attr-defined]


async def test_units_run_here_while_the_workers_start_with_the_same_results(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from stages import neighbours

    async with ComputePool(workers=2) as pool:
        await pool.run(os.getpid)
        warm = await Tuning("wine", k="1-9", weights="uniform,distance", pool=pool).run()
    monkeypatch.setattr("pipeline.compute._ready", workers.slow_ready)  # a second to start
    caplog.set_level(logging.DEBUG, logger="stages.neighbours")  # this process's records
    tuning = Tuning("wine", k="1-9", weights="uniform,distance", workers=2, log_level=logging.DEBUG)
    logs = await unit_logs(tuning)
    cold = tuning.result()
    assert len(logs) == 20  # every unit logs once, wherever it ran
    assert any(e.pid == os.getpid() for e in logs)  # type: ignore[attr-defined]
    assert [(c.candidate, c.fold_scores) for c in cold.candidates] == [
        (c.candidate, c.fold_scores) for c in warm.candidates
    ]
    assert not neighbours._training_cache, "no run's training rows stay in this process"


async def test_many_subscribers_see_the_same_results() -> None:
    tuning = Tuning("wine", k="1-5", executor=ThreadPoolExecutor(2))

    async def results(events: Subscription) -> list[dict[str, Any]]:
        async with events:
            return [e.to_dict() async for e in events if e.kind == "candidate_scored"]

    subscribers = [asyncio.create_task(results(tuning.subscribe())) for _ in range(3)]
    await tuning.run()
    first, second, third = await asyncio.gather(*subscribers)
    assert first == second == third and len(first) == 5 * 4 * 5


async def test_a_stalled_subscriber_loses_progress_but_not_results_and_never_blocks() -> None:
    tuning = Tuning("wine", k="1-5", executor=ThreadPoolExecutor(2))
    stalled = tuning.subscribe(limit=5)
    result = await tuning.run()  # nobody reads `stalled` while it runs
    received: list[Event] = [e async for e in stalled]
    assert len(result.candidates) == 20
    assert stalled.dropped > 0
    kinds = [e.kind for e in received]
    assert kinds.count("candidate_scored") == 20 * 5
    assert kinds[-1] == "run_finished"


async def test_a_subscriber_that_raises_does_not_break_the_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tuning = Tuning("iris", k="1-3", executor=ThreadPoolExecutor(2))

    async def broken(events: Subscription) -> None:
        async for _ in events:
            raise RuntimeError("subscriber bug")

    watcher = asyncio.create_task(run_sink("broken", broken, tuning.subscribe()))
    result = await tuning.run()
    await watcher
    assert result.complete and len(result.candidates) == 12
    assert "subscriber bug" in caplog.text


async def test_jsonl_sink_and_live_progress_consume_a_whole_run(tmp_path: Path) -> None:
    tuning = Tuning("iris", k="1-3", executor=ThreadPoolExecutor(2))
    screen = io.StringIO()
    path = tmp_path / "events.jsonl"
    sinks = asyncio.gather(
        run_sink("file", write_jsonl(path), tuning.subscribe()),
        run_sink("bar", lambda e: show_progress(e, screen, live=True), tuning.subscribe()),
    )
    await tuning.run()
    written, _ = await sinks
    lines = path.read_text().splitlines()
    assert written == len(lines) > 0
    assert json.loads(lines[-1])["kind"] == "run_finished"


async def test_cli_streams_every_event_to_a_log_consumer(tmp_path: Path) -> None:
    received = tmp_path / "received.jsonl"
    events_file = tmp_path / "events.jsonl"
    stop = asyncio.Event()
    bound: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
    options = LogServerOptions(
        host="127.0.0.1", port=0, out=str(received), ready=bound.set_result, report=io.StringIO()
    )
    server = asyncio.create_task(serve_logs(options, stop=stop))
    host, port = await bound
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pipeline",
        "run",
        "--quiet",
        "--k",
        "1-5",
        "--log-to",
        f"tcp://{host}:{port}",
        "--events",
        str(events_file),
        cwd=ROOT,
        stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
    )
    _, stderr = await proc.communicate()
    assert proc.returncode == 0, stderr.decode()
    stop.set()
    stats = await server
    sent = events_file.read_text().splitlines()
    got = received.read_text().splitlines()
    assert stats.accepted == len(sent)
    assert [json.loads(line) for line in got] == [json.loads(line) for line in sent]


def test_cli_goes_on_without_a_consumer_and_says_what_was_lost() -> None:
    import socket

    with socket.socket() as probe:  # a port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "run",
            "--quiet",
            "--k",
            "1-3",
            "--log-to",
            f"tcp://127.0.0.1:{port}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "undelivered (consumer unreachable)" in done.stderr
    assert "k-NN leaderboard" in done.stdout


@pytest.mark.parametrize("target", ["127.0.0.1:1", "tcp://nohostport", "udp://127.0.0.1:5"])
def test_a_bad_log_target_is_refused_with_exit_2(target: str) -> None:
    from stages.cli import main

    assert main(["run", "--log-to", target]) == 2


def test_events_of_a_leave_one_out_run_are_all_in_the_file(tmp_path: Path) -> None:
    """A fold's candidates are announced in one burst (thousands of events per unit under
    leave-one-out): the file still holds every event, progress included."""
    events = tmp_path / "events.jsonl"
    command = [sys.executable, "-m", "pipeline", "run", "--cv", "loo", "--quiet"]
    done = subprocess.run(
        [*command, "--events", str(events)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in events.read_text().splitlines()]
    kinds = [r["kind"] for r in records]
    planned = next(r["units_total"] for r in records if r["kind"] == "run_started")
    assert kinds[-1] == "run_finished"
    assert kinds.count("unit_done") == planned
    assert kinds.count("candidate_scored") == 80 * 150  # every candidate, every row's fold
    assert records[-1]["events_dropped"] == 0
