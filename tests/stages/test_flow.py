"""The stages' stream protocol: a stream begins with its plan, once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from pipeline.channel import Channel
from stages import Dataset, Tuning, score
from stages.flow import RankStage, score_stage


async def test_a_stream_that_ends_before_its_plan_ends_the_stage_quietly() -> None:
    inbox: Channel[object] = Channel(1)
    outbox: Channel[object] = Channel(1)
    inbox.sender.close()
    await score_stage(inbox.receiver, outbox.sender)  # type: ignore[arg-type]
    assert outbox.closed
    assert [item async for item in outbox.receiver] == []
    rank = RankStage()
    empty: Channel[object] = Channel(1)
    empty.sender.close()
    await rank(empty.receiver)  # type: ignore[arg-type]
    assert rank.ranked() == [] and rank.plan is None


async def test_a_stream_that_does_not_begin_with_its_plan_is_refused() -> None:
    inbox: Channel[object] = Channel(2)
    await inbox.sender.send("not a plan")
    inbox.sender.close()
    with pytest.raises(TypeError, match="must begin with its Plan, not str"):
        await RankStage()(inbox.receiver)  # type: ignore[arg-type]


async def test_the_scoring_runs_beside_the_event_loop_not_on_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Completing a fold sorts its vote shares: done on the loop's own thread it would
    hold up every other task of the application for that long."""
    loop_thread = threading.get_ident()
    threads: list[int] = []
    add = score.Scoreboard.add

    def recording(board: score.Scoreboard, output: object) -> list[score.FoldScores]:
        threads.append(threading.get_ident())
        return add(board, output)  # type: ignore[arg-type]

    monkeypatch.setattr(score.Scoreboard, "add", recording)
    with ThreadPoolExecutor(2) as executor:
        result = await Tuning("iris", k="1-3", executor=executor).run()
    assert result.complete and len(result.candidates) == 12
    assert len(threads) >= 5 and loop_thread not in threads


@pytest.mark.parametrize(("n_classes", "dtype"), [(3, np.uint8), (300, np.uint16)])
async def test_units_send_their_predictions_in_the_smallest_type_that_holds_the_classes(
    monkeypatch: pytest.MonkeyPatch, n_classes: int, dtype: type
) -> None:
    """Every unit's output crosses a pipe: a byte per prediction where one is enough."""
    seen: list[np.dtype[Any]] = []
    add = score.Scoreboard.add

    def recording(board: score.Scoreboard, output: Any) -> list[score.FoldScores]:
        seen.append(output.predictions.dtype)
        return add(board, output)

    monkeypatch.setattr(score.Scoreboard, "add", recording)
    rng = np.random.default_rng(2)
    y = np.arange(2 * n_classes) % n_classes
    classes = [f"c{c}" for c in range(n_classes)]
    data = Dataset(X=rng.random((y.size, 3)), y=y, classes=classes, source="many classes")
    with ThreadPoolExecutor(2) as executor:
        result = await Tuning(data, k="1-2", cv="kfold:2", executor=executor).run()
    assert result.complete and seen and set(seen) == {np.dtype(dtype)}


def test_only_small_units_with_small_training_sets_may_run_in_the_owner() -> None:
    from types import SimpleNamespace

    from stages.flow import TRAINING_HERE, WORK_HERE, _small_here
    from stages.plan import MASKED, WorkUnit

    def plan(rows: int, features: int, train: int) -> Any:
        folds = SimpleNamespace(folds=[SimpleNamespace(train=np.zeros(train))])
        return SimpleNamespace(dataset=SimpleNamespace(rows=rows, features=features), folds=folds)

    def unit(rows: int, fold: int = 0) -> WorkUnit:
        return WorkUnit(0, "euclidean", fold, 0, rows)

    assert _small_here(plan(5_000, 16, 4_000), unit(1_000))  # bench S's units
    assert not _small_here(plan(5_000, 16, 4_000), unit(WORK_HERE // (16 * 4_000) + 1))
    wide = TRAINING_HERE // 8 + 1
    assert not _small_here(plan(10, 8, wide), unit(1))  # one row, but a large training set
    assert _small_here(plan(2_000, 8, 10), unit(1, MASKED))  # masked: every row trains
    assert not _small_here(plan(TRAINING_HERE, 2, 10), unit(1, MASKED))
