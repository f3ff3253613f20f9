from __future__ import annotations

import asyncio
import json
import math
from types import MappingProxyType

import numpy as np
import pytest

from pipeline.events import EventBus, Log, RunFinished, StageProgress, event_types
from pipeline.json_lines import json_line
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


def test_an_event_s_json_line_is_its_dict_as_json_keys_in_order() -> None:
    """Written straight from the record, the line says what :meth:`to_dict` says, in the
    same key order, for every kind, NaN as null, any mapping as an object."""
    examples = {
        "stage_progress": progress(EventBus("r1"), 2),
        "new_best": NewBest(
            run_id="r1", params=MappingProxyType({"k": 3}), mean_score=math.nan, folds_done=1
        ),
        "run_finished": RunFinished(
            run_id="r1", seconds=1.5, best={"k": 1}, best_score=None, candidates=4
        ),
    }
    for kind in event_types():
        if kind.kind in examples:
            event = examples[kind.kind]
            line = event.json_line()
            assert line.endswith(b"\n") and line.count(b"\n") == 1
            parsed = json.loads(line)
            expected = json.loads(json.dumps(event.to_dict()))
            assert parsed == expected and list(parsed) == list(expected)
    assert json.loads(examples["new_best"].json_line())["mean_score"] is None


def test_json_lines_take_numpy_numbers_and_other_keys_and_refuse_the_rest() -> None:
    record = {"a": np.float64(0.25), "b": np.int32(7), 3: [np.bool_(True)], "c": {"x": 1}}
    assert json.loads(json_line(record)) == {"a": 0.25, "b": 7, "3": [True], "c": {"x": 1}}
    assert json.loads(json_line({"v": math.inf, "w": math.nan})) == {"v": None, "w": None}
    with pytest.raises(TypeError, match="ndarray is not JSON serializable"):
        json_line({"a": np.zeros(2)})
    with pytest.raises(TypeError, match="object is not JSON serializable"):
        json_line({"a": object()})


async def test_ready_hands_over_every_waiting_event_in_order_without_dropped_ones() -> None:
    bus = EventBus()
    sub = bus.subscribe(limit=3)
    steps = [progress(bus, i) for i in range(3)]
    for event in steps:
        bus.emit(event)
    best = NewBest(run_id=bus.run_id, params={"k": 1}, mean_score=0.5, folds_done=1)
    bus.emit(best)  # full: the oldest progress event makes room
    assert await sub.__anext__() is steps[1]
    waiting = sub.ready()
    assert len(waiting) == 2 and waiting[0] is steps[2] and waiting[1] is best
    assert sub.ready() == []
    bus.close()
    assert [e async for e in sub] == [] and sub.dropped == 1


def test_a_string_orjson_refuses_is_written_escaped_by_the_json_module() -> None:
    """Linux hands Python a file name that is not UTF-8 with lone surrogates in it."""
    name = "data_caf\udce9.csv"
    event = Log(run_id="r1", level="INFO", logger="x", message=f"reading {name}", pid=1)
    assert json.loads(event.json_line())["message"] == f"reading {name}"
    line = json_line({"data": name, "best": math.inf, "scores": [math.nan, 0.5]})
    assert line.endswith(b"\n") and line.isascii()
    assert json.loads(line) == {"data": name, "best": None, "scores": [None, 0.5]}


def test_to_dict_writes_numbers_json_lacks_as_null_numpy_ones_too() -> None:
    event = NewBest(run_id="r1", params={"k": 1}, mean_score=np.float64("nan"), folds_done=1)
    assert event.to_dict()["mean_score"] is None
    finished = RunFinished(run_id="r1", seconds=math.inf, best=None, best_score=None, candidates=0)
    assert finished.to_dict()["seconds"] is None


async def test_ready_hands_over_at_most_its_limit() -> None:
    bus = EventBus()
    sub = bus.subscribe()
    results = [
        NewBest(run_id=bus.run_id, params={"k": k}, mean_score=0.5, folds_done=1) for k in range(5)
    ]
    for event in results:
        bus.emit(event)
    assert sub.ready(2) == results[:2]
    assert sub.ready() == results[2:]
