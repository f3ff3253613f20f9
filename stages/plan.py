"""Cut the work into units: (fold, metric, block of test rows).

A unit computes the distances from its block of test rows to the fold's
training rows once and keeps the ``k_max`` nearest; every ``k`` and every
weighting is scored from that one list. Blocks are sized to a fixed number of
distances: large enough that a task's overhead (a few milliseconds) is noise,
small enough that progress is frequent and both cores stay busy to the end.
Folds with very few test rows (leave-one-out) are merged into blocks that span
folds: their rows are compared with every row, and the rows of a test
row's own fold are masked out.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from .metrics import metric_info

if TYPE_CHECKING:  # importing partition would pull scikit-learn into every worker
    from .partition import Folds

__all__ = ["MASKED", "WorkUnit", "pairs_for", "plan_units", "rows_per_block"]

MASKED = -1
"""``WorkUnit.fold`` of a unit whose block spans folds (training rows masked per test row)."""

PAIRS_PER_UNIT = 2**24
LOCAL_TASK_SECONDS = 0.003
"""What a task costs this process beyond its work on the local pool (submitting it,
receiving and tallying its results, its events: about 2.7 ms of CPU a unit on bench M);
PAIRS_PER_UNIT is sized for it: a unit of 16 million distances is some 100 ms of a
worker's time at 32 features, so the overhead is a few percent."""

MAX_UNITS_PER_WORKER = 256
"""At most this many units a worker: on big data, units grow instead of multiplying,
so the tasks' overhead in this process stays bounded (see :func:`plan_units`)."""

MIN_BLOCK_ROWS = 8
MAX_BLOCK_ROWS = 4096
MERGE_BELOW_ROWS = 16

WHOLE_FOLD_UNITS = 4
"""A fold of at most MAX_BLOCK_ROWS test rows whose distances number at most this many
units' worth is one unit, when that still leaves every worker several: the worker then
scores the fold itself, and only the scores cross to this process, not the vote shares
(see :attr:`stages.neighbours.UnitInputs.fold_starts`)."""


@dataclass(frozen=True)
class WorkUnit:
    """Test rows ``test_order[start:stop]`` of ``fold`` (or :data:`MASKED`), under ``metric``.

    ``scale`` is the scaling fitted on the fold's training rows (None: not searched).
    """

    id: int
    metric: str
    fold: int
    start: int
    stop: int
    scale: str | None = None

    @property
    def rows(self) -> int:
        return self.stop - self.start

    def label(self, fold_ids: list[str]) -> str:
        where = "folds mixed" if self.fold == MASKED else f"fold {fold_ids[self.fold]}"
        how = self.metric if self.scale is None else f"{self.scale} scaling, {self.metric}"
        return f"unit {self.id} ({where}, {how}, test rows {self.start}..{self.stop - 1})"


def rows_per_block(train_rows: int, pairs: int = PAIRS_PER_UNIT) -> int:
    """Test rows whose distances to ``train_rows`` points number about ``pairs``."""
    return int(np.clip(pairs // max(train_rows, 1), MIN_BLOCK_ROWS, MAX_BLOCK_ROWS))


def pairs_for(task_seconds: float) -> int:
    """Distances a unit should hold where a task costs ``task_seconds`` beyond its
    work: units grow with the overhead, so it stays the same small share."""
    return PAIRS_PER_UNIT * max(1, round(task_seconds / LOCAL_TASK_SECONDS))


def plan_units(
    folds: Folds,
    metrics: tuple[str, ...],
    *,
    scales: tuple[str | None, ...] = (None,),
    workers: int = 1,
    pairs_per_unit: int = PAIRS_PER_UNIT,
    merge_small_folds: bool = True,
) -> tuple[npt.NDArray[np.intp], list[WorkUnit]]:
    """The test-row order (rows grouped by fold) and the units, fold-major.

    ``merge_small_folds=False`` keeps every unit inside one fold; imputation
    and scaling need that, since each fold fits them on its own training
    rows. Folds that are not disjoint (given splits) are never merged. There
    is one unit per block for every (scaling, metric).

    Fold-major order finishes whole folds early, so the leaderboard fills in
    while the run goes on.
    """
    test_order = np.concatenate([f.test for f in folds.folds]).astype(np.intp)
    sizes = [f.test.size for f in folds.folds]
    largest_train = max(f.train.size for f in folds.folds)
    block = rows_per_block(largest_train, pairs_per_unit)
    total_rows = int(test_order.size)
    searches = len(metrics) * len(scales)
    # No more units than a few hundred a worker: each costs this process a few
    # milliseconds however small it is.
    fewest_rows = -(-total_rows * searches // (MAX_UNITS_PER_WORKER * workers))
    block = max(block, min(fewest_rows, MAX_BLOCK_ROWS))
    # Enough units that every worker has several to the end: no long tail of one big unit.
    wanted_units = 4 * workers
    per_metric = max(1, -(-wanted_units // searches))
    block = max(MIN_BLOCK_ROWS, min(block, -(-total_rows // per_metric)))

    spans: list[tuple[int, int, int]] = []
    fitted = any(scale not in (None, "none") for scale in scales)
    merge = merge_small_folds and folds.disjoint and not fitted
    if merge and total_rows / len(sizes) < MERGE_BELOW_ROWS:
        spans = [(MASKED, s, min(s + block, total_rows)) for s in range(0, total_rows, block)]
    else:
        whole_folds = len(sizes) * searches >= wanted_units
        offset = 0
        for number, (fold, size) in enumerate(zip(folds.folds, sizes, strict=True)):
            pairs = size * fold.train.size
            if (
                whole_folds
                and size <= MAX_BLOCK_ROWS
                and pairs <= WHOLE_FOLD_UNITS * pairs_per_unit
            ):
                pieces = 1
            else:
                pieces = max(1, -(-size // block))
            edges = np.linspace(offset, offset + size, pieces + 1).round().astype(int)
            spans.extend((number, int(a), int(b)) for a, b in itertools.pairwise(edges))
            offset += size
    # Costliest metric first within each span: the run's last units are its shortest.
    by_cost = sorted(metrics, key=lambda m: -metric_info(m).relative_cost)
    units = [
        WorkUnit(id=i, metric=metric, fold=fold, start=start, stop=stop, scale=scale)
        for i, (fold, start, stop, scale, metric) in enumerate(
            (f, a, b, c, m) for f, a, b in spans for c in scales for m in by_cost
        )
    ]
    return test_order, units
