"""Units of work: every test row once per (scaling, metric), sized to the pool's task cost."""

from __future__ import annotations

import numpy as np
import pytest

from stages.dataset import Dataset
from stages.partition import make_folds, parse_cv
from stages.plan import (
    LOCAL_TASK_SECONDS,
    MAX_UNITS_PER_WORKER,
    PAIRS_PER_UNIT,
    pairs_for,
    plan_units,
)


def folds(rows: int = 20_000):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    data = Dataset(
        X=rng.random((rows, 4)), y=rng.integers(0, 3, rows), classes=["a", "b", "c"], source="r"
    )
    return make_folds(data, parse_cv("kfold:5"), 0)


def test_units_grow_with_what_a_task_costs() -> None:
    assert pairs_for(LOCAL_TASK_SECONDS) == PAIRS_PER_UNIT
    assert pairs_for(0.0) == PAIRS_PER_UNIT  # never smaller than the local size
    assert pairs_for(4 * LOCAL_TASK_SECONDS) == 4 * PAIRS_PER_UNIT


@pytest.mark.parametrize("task_seconds", [LOCAL_TASK_SECONDS, 0.007, 0.05])
@pytest.mark.parametrize("workers", [1, 2, 16])
def test_every_test_row_is_in_one_unit_per_metric(task_seconds: float, workers: int) -> None:
    split = folds()
    metrics = ("euclidean", "manhattan")
    test_order, units = plan_units(
        split, metrics, workers=workers, pairs_per_unit=pairs_for(task_seconds)
    )
    assert sorted(test_order.tolist()) == list(range(20_000))
    for metric in metrics:
        covered = np.zeros(20_000, dtype=int)
        for unit in (u for u in units if u.metric == metric):
            rows = test_order[unit.start : unit.stop]
            assert (split.fold_of_row[rows] == unit.fold).all()
            covered[rows] += 1
        assert (covered == 1).all()
    assert len(units) >= min(4 * workers, len(metrics) * 20_000 // 8)  # every worker kept busy


def test_a_costlier_task_means_fewer_larger_units() -> None:
    split = folds()
    _, local = plan_units(split, ("euclidean",), workers=2)
    costly = pairs_for(2 * LOCAL_TASK_SECONDS)
    _, cluster = plan_units(split, ("euclidean",), workers=2, pairs_per_unit=costly)
    assert len(cluster) < len(local)
    assert len(cluster) >= 8  # still four a worker


def test_units_stay_a_few_hundred_a_worker_on_big_data() -> None:
    split = folds(200_000)
    metrics = ("euclidean", "manhattan", "chebyshev", "sorensen")
    _, units = plan_units(split, metrics, workers=2)
    rounding = len(split.folds) * len(metrics)  # each fold's last block may be a short one
    assert 4 * 2 <= len(units) <= MAX_UNITS_PER_WORKER * 2 + rounding


def test_a_fold_that_fits_in_one_unit_is_one_when_every_worker_still_has_several() -> None:
    """Such a unit's worker scores the fold: only scores cross to the parent."""
    split = folds()  # 4,000 test rows a fold against 16,000
    metrics = ("euclidean", "manhattan", "chebyshev", "sorensen")
    _, units = plan_units(split, metrics, workers=2)
    starts = np.cumsum([0, *(f.test.size for f in split.folds)])
    assert len(units) == 5 * 4
    assert all((u.start, u.stop) == (starts[u.fold], starts[u.fold + 1]) for u in units)
    _, few = plan_units(split, ("euclidean",), workers=2)  # 5 whole folds: too few for 2
    assert len(few) >= 8 and all(u.rows < split.folds[u.fold].test.size for u in few)


def test_a_fold_too_large_for_one_unit_is_split() -> None:
    split = folds(50_000)  # 10,000 test rows a fold
    metrics = ("euclidean", "manhattan", "chebyshev", "sorensen")
    _, units = plan_units(split, metrics, workers=2)
    assert len(units) > 5 * 4
    assert all(u.rows < split.folds[u.fold].test.size for u in units)


def test_each_folds_costliest_metric_goes_first_so_the_last_units_are_short() -> None:
    from stages.metrics import metric_info

    split = folds()
    metrics = ("euclidean", "manhattan", "chebyshev", "sorensen", "cosine", "minkowski:3")
    _, units = plan_units(split, metrics, workers=2)
    for fold in range(5):
        order = [u.metric for u in units if u.fold == fold]
        assert sorted(order) == sorted(metrics)
        costs = [metric_info(m).relative_cost for m in order]
        assert costs == sorted(costs, reverse=True)
        assert order.index("sorensen") < order.index("manhattan") < order.index("euclidean")
    assert [u.id for u in units] == list(range(len(units)))
