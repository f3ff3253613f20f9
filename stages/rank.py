"""The leaderboard: candidates ranked by a mean score as folds complete.

Order: the mean of the ranking score (``--scoring``, accuracy unless told)
descending, then ``k`` (ascending), then the order in which scalings, metrics
and weightings were given. ``rank`` is competition ranking on that mean alone
(equal means share a rank), scikit-learn's ``rank_test_score`` rule. Means
and standard deviations are taken over the folds scored so far with NumPy's
``mean``/``std`` (population), as scikit-learn's ``mean_test_score`` and
``std_test_score``.

Accuracy ranks compare the true means exactly: two candidates whose fold accuracies
have the same mean share a rank even where floating-point sums differ in the
last bit (0.9600000000000002 and 0.96). Each fold's accuracy is
``hits / test_rows``, so with ``L`` the least common multiple of the fold
sizes, ``sum(hits * (L // test_rows))`` is an integer proportional to the
mean, kept as folds complete and compared exactly.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline.errors import OptionError

from .score import SCORES, FoldScores
from .search_space import Candidate, SearchSpace

__all__ = ["RANK_DIGITS", "Leaderboard", "RankedCandidate"]

RANK_DIGITS = 12
"""Decimals to which means other than accuracy's exact one are compared when ranking: far
below any difference of two true means on data sets of up to about 100,000 rows, far above
the float error of a mean (about 1e-16)."""


@dataclass(frozen=True)
class RankedCandidate:
    """One row of the leaderboard: every score's per-fold values, ranked by one of them.

    ``fold_scores`` maps each name of :data:`stages.score.SCORES` to the
    candidate's values in fold order; ``scoring`` names the one that ranks.
    """

    rank: int
    candidate: Candidate
    mean_accuracy: float
    std_accuracy: float
    fold_accuracy: list[float]
    mean_balanced_accuracy: float
    mean_f1_macro: float
    folds_done: int
    fold_scores: dict[str, list[float]] = field(default_factory=dict)
    scoring: str = "accuracy"
    pooled_scores: dict[str, float] = field(default_factory=dict)
    """Leave-one-out only: every score over all out-of-fold predictions at once."""
    confusion: list[list[int]] | None = None
    """Test rows by true class (rows) and predicted class (columns), summed over every
    fold, in the data set's class order; None until all the candidate's folds are in, or
    beyond :data:`stages.score.CONFUSION_CLASSES` classes."""
    means: dict[str, float] = field(default_factory=dict)
    """``np.mean`` of each score's ``fold_scores``, taken for the whole board at once once
    every fold is in (empty before: :meth:`mean` then takes it from the list)."""
    stds: dict[str, float] = field(default_factory=dict)
    """``np.std`` (population) of each score's ``fold_scores``, likewise."""

    def mean(self, name: str) -> float:
        """The mean of score ``name`` over the folds scored (NaN if one is undefined)."""
        if name in self.means:
            return self.means[name]
        return float(np.mean(self.fold_scores[name]))

    def std(self, name: str) -> float:
        """The population standard deviation of score ``name`` over the folds scored."""
        if name in self.stds:
            return self.stds[name]
        return float(np.std(self.fold_scores[name]))

    @property
    def mean_score(self) -> float:
        """The ranking score: its mean over folds, or for leave-one-out its pooled value."""
        if self.scoring in self.pooled_scores:
            return self.pooled_scores[self.scoring]
        return self.mean(self.scoring)

    def to_dict(self) -> dict[str, Any]:
        """The candidate's entry in the results JSON: v1's fields, then every score's
        ``mean_``, ``std_`` and ``fold_`` values."""
        entry: dict[str, Any] = {
            "rank": self.rank,
            "params": self.candidate.params(),
            "mean_accuracy": self.mean_accuracy,
            "std_accuracy": self.std_accuracy,
            "fold_accuracy": self.fold_accuracy,
            "mean_balanced_accuracy": self.mean_balanced_accuracy,
            "mean_f1_macro": self.mean_f1_macro,
        }
        for name, values in self.fold_scores.items():
            entry[f"mean_{name}"] = _number(self.mean(name))
            entry[f"std_{name}"] = _number(self.std(name))
            entry[f"fold_{name}"] = [_number(v) for v in values]
        for name, value in self.pooled_scores.items():
            entry[f"pooled_{name}"] = _number(value)
        entry["confusion_matrix"] = self.confusion
        return entry


def _number(value: Any) -> float | None:
    """A float for JSON; an undefined score (NaN) as null."""
    number = float(value)
    return None if math.isnan(number) else number


class Leaderboard:
    """Per-fold scores of every candidate; ranks on demand by ``scoring``."""

    def __init__(
        self,
        space: SearchSpace,
        n_folds: int,
        fold_sizes: Sequence[int] | None = None,
        scoring: str = "accuracy",
        *,
        pooled: bool = False,
    ) -> None:
        if scoring not in SCORES:
            raise OptionError("scoring", f"unknown {scoring!r}; choose from {', '.join(SCORES)}")
        self.space = space
        self.scoring = scoring
        self.candidates = list(space.candidates())
        shape = (len(space.searches), len(space.weights), len(space.ks), n_folds)
        self.scores = {name: np.full(shape, np.nan) for name in SCORES}
        # Leave-one-out: pooled scores per search, filled as each search completes; they
        # rank, except accuracy, whose pooled value is the mean of the folds' anyway.
        self.pooled = pooled
        self.pooled_scores = {name: np.full(shape[:3], np.nan) for name in SCORES}
        self.n_folds = n_folds
        # Exact means of accuracy (see the module docstring); without fold sizes, or for
        # the other scores, ranks compare float means rounded to RANK_DIGITS decimals.
        self._fold_sizes = list(fold_sizes) if fold_sizes is not None else None
        self._hits_sum: npt.NDArray[Any] | None = None
        if self._fold_sizes is not None and scoring == "accuracy":
            common = math.lcm(*self._fold_sizes)
            self._scale = [common // size for size in self._fold_sizes]
            fits = common * n_folds < 2**62  # the largest sum: every row of every fold a hit
            self._hits_sum = np.zeros(shape[:3], dtype=np.int64 if fits else object)
        # Kept as folds arrive, so that adding a fold and asking for the leader cost the
        # same however many folds are in (leave-one-out has thousands): per candidate,
        # the folds done, and the sum and count of its defined ranking scores.
        candidates = len(self.candidates)
        self._folds_done = np.zeros(candidates, dtype=np.int64)
        self._defined_sum = np.zeros(candidates)
        self._defined = np.zeros(candidates, dtype=np.int64)
        self._live_means = np.full(candidates, np.nan)
        self._cells_done = 0
        self._cells: set[tuple[int, int]] = set()
        self._confusion: dict[int, npt.NDArray[np.int64]] = {}  # search -> (W, K, C, C)

    @property
    def accuracy(self) -> npt.NDArray[np.float64]:
        return self.scores["accuracy"]

    @property
    def ranking(self) -> npt.NDArray[np.float64]:
        """Per-fold values of the ranking score, shape (searches, weights, ks, folds)."""
        return self.scores[self.scoring]

    def add(self, scores: FoldScores) -> list[int]:
        """Record one (fold, search), once; return the candidate indices it touched."""
        cell = (scores.search, scores.fold)
        if cell in self._cells:  # the running means would count it twice
            raise ValueError(f"fold {scores.fold} of search {scores.search} is already in")
        self._cells.add(cell)
        for name, values in scores.scores.items():
            self.scores[name][scores.search, :, :, scores.fold] = values
        for name, values in (scores.pooled or {}).items():
            self.pooled_scores[name][scores.search] = values
        if scores.confusion is not None:
            self._confusion[scores.search] = scores.confusion
        if self._hits_sum is not None and self._fold_sizes is not None:
            hits = np.rint(scores.accuracy * self._fold_sizes[scores.fold]).astype(np.int64)
            if self._hits_sum.dtype == object:
                hits = hits.astype(object)
            self._hits_sum[scores.search] += hits * self._scale[scores.fold]
        per_search = len(self.space.weights) * len(self.space.ks)
        touched = slice(scores.search * per_search, (scores.search + 1) * per_search)
        self._cells_done += 1
        self._follow_means(touched, scores.scores[self.scoring].reshape(-1))
        return list(range(touched.start, touched.stop))

    def _follow_means(self, touched: slice, values: npt.NDArray[np.float64]) -> None:
        """Update the running means of the ``touched`` candidates with one fold's ``values``.

        A candidate whose folds are all in gets ``np.mean`` of them, as
        :func:`_fold_mean` gives (scikit-learn's ``mean_test_score`` to the bit).
        """
        self._folds_done[touched] += 1
        defined = ~np.isnan(values)
        self._defined_sum[touched] += np.where(defined, values, 0.0)
        self._defined[touched] += defined
        with np.errstate(invalid="ignore", divide="ignore"):
            partial = self._defined_sum[touched] / self._defined[touched]
        self._live_means[touched] = np.where(self._defined[touched] > 0, partial, np.nan)
        complete = np.flatnonzero(self._folds_done[touched] == self.n_folds) + touched.start
        if complete.size:
            self._live_means[complete] = np.mean(self._flat(self.ranking)[complete], axis=1)

    def _flat(self, array: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return array.reshape(len(self.candidates), self.n_folds)

    def folds_done(self, index: int) -> int:
        return int(self._folds_done[index])

    @property
    def cells(self) -> tuple[int, int]:
        """(fold, search) scores recorded, and how many the run has."""
        return self._cells_done, len(self.space.searches) * self.n_folds

    def mean_score(self, index: int) -> float:
        """The ranking score over the folds done so far (NaN: none, or undefined)."""
        return float(self._means()[index])

    def _means(self) -> npt.NDArray[np.float64]:
        """Every candidate's ranking score: the mean over its folds done, or for a pooled
        board (and a score other than accuracy) the pooled value once its search is in."""
        if self.pooled and self.scoring != "accuracy":
            return self.pooled_scores[self.scoring].reshape(-1)
        return self._live_means

    def _done(self) -> npt.NDArray[np.bool_]:
        """Which (candidate, fold) has been scored: accuracy is always defined."""
        return ~np.isnan(self._flat(self.accuracy))

    @property
    def complete(self) -> bool:
        done, total = self.cells
        return done >= total

    def _order(self) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
        """Indices of the scored candidates, best first, and their mean ranking scores."""
        means = self._means()
        scored = np.flatnonzero(self._folds_done > 0)
        ks = np.array([self.candidates[i].k for i in scored])
        level = self._level(means)
        # Candidates are enumerated search-major (scaling, then metric), then weights, so
        # the index breaks the remaining ties in the order these were given.
        order = scored[np.lexsort((scored, ks, -level[scored]))]
        return order, means

    def _level(self, means: npt.NDArray[np.float64]) -> npt.NDArray[Any]:
        """What ranks compare: the exact mean's place among all, once every fold is in."""
        if self._hits_sum is None or not self.complete:
            # a live board, or a score other than accuracy: the means, to RANK_DIGITS;
            # an undefined score ranks last
            return np.nan_to_num(np.round(means, RANK_DIGITS), nan=-np.inf)
        _, level = np.unique(self._hits_sum.reshape(-1), return_inverse=True)
        return np.asarray(level, dtype=np.int64).reshape(-1)

    def ranked(self) -> list[RankedCandidate]:
        """Every candidate with at least one fold scored, best first."""
        order, means = self._order()
        if order.size == 0:
            return []
        accuracy = self._flat(self.accuracy)
        done = self._done()
        stds = _fold_std(accuracy, done)
        flat = {name: self._flat(values) for name, values in self.scores.items()}
        summaries = {name: _mean_and_std(values) for name, values in flat.items()}
        complete: npt.NDArray[np.bool_] = np.asarray(done.all(axis=1))
        balanced = _fold_mean(flat["balanced_accuracy"], done)
        f1 = _fold_mean(flat["f1_macro"], done)
        accuracy_means = _fold_mean(accuracy, done)
        pooled = {name: values.reshape(-1) for name, values in self.pooled_scores.items()}
        ordered = -self._level(means)[order]
        ranks = 1 + np.searchsorted(ordered, ordered, side="left")
        # Python lists of every candidate's folds, converted once per score, not per row
        fold_lists = {name: _done_folds(values, done) for name, values in flat.items()}
        fold_accuracy = _done_folds(accuracy, done)
        return [
            RankedCandidate(
                rank=int(rank),
                candidate=self.candidates[index],
                mean_accuracy=float(accuracy_means[index]),
                std_accuracy=float(stds[index]),
                fold_accuracy=fold_accuracy[index],
                mean_balanced_accuracy=float(balanced[index]),
                mean_f1_macro=float(f1[index]),
                folds_done=int(done[index].sum()),
                fold_scores={n: lists[index] for n, lists in fold_lists.items()},
                scoring=self.scoring,
                pooled_scores=(
                    {n: float(v[index]) for n, v in pooled.items()}
                    if self.pooled and not np.isnan(pooled["accuracy"][index])
                    else {}
                ),
                confusion=self._confusion_of(int(index)),
                means=(
                    {n: float(mean[index]) for n, (mean, _) in summaries.items()}
                    if complete[index]
                    else {}
                ),
                stds=(
                    {n: float(std[index]) for n, (_, std) in summaries.items()}
                    if complete[index]
                    else {}
                ),
            )
            for rank, index in zip(ranks, order, strict=True)
        ]

    def _confusion_of(self, index: int) -> list[list[int]] | None:
        per_search = len(self.space.weights) * len(self.space.ks)
        search, cell = divmod(index, per_search)
        confusion = self._confusion.get(search)
        if confusion is None:
            return None
        w, k = divmod(cell, len(self.space.ks))
        matrix: list[list[int]] = confusion[w, k].tolist()
        return matrix

    def best(self) -> tuple[int, float] | None:
        """Index and mean ranking score of the current leader, without building the table."""
        order, means = self._order()
        if order.size == 0 or np.isnan(means[order[0]]):
            return None
        return int(order[0]), float(means[order[0]])


def _over_folds(
    statistic: str, scores: npt.NDArray[np.float64], done: npt.NDArray[np.bool_]
) -> npt.NDArray[np.float64]:
    """``np.mean`` or ``np.std`` (population) over the folds scored so far (``done``;
    NaN: none yet), row by row.

    Complete rows use the plain NumPy function along the row, the computation
    behind scikit-learn's ``mean_test_score`` and ``std_test_score``, so the two
    agree to the last bit, and like it a fold whose score is undefined (NaN)
    makes the row's value NaN; partial rows ignore the folds not done.
    """
    reduce: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
        "mean": (np.mean, np.nanmean),
        "std": (np.std, np.nanstd),
    }
    whole, ignoring_nan = reduce[statistic]
    complete = done.all(axis=1)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # rows with no fold yet
        partial = ignoring_nan(np.where(done, scores, np.nan), axis=1)
    return np.asarray(np.where(complete, whole(scores, axis=1), partial), dtype=np.float64)


def _mean_and_std(
    scores: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``np.mean`` and ``np.std`` of each row, equal to the bit to those of the row's
    list of values (NaN stays NaN): whole rows in one call, since a call per candidate
    and score costs more than the rest of writing the results.

    Unlike :func:`_over_folds` (the leaderboard's own means, which skip a fold whose
    score is undefined while the board fills), these are the results file's figures
    of the listed values, where an undefined fold leaves the mean undefined. Only
    complete rows' are kept; a candidate still filling takes its own when asked."""
    return np.mean(scores, axis=1), np.std(scores, axis=1)


def _done_folds(values: npt.NDArray[np.float64], done: npt.NDArray[np.bool_]) -> list[list[float]]:
    """Each row's values at the folds done for it, as lists."""
    if done.all():
        return values.tolist()  # type: ignore[no-any-return]
    return [row[mask].tolist() for row, mask in zip(values, done, strict=True)]


def _fold_mean(
    scores: npt.NDArray[np.float64], done: npt.NDArray[np.bool_]
) -> npt.NDArray[np.float64]:
    """Mean over the folds scored so far: see :func:`_over_folds`."""
    return _over_folds("mean", scores, done)


def _fold_std(
    scores: npt.NDArray[np.float64], done: npt.NDArray[np.bool_]
) -> npt.NDArray[np.float64]:
    """Population standard deviation over the folds scored so far: see :func:`_over_folds`."""
    return _over_folds("std", scores, done)
