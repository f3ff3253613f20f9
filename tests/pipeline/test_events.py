from __future__ import annotations

import asyncio
import json

import pytest

from pipeline.events import EventBus, RunFinished, StageProgress
from stages.events import NewBest


def progress(bus: EventBus, done: int) -> StageProgress:
    return StageProgress(run_id=bus.run_id, stage="s", done=done, total=10, channel_depths={"c": 1})


async def test_every_subscriber_gets_every_event_as_json() -> None:
    bus = EventBus()
    first, second = bus.subscribe(), bus.subscribe()
    bus.emit(progress(bus, 1))
    bus.emit(NewBest(run_id=bus.run_id, params={"k": 3}, mean_score=0.9, folds_done=1))
    bus.close()
    got_first = [e async for e in first]
    got_second = [e async for e in second]
    assert [e.kind for e in got_first] == ["stage_progress", "new_best"]
    assert got_first == got_second
    record = json.loads(json.dumps(got_first[1].to_dict()))
    assert record["kind"] == "new_best" and record["run_id"] == bus.run_id
    assert record["params"] == {"k": 3} and isinstance(record["ts"], float)


async def test_a_slow_subscriber_drops_progress_but_never_results() -> None:
    bus = EventBus()
    slow = bus.subscribe(limit=3)
    for i in range(10):
        bus.emit(progress(bus, i))
    finished = RunFinished(run_id=bus.run_id, seconds=1.0, best=None, best_score=None, candidates=0)
    bus.emit(finished)
    bus.close()
    got = [e async for e in slow]
    assert got[-1] == finished
    assert slow.dropped == 10 - (len(got) - 1)
    assert len(got) <= 4


async def test_subscribers_wait_for_events() -> None:
    bus = EventBus()
    sub = bus.subscribe()

    async def read() -> list[str]:
        return [e.kind async for e in sub]

    reader = asyncio.create_task(read())
    await asyncio.sleep(0)
    bus.emit(progress(bus, 1))
    bus.close()
    assert await asyncio.wait_for(reader, 5) == ["stage_progress"]


async def test_a_malformed_log_call_does_not_reach_the_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Arguments that do not fit the format: logging's own error report, no exception."""
    import logging

    from pipeline.events import EventBus, EventLogHandler

    bus = EventBus()
    events = bus.subscribe()
    handler = EventLogHandler(bus, asyncio.get_running_loop(), logging.INFO)
    reported: list[logging.LogRecord] = []
    monkeypatch.setattr(handler, "handleError", reported.append)
    record = logging.LogRecord("stages", logging.WARNING, __file__, 1, "%d rows", ("x",), None)
    handler.emit(record)  # must not raise
    handler.emit(logging.LogRecord("stages", logging.WARNING, __file__, 2, "fine", (), None))
    bus.close()
    received = [event async for event in events]
    assert reported == [record]
    assert [event.message for event in received if event.kind == "log"] == ["fine"]


async def test_a_full_buffer_drops_the_oldest_progress_first_and_keeps_the_order() -> None:
    """Room for a result is made from the oldest progress event queued, at any depth."""
    bus = EventBus()
    sub = bus.subscribe(limit=4)
    for i in range(3):
        bus.emit(progress(bus, i))
    results = [
        NewBest(run_id=bus.run_id, params={"k": k}, mean_score=0.5, folds_done=1)
        for k in range(2000)
    ]
    for event in results[:2]:
        bus.emit(event)
    bus.emit(progress(bus, 3))  # full: a progress event arriving now is dropped itself
    for event in results[2:]:
        bus.emit(event)
    bus.close()
    got = [e async for e in sub]
    assert got == results  # every progress event made room, or was dropped itself
    assert sub.dropped == 4 and len(got) == 2000
