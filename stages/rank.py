"""The leaderboard: candidates ranked by mean accuracy as folds complete.

Order: mean accuracy (descending), then ``k`` (ascending), then the order in
which metrics and weightings were given. ``rank`` is competition ranking on
mean accuracy alone (equal means share a rank), scikit-learn's
``rank_test_score`` rule. Means and standard deviations are taken over the
folds scored so far with NumPy's ``mean``/``std`` (population), as
scikit-learn's ``mean_test_score``/``std_test_score``.
"""

from __future__ import annotations

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

    def __init__(self, space: SearchSpace, n_folds: int) -> None:
        self.space = space
        self.candidates = list(space.candidates())
        shape = (len(space.metrics), len(space.weights), len(space.ks), n_folds)
        self.accuracy = np.full(shape, np.nan)
        self.balanced_accuracy = np.full(shape, np.nan)
        self.f1_macro = np.full(shape, np.nan)
        self.n_folds = n_folds

    def add(self, scores: FoldScores) -> list[int]:
        """Record one (fold, metric); return the candidate indices it touched."""
        self.accuracy[scores.metric, :, :, scores.fold] = scores.accuracy
        self.balanced_accuracy[scores.metric, :, :, scores.fold] = scores.balanced_accuracy
        self.f1_macro[scores.metric, :, :, scores.fold] = scores.f1_macro
        per_metric = len(self.space.weights) * len(self.space.ks)
        return list(range(scores.metric * per_metric, (scores.metric + 1) * per_metric))

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

    def ranked(self) -> list[RankedCandidate]:
        """Every candidate with at least one fold scored, best first."""
        accuracy = self._flat(self.accuracy)
        done = ~np.isnan(accuracy)
        scored = np.flatnonzero(done.any(axis=1))
        if scored.size == 0:
            return []
        means = np.array([np.mean(accuracy[i][done[i]]) for i in scored])
        ks = np.array([self.candidates[i].k for i in scored])
        # Candidates are enumerated metric-major, then weights, so the index breaks
        # the remaining ties in the order metrics and weights were given.
        order = np.lexsort((scored, ks, -means))
        ranks = 1 + np.searchsorted(np.sort(-means), -means, side="left")
        balanced = self._flat(self.balanced_accuracy)
        f1 = self._flat(self.f1_macro)
        result = []
        for position in order:
            index = int(scored[position])
            folds = done[index]
            result.append(
                RankedCandidate(
                    rank=int(ranks[position]),
                    candidate=self.candidates[index],
                    mean_accuracy=float(means[position]),
                    std_accuracy=float(np.std(accuracy[index][folds])),
                    fold_accuracy=[float(v) for v in accuracy[index][folds]],
                    mean_balanced_accuracy=float(np.mean(balanced[index][folds])),
                    mean_f1_macro=float(np.mean(f1[index][folds])),
                    folds_done=int(folds.sum()),
                )
            )
        return result

    def best(self) -> tuple[int, float] | None:
        """Index and mean accuracy of the current leader, without building the table."""
        accuracy = self._flat(self.accuracy)
        done = ~np.isnan(accuracy)
        scored = np.flatnonzero(done.any(axis=1))
        if scored.size == 0:
            return None
        means = np.array([np.mean(accuracy[i][done[i]]) for i in scored])
        ks = np.array([self.candidates[i].k for i in scored])
        first = int(np.lexsort((scored, ks, -means))[0])
        return int(scored[first]), float(means[first])
