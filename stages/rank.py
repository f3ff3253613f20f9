"""The leaderboard: candidates ranked by mean accuracy as folds complete.

Order: mean accuracy (descending), then ``k`` (ascending), then the order in
which scalings, metrics and weightings were given. ``rank`` is competition ranking on
mean accuracy alone (equal means share a rank), scikit-learn's
``rank_test_score`` rule. Means and standard deviations are taken over the
folds scored so far with NumPy's ``mean``/``std`` (population), as
scikit-learn's ``mean_test_score``/``std_test_score``.

Ranks compare the true means exactly: two candidates whose fold accuracies
have the same mean share a rank even where floating-point sums differ in the
last bit (0.9600000000000002 and 0.96). Each fold's accuracy is
``hits / test_rows``, so with ``L`` the least common multiple of the fold
sizes, ``sum(hits * (L // test_rows))`` is an integer proportional to the
mean, kept as folds complete and compared exactly.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .score import FoldScores
from .search_space import Candidate, SearchSpace

__all__ = ["Leaderboard", "RankedCandidate"]


@dataclass(frozen=True)
class RankedCandidate:
    """One row of the leaderboard."""

    rank: int
    candidate: Candidate
    mean_accuracy: float
    std_accuracy: float
    fold_accuracy: list[float]
    mean_balanced_accuracy: float
    mean_f1_macro: float
    folds_done: int

    def to_dict(self) -> dict[str, Any]:
        """The candidate's entry in the results JSON."""
        return {
            "rank": self.rank,
            "params": self.candidate.params(),
            "mean_accuracy": self.mean_accuracy,
            "std_accuracy": self.std_accuracy,
            "fold_accuracy": self.fold_accuracy,
            "mean_balanced_accuracy": self.mean_balanced_accuracy,
            "mean_f1_macro": self.mean_f1_macro,
        }


class Leaderboard:
    """Per-fold scores of every candidate; ranks on demand."""

    def __init__(
        self, space: SearchSpace, n_folds: int, fold_sizes: Sequence[int] | None = None
    ) -> None:
        self.space = space
        self.candidates = list(space.candidates())
        shape = (len(space.searches), len(space.weights), len(space.ks), n_folds)
        self.accuracy = np.full(shape, np.nan)
        self.balanced_accuracy = np.full(shape, np.nan)
        self.f1_macro = np.full(shape, np.nan)
        self.n_folds = n_folds
        # Exact means (see the module docstring); without fold sizes, ranks use the float means.
        self._fold_sizes = list(fold_sizes) if fold_sizes is not None else None
        self._hits_sum: npt.NDArray[Any] | None = None
        if self._fold_sizes is not None:
            common = math.lcm(*self._fold_sizes)
            self._scale = [common // size for size in self._fold_sizes]
            fits = common * n_folds < 2**62  # the largest sum: every row of every fold a hit
            self._hits_sum = np.zeros(shape[:3], dtype=np.int64 if fits else object)

    def add(self, scores: FoldScores) -> list[int]:
        """Record one (fold, search); return the candidate indices it touched."""
        self.accuracy[scores.search, :, :, scores.fold] = scores.accuracy
        self.balanced_accuracy[scores.search, :, :, scores.fold] = scores.balanced_accuracy
        self.f1_macro[scores.search, :, :, scores.fold] = scores.f1_macro
        if self._hits_sum is not None and self._fold_sizes is not None:
            hits = np.rint(scores.accuracy * self._fold_sizes[scores.fold]).astype(np.int64)
            if self._hits_sum.dtype == object:
                hits = hits.astype(object)
            self._hits_sum[scores.search] += hits * self._scale[scores.fold]
        per_search = len(self.space.weights) * len(self.space.ks)
        return list(range(scores.search * per_search, (scores.search + 1) * per_search))

    def _flat(self, array: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return array.reshape(len(self.candidates), self.n_folds)

    def folds_done(self, index: int) -> int:
        return int(np.count_nonzero(~np.isnan(self._flat(self.accuracy)[index])))

    def mean_accuracy(self, index: int) -> float:
        done = self._flat(self.accuracy)[index]
        done = done[~np.isnan(done)]
        return float(np.mean(done)) if done.size else float("nan")

    @property
    def complete(self) -> bool:
        return not np.isnan(self.accuracy).any()

    def _order(self) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
        """Indices of the scored candidates, best first, and their mean accuracies."""
        means = _fold_mean(self._flat(self.accuracy))
        scored = np.flatnonzero(~np.isnan(means))
        ks = np.array([self.candidates[i].k for i in scored])
        level = self._level(means)
        # Candidates are enumerated search-major (scaling, then metric), then weights, so
        # the index breaks the remaining ties in the order these were given.
        order = scored[np.lexsort((scored, ks, -level[scored]))]
        return order, means

    def _level(self, means: npt.NDArray[np.float64]) -> npt.NDArray[Any]:
        """What ranks compare: the exact mean's place among all, once every fold is in."""
        if self._hits_sum is None or not self.complete:
            return means  # a live board over the folds done so far: the float means
        _, level = np.unique(self._hits_sum.reshape(-1), return_inverse=True)
        return np.asarray(level, dtype=np.int64).reshape(-1)

    def ranked(self) -> list[RankedCandidate]:
        """Every candidate with at least one fold scored, best first."""
        order, means = self._order()
        if order.size == 0:
            return []
        accuracy = self._flat(self.accuracy)
        stds = _fold_std(accuracy)
        balanced = _fold_mean(self._flat(self.balanced_accuracy))
        f1 = _fold_mean(self._flat(self.f1_macro))
        ordered = -self._level(means)[order]
        ranks = 1 + np.searchsorted(ordered, ordered, side="left")
        done = ~np.isnan(accuracy)
        return [
            RankedCandidate(
                rank=int(rank),
                candidate=self.candidates[index],
                mean_accuracy=float(means[index]),
                std_accuracy=float(stds[index]),
                fold_accuracy=accuracy[index][done[index]].tolist(),
                mean_balanced_accuracy=float(balanced[index]),
                mean_f1_macro=float(f1[index]),
                folds_done=int(done[index].sum()),
            )
            for rank, index in zip(ranks, order, strict=True)
        ]

    def best(self) -> tuple[int, float] | None:
        """Index and mean accuracy of the current leader, without building the table."""
        order, means = self._order()
        if order.size == 0:
            return None
        return int(order[0]), float(means[order[0]])


def _fold_mean(scores: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Mean over the folds scored so far (NaN: none yet), row by row.

    Complete rows use ``np.mean`` along the row, the computation behind
    scikit-learn's ``mean_test_score``, so the two agree to the last bit.
    """
    complete = ~np.isnan(scores).any(axis=1)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # rows with no fold yet
        partial = np.nanmean(scores, axis=1)
    return np.asarray(np.where(complete, np.mean(scores, axis=1), partial), dtype=np.float64)


def _fold_std(scores: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Population standard deviation over the folds scored so far, row by row."""
    complete = ~np.isnan(scores).any(axis=1)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        partial = np.nanstd(scores, axis=1)
    return np.asarray(np.where(complete, np.std(scores, axis=1), partial), dtype=np.float64)
