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


def _scored(result: Any) -> str:
    """A run's results JSON without what differs between equal runs; NaN spelled out."""
    import json

    document = result.to_dict()
    document.pop("timing")
    document.pop("workers", None)
    return json.dumps(document, sort_keys=True)


def recorded_outputs(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every unit output the scoreboard is given, in order, from now on."""
    outputs: list[Any] = []
    add = score.Scoreboard.add

    def recording(board: score.Scoreboard, output: Any) -> list[score.FoldScores]:
        outputs.append(output)
        return add(board, output)

    monkeypatch.setattr(score.Scoreboard, "add", recording)
    return outputs


def _without_log_loss(scored: str) -> str:
    import json

    document = json.loads(scored)
    for candidate in document["candidates"]:
        for key in [key for key in candidate if key.endswith("neg_log_loss")]:
            del candidate[key]
    return json.dumps(document, sort_keys=True)


def _log_losses(scored: str) -> list[float]:
    import json

    return [
        value
        for candidate in json.loads(scored)["candidates"]
        for value in candidate["fold_neg_log_loss"]
    ]


@pytest.mark.parametrize(("n_classes", "k"), [(3, "1-12"), (12, "1-4")])  # 12 > k: sparse shares
async def test_a_fold_scored_in_its_worker_equals_the_board_tallying_it_whole_or_in_pieces(
    monkeypatch: pytest.MonkeyPatch, n_classes: int, k: str
) -> None:
    """A unit that holds its whole fold is scored where it ran and sends scores instead of
    its vote shares; the same folds tallied by the board, from one unit or from several,
    give every score to the last bit."""
    from stages import neighbours, plan

    rng = np.random.default_rng(5)
    y = np.arange(480) % n_classes
    X = rng.normal(0, 1, (y.size, 5)) + y[:, None] * 0.4
    data = Dataset(X=X, y=y, classes=[f"c{c}" for c in range(n_classes)], source="blobs")
    options: dict[str, Any] = {
        "k": k,
        "cv": "kfold:4",
        "metrics": "euclidean,manhattan",
        "weights": "uniform,distance",
    }
    outputs = recorded_outputs(monkeypatch)

    async def run() -> tuple[str, list[Any]]:
        outputs.clear()
        with ThreadPoolExecutor(2) as executor:
            result = await Tuning(data, executor=executor, **options).run()
        return _scored(result), list(outputs)

    in_workers, scored = await run()
    assert len(scored) == 8 and all(o.scores is not None and o.shares is None for o in scored)
    with monkeypatch.context() as patched:
        patched.setattr(neighbours, "_holds_its_fold", lambda inputs, unit: False)
        on_the_board, whole = await run()
        patched.setattr(plan, "PAIRS_PER_UNIT", 4_000)  # some 11 test rows a unit
        in_pieces, pieces = await run()
    assert all(o.scores is None and o.shares is not None for o in whole + pieces)
    assert len(whole) == 8 and len(pieces) > 8 * 4
    assert in_workers == on_the_board
    # Pieces add their rows' log losses piece by piece: the same sum, but rounded apart.
    assert _without_log_loss(in_pieces) == _without_log_loss(on_the_board)
    for ours, whole_fold in zip(_log_losses(in_pieces), _log_losses(on_the_board), strict=True):
        assert ours == pytest.approx(whole_fold, rel=1e-12)


async def test_leave_one_out_and_checkpointed_runs_send_every_units_vote_shares(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """Leave-one-out scores all out-of-fold shares at once, and a checkpoint records
    each unit's shares to resume from: neither has its folds scored in the workers."""
    outputs = recorded_outputs(monkeypatch)
    with ThreadPoolExecutor(2) as executor:
        await Tuning("iris", k="1-3", cv="loo", executor=executor).run()
        await Tuning("iris", k="1-3", checkpoint=tmp_path / "run.ckpt", executor=executor).run()
    assert outputs and all(o.scores is None and o.shares is not None for o in outputs)


def test_a_worker_leaves_a_one_row_fold_to_the_board() -> None:
    from stages.score import whole_fold_scores
    from stages.vote import vote_every_k

    votes = vote_every_k(np.array([[0, 1]]), np.array([[1.0, 2.0]]), (1, 2), ("uniform",), 2)
    with pytest.raises(ValueError, match="fold of one row"):
        whole_fold_scores(np.array([0]), votes.predictions, votes.shares, ("uniform",), (1, 2), 2)


def test_the_board_refuses_fold_scores_from_a_unit_that_is_not_its_whole_fold() -> None:
    """Scores stand for a whole fold; from part of one they would end it early."""
    from stages.neighbours import UnitOutput
    from stages.plan import WorkUnit

    board = score.Scoreboard(
        labels=np.array([0, 1, 0, 1]),
        test_order=np.arange(4),
        fold_sizes=[4],
        searches=((None, "euclidean"),),
        weights=("uniform",),
        ks=(1,),
        n_classes=2,
    )
    part = WorkUnit(0, "euclidean", 0, 0, 2)
    scores = {name: np.zeros((1, 1)) for name in score.SCORES}
    with pytest.raises(ValueError, match="scored as a whole fold, which it is not"):
        board.add(UnitOutput(part, np.zeros((1, 1, 2), np.uint8), None, 0.0, 0, scores))
    whole = WorkUnit(1, "euclidean", 0, 0, 4)
    (done,) = board.add(UnitOutput(whole, np.zeros((1, 1, 4), np.uint8), None, 0.0, 0, scores))
    assert done.fold == 0 and done.scores is scores
    assert done.confusion is not None and done.confusion.sum() == 4
