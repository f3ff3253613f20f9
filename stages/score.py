"""Per-class counts and vote shares per candidate and fold, and the scores derived from them.

Every score of the predicted classes needs only three counts per class: the
hits (a confusion matrix's diagonal), the true rows (its row sums) and the
predicted rows (its column sums), so a (fold, search), a search being one
(scaling, metric), tallies those per (weighting, k) and class, never the
classes x classes matrix. Uniform votes' ``roc_auc_ovr`` is tallied as
histograms of their counts and ``neg_log_loss`` as a running sum; only the
vote shares of other weightings are kept until the fold is complete, and
only where its ``roc_auc_ovr`` is defined (every class among its rows and
missing from some). When every test row of a
(fold, search) has been seen, its scores for all of the search's
candidates are final and the tally is dropped.

Leave-one-out folds hold one row, where a per-fold F1 or AUC means nothing:
the board then also scores all out-of-fold predictions at once
(``pooled``, as ``cross_val_predict`` and then the metric).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from . import _kernels
from .vote import VoteShares, share_width

if TYPE_CHECKING:
    from .neighbours import UnitOutput

__all__ = [
    "CONFUSION_CLASSES",
    "CONFUSION_SCORES",
    "SCORES",
    "SHARE_SCORES",
    "FoldScores",
    "Scoreboard",
    "auc_is_defined",
    "neg_log_loss",
    "roc_auc_ovr",
    "scores_from_confusion",
    "scores_from_counts",
    "scores_from_shares",
    "whole_fold_scores",
]


CONFUSION_SCORES = (
    "accuracy",
    "balanced_accuracy",
    "f1_macro",
    "f1_weighted",
    "precision_macro",
    "recall_macro",
)
"""Scores of the predicted classes, all from one confusion matrix."""

SHARE_SCORES = ("roc_auc_ovr", "neg_log_loss")
"""Scores of the vote shares (``predict_proba``)."""

CONFUSION_CLASSES = 100
"""Most classes for which each candidate's confusion matrix (summed over folds) is kept:
beyond, classes x classes counts per candidate would outgrow everything else a run holds."""

SCORES = CONFUSION_SCORES + SHARE_SCORES
"""Every score a candidate carries per fold (scikit-learn's scorer names); ``--scoring``
picks the one that ranks."""


@dataclass(frozen=True)
class FoldScores:
    """Final scores of one (fold, search) for every (weighting, k): arrays of shape ``(W, K)``.

    ``search`` indexes :attr:`SearchSpace.searches`, the (scaling, metric) pairs;
    ``scores`` holds one such array per name in :data:`SCORES`.
    """

    fold: int
    search: int
    scores: dict[str, npt.NDArray[np.float64]]
    pooled: dict[str, npt.NDArray[np.float64]] | None = None
    """Every score over all folds' predictions at once, on the search's last fold of a
    pooled (leave-one-out) board."""
    confusion: npt.NDArray[np.int64] | None = None
    """The search's confusion matrices summed over all its folds, ``(W, K, true, predicted)``,
    on its last fold, for up to :data:`CONFUSION_CLASSES` classes."""

    @property
    def accuracy(self) -> npt.NDArray[np.float64]:
        return self.scores["accuracy"]


def scores_from_counts(
    hits: npt.NDArray[np.int64],
    support: npt.NDArray[np.int64],
    predicted: npt.NDArray[np.int64],
) -> dict[str, npt.NDArray[np.float64]]:
    """Every score of :data:`CONFUSION_SCORES` from per-class counts over the last axis:
    ``hits`` (true and predicted), ``support`` (true) and ``predicted``.

    Follow scikit-learn: balanced accuracy averages recall over classes present
    in the truth; the macro averages run over classes present in truth or
    prediction, an undefined precision, recall or F1 counting as 0; the
    weighted F1 weighs each class by its support.
    """
    hits_f = np.asarray(hits, dtype=np.float64)
    support_f = np.asarray(support, dtype=np.float64)
    predicted_f = np.asarray(predicted, dtype=np.float64)
    total = support_f.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support_f > 0, hits_f / support_f, 0.0)
        precision = np.where(predicted_f > 0, hits_f / predicted_f, 0.0)
        denominator = support_f + predicted_f
        f1 = np.where(denominator > 0, 2.0 * hits_f / denominator, 0.0)
        present = np.count_nonzero(denominator > 0, axis=-1)
        return {
            "accuracy": hits_f.sum(axis=-1) / total,
            "balanced_accuracy": recall.sum(axis=-1) / np.count_nonzero(support_f > 0, axis=-1),
            "f1_macro": f1.sum(axis=-1) / present,
            "f1_weighted": (f1 * support_f).sum(axis=-1) / total,
            "precision_macro": precision.sum(axis=-1) / present,
            "recall_macro": recall.sum(axis=-1) / present,
        }


def scores_from_confusion(confusion: npt.NDArray[np.int64]) -> dict[str, npt.NDArray[np.float64]]:
    """Every score of :data:`CONFUSION_SCORES` over the last two axes (true, predicted)."""
    hits = np.diagonal(confusion, axis1=-2, axis2=-1)
    return scores_from_counts(hits, confusion.sum(axis=-1), confusion.sum(axis=-2))


def auc_classes(n_classes: int) -> list[int]:
    """The classes one-vs-rest AUC averages over (binary: the second only)."""
    return [1] if n_classes == 2 else list(range(n_classes))


def auc_is_defined(support: npt.NDArray[np.int64]) -> bool:
    """Whether rows of these class counts have a one-vs-rest AUC: each averaged class
    among them and missing from some (scikit-learn's scorer raises otherwise)."""
    counts = support[auc_classes(support.size)]
    return bool(((counts > 0) & (counts < support.sum())).all())


def neg_log_loss(true_share: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``neg_log_loss`` of each row's true-class share ``(..., rows)``, clipped to
    ``[eps, 1 - eps]`` as scikit-learn clips it."""
    eps = np.finfo(np.float64).eps
    return np.asarray(-np.mean(-np.log(np.clip(true_share, eps, 1 - eps)), axis=-1))


def roc_auc_ovr(
    shares: VoteShares,
    truth: npt.NDArray[np.intp],
    n_classes: int,
    counted: npt.NDArray[np.intp] | None = None,
) -> npt.NDArray[np.float64]:
    """One-vs-rest AUC, macro-averaged (binary: of the second class's share), per series
    of ``shares``; NaN where it is undefined (see :func:`auc_is_defined`).

    ``counted`` (shape ``shares.values.shape[:-2]``) may give, per series, the ``k`` of
    uniform votes, whose shares are counts over ``k``: their AUC is then
    counted, not sorted (0: sort).
    """
    series_shape = shares.values.shape[:-2]
    if not auc_is_defined(np.bincount(truth, minlength=n_classes)):
        return np.full(series_shape, np.nan)
    n_series = int(np.prod(series_shape))
    by_count = np.zeros(n_series, dtype=np.intp)
    if counted is not None:
        by_count = np.asarray(counted, dtype=np.intp).reshape(-1)
    counting, sorting = np.flatnonzero(by_count > 0), np.flatnonzero(by_count == 0)
    classes = auc_classes(n_classes)
    flat_auc = np.zeros(n_series)
    for c in classes:
        positive = truth == c
        class_shares = np.ascontiguousarray(shares.column(c).reshape(n_series, -1))
        if counting.size:
            flat_auc[counting] += _counted_auc(class_shares[counting], by_count[counting], positive)
        if sorting.size:
            flat_auc[sorting] += _binary_auc(class_shares[sorting], positive)
    return np.asarray(flat_auc.reshape(series_shape) / len(classes))


def scores_from_shares(
    shares: VoteShares | npt.NDArray[np.float64],
    truth: npt.NDArray[np.intp],
    counted: npt.NDArray[np.intp] | None = None,
    n_classes: int | None = None,
) -> dict[str, npt.NDArray[np.float64]]:
    """``roc_auc_ovr`` and ``neg_log_loss`` of shares ``(..., rows, classes)`` for ``truth``.

    As scikit-learn's scorers: the log loss clips each true class's share to
    ``[eps, 1 - eps]`` (all classes are the labels, so a fold may lack some);
    the AUC is one-vs-rest, macro-averaged, and undefined (NaN) where a class has
    no positive or no negative row, where scikit-learn's scorer raises and
    ``GridSearchCV`` records NaN. ``n_classes`` is needed for sparse shares.
    """
    if not isinstance(shares, VoteShares):
        shares = VoteShares(np.asarray(shares, dtype=np.float64))
    if n_classes is None:
        if shares.classes is not None:
            raise ValueError("n_classes: needed for shares of some classes only")
        n_classes = int(shares.values.shape[-1])
    return {
        "roc_auc_ovr": roc_auc_ovr(shares, truth, n_classes, counted),
        "neg_log_loss": neg_log_loss(shares.of(truth)),
    }


def _counted_auc(
    shares: npt.NDArray[np.float64], ks: npt.NDArray[np.intp], positive: npt.NDArray[np.bool_]
) -> npt.NDArray[np.float64]:
    """:func:`_binary_auc` of shares that are counts over ``k`` (uniform votes), series by
    series: a histogram of the counts of positive and of negative rows, no sort."""
    n_pos = int(np.count_nonzero(positive))
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return np.full(shares.shape[0], np.nan)
    counts = np.rint(shares * ks[:, None]).astype(np.intp)  # c / k * k rounds back to c
    offsets = np.concatenate([[0], np.cumsum(ks + 1)[:-1]])
    cells = int((ks + 1).sum())
    at = counts + offsets[:, None]
    pos_hist = np.bincount(at[:, positive].reshape(-1), minlength=cells).astype(np.float64)
    neg_hist = np.bincount(at[:, ~positive].reshape(-1), minlength=cells).astype(np.float64)
    series = np.repeat(np.arange(ks.size), ks + 1)
    neg_below = np.cumsum(neg_hist) - neg_hist
    neg_below -= np.repeat((neg_below + neg_hist)[offsets - 1] * (offsets > 0), ks + 1)
    right = np.bincount(series, weights=pos_hist * (neg_below + 0.5 * neg_hist), minlength=ks.size)
    return np.asarray(right / (n_pos * n_neg))


def _binary_auc(
    scores: npt.NDArray[np.float64], positive: npt.NDArray[np.bool_]
) -> npt.NDArray[np.float64]:
    """Area under the ROC curve of ``scores (..., rows)``: the Mann-Whitney statistic, the
    share of (positive, negative) pairs the scores order right, a tie counting half, which
    is what the trapezoids of scikit-learn's ``roc_curve`` add up to."""
    n_pos = int(np.count_nonzero(positive))
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return np.full(scores.shape[:-1], np.nan)
    flat = np.ascontiguousarray(scores.reshape(-1, scores.shape[-1]), dtype=np.float64)
    right = np.empty(flat.shape[0])
    # Each row's negatives and positives radix-sorted, then merged: twice as fast as
    # NumPy's sorts of the two (no SIMD sort for float64 on many CPUs) and one merge.
    _kernels.scored_pairs(flat, positive.astype(np.intp), right)
    return (right / (n_pos * n_neg)).reshape(scores.shape[:-1])


_NO_COUNTS = np.zeros((0, 0), dtype=np.int64)
_NOT_COUNTED = np.zeros((0, 0, 0), dtype=np.int64)
"""Empty outputs: what :func:`stages._kernels.tally_codes` is not asked to count."""


class _Tally:
    """What one (fold, search), or a pooled search, has seen of its test rows so far.

    Uniform votes' shares are counts over ``k``, so their one-vs-rest AUC needs only a
    histogram of each averaged class's counts among its positive and its negative rows,
    tallied as units arrive; the log loss needs only a running sum. Only the shares of
    other weightings are kept whole, to be sorted at the end: memory grows with their
    series alone, not with every candidate.
    """

    def __init__(
        self,
        truth: npt.NDArray[np.intp],
        grid: tuple[int, int],
        n_classes: int,
        width: int | None,
        counted: npt.NDArray[np.intp],
    ) -> None:
        self.truth = truth
        self.support = np.bincount(truth, minlength=n_classes)
        self.hits = np.zeros((*grid, n_classes), dtype=np.int64)
        self.predicted = np.zeros((*grid, n_classes), dtype=np.int64)
        self._classes = n_classes
        self._log_sum = np.zeros(grid)
        counts_votes = (counted > 0).all(axis=1)  # per weighting: uniform
        self._by_count = np.flatnonzero(counts_votes)
        self._by_sort = np.flatnonzero(~counts_votes)
        self._ks = counted[self._by_count][..., None]  # (uniform weightings, K, 1)
        self._auc_classes = auc_classes(n_classes)
        self.shares: VoteShares | None = None
        self._histograms: npt.NDArray[np.int64] | None = None
        self._auc_defined = auc_is_defined(self.support)
        if not self._auc_defined:
            return
        rows = truth.size
        if self._by_sort.size:
            values = np.empty(
                (self._by_sort.size, grid[1], rows, n_classes if width is None else width)
            )
            classes = None if width is None else np.full((rows, width), -1, dtype=np.int32)
            self.shares = VoteShares(values, classes)
        if self._by_count.size:
            self._bins = int(counted.max()) + 1
            self._histograms = np.zeros(
                (self._by_count.size, grid[1], len(self._auc_classes), 2, self._bins),
                dtype=np.int64,
            )

    def add(self, at: int, predictions: npt.NDArray[np.intp], shares: VoteShares) -> None:
        """Count predictions ``(W, K, rows)`` and the shares of the rows from ``at`` on."""
        rows = predictions.shape[-1]
        truth = self.truth[at : at + rows]
        codes = np.ascontiguousarray(predictions.reshape(-1, rows))
        classes = self._classes
        per_series = (-1, classes)
        hits, predicted = self.hits.reshape(per_series), self.predicted.reshape(per_series)
        _kernels.tally_codes(codes, truth, classes, hits, predicted, _NOT_COUNTED)
        eps = np.finfo(np.float64).eps
        self._log_sum += np.log(np.clip(shares.of(truth), eps, 1 - eps)).sum(axis=-1)
        if self.shares is not None:
            self.shares.values[:, :, at : at + rows] = shares.values[self._by_sort]
            if self.shares.classes is not None and shares.classes is not None:
                self.shares.classes[at : at + rows] = shares.classes
        if self._histograms is not None:
            self._count_votes(self._histograms, truth, shares)

    def _count_votes(
        self, histograms: npt.NDArray[np.int64], truth: npt.NDArray[np.intp], shares: VoteShares
    ) -> None:
        if shares.classes is None:  # every class a column: the compiled count
            columns = np.asarray(self._auc_classes, dtype=np.intp)
            for place, weighting in enumerate(self._by_count):
                ks = np.ascontiguousarray(self._ks[place, :, 0])
                values = np.ascontiguousarray(shares.values[weighting])
                _kernels.count_shares(values, ks, truth, columns, histograms[place])
            return
        grid = histograms.shape[:2]
        first = np.arange(grid[0] * grid[1]).reshape(*grid, 1) * 2
        for j, c in enumerate(self._auc_classes):
            counts = np.rint(shares.column(c)[self._by_count] * self._ks).astype(np.intp)
            cell = (first + (truth == c)) * self._bins + counts  # c / k * k rounds back to c
            found = np.bincount(cell.ravel(), minlength=first.size * 2 * self._bins)
            histograms[:, :, j] += found.reshape(*grid, 2, self._bins)

    def scores(self) -> dict[str, npt.NDArray[np.float64]]:
        scores = scores_from_counts(self.hits, self.support, self.predicted)
        auc = np.full(self.hits.shape[:2], np.nan)
        if self.shares is not None:
            auc[self._by_sort] = roc_auc_ovr(self.shares, self.truth, self._classes)
        if self._histograms is not None:
            auc[self._by_count] = _auc_of_histograms(self._histograms)
        scores["roc_auc_ovr"] = auc
        scores["neg_log_loss"] = self._log_sum / self.truth.size
        return scores


def _auc_of_histograms(histograms: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """Macro one-vs-rest AUC from ``(..., classes, negative/positive, count)`` histograms:
    the share of (positive, negative) pairs ordered right, a tie counting half."""
    negative = histograms[..., 0, :].astype(np.float64)
    positive = histograms[..., 1, :].astype(np.float64)
    below = np.cumsum(negative, axis=-1) - negative
    right = (positive * (below + 0.5 * negative)).sum(axis=-1)
    pairs = positive.sum(axis=-1) * negative.sum(axis=-1)
    return np.asarray((right / pairs).mean(axis=-1))


def _counted_ks(weights: Sequence[str], ks: Sequence[int]) -> npt.NDArray[np.intp]:
    """Per (weighting, k): the ``k`` whose counts uniform votes' shares are (their AUC is
    counted, not sorted), 0 for the weightings whose shares are sorted."""
    uniform = np.array([w == "uniform" for w in weights])[:, None]
    return np.where(uniform, np.asarray(ks, dtype=np.intp)[None, :], 0)


def _sparse_width(n_classes: int, ks: Sequence[int]) -> int | None:
    """The columns of a unit's shares when fewer than the classes, else None."""
    width = share_width(n_classes, max(ks))
    return None if width == n_classes else width


def whole_fold_scores(
    truth: npt.NDArray[np.intp],
    predictions: npt.NDArray[np.intp],
    shares: VoteShares,
    weights: Sequence[str],
    ks: Sequence[int],
    n_classes: int,
) -> dict[str, npt.NDArray[np.float64]]:
    """The final scores of a fold (``(W, K)`` per name in :data:`SCORES`) from a unit that
    holds every one of its test rows (``truth``, more than one), as the board tallies them.

    A worker calls this where it computed the unit: only these numbers then go to
    the board, not the vote shares, and the sorts behind the AUC run on the pool
    instead of beside it."""
    if truth.size < 2:
        raise ValueError("a fold of one row is scored by the board (see Scoreboard)")
    grid = (len(weights), len(ks))
    tally = _Tally(truth, grid, n_classes, _sparse_width(n_classes, ks), _counted_ks(weights, ks))
    tally.add(0, predictions, shares)
    return tally.scores()


class Scoreboard:
    """Accumulates unit outputs; reports each (fold, search) as it completes.

    ``pooled`` also tallies every test row of a search, to score all its
    out-of-fold predictions at once on its last fold (for leave-one-out).
    ``k_max`` bounds the classes a row's shares hold (see :class:`VoteShares`).
    """

    def __init__(
        self,
        *,
        labels: npt.NDArray[np.intp],
        test_order: npt.NDArray[np.intp],
        fold_sizes: list[int],
        searches: tuple[tuple[str | None, str], ...],
        weights: Sequence[str],
        ks: Sequence[int],
        n_classes: int,
        pooled: bool = False,
    ) -> None:
        # ``test_order`` holds each fold's test rows in turn; a row may recur in overlapping folds.
        self._truth = np.asarray(labels[test_order], dtype=np.intp)
        self._search_index = {search: i for i, search in enumerate(searches)}
        self._fold_of_position = np.repeat(np.arange(len(fold_sizes)), fold_sizes)
        self._fold_start = np.concatenate([[0], np.cumsum(fold_sizes)]).astype(np.intp)
        self._fold_sizes = np.asarray(fold_sizes, dtype=np.int64)
        self._grid = (len(weights), len(ks))
        self._classes = n_classes
        self._width = _sparse_width(n_classes, ks)
        self._counted = _counted_ks(weights, ks)
        self._seen = np.zeros((len(searches), len(fold_sizes)), dtype=np.int64)
        self.pooled = pooled
        self._open: dict[tuple[int, int], _Tally] = {}  # (search, fold) -> its tally
        self._pooled: dict[int, _Tally] = {}
        self._confusion: dict[int, npt.NDArray[np.int64]] = {}  # search -> over its folds
        self._keeps_confusion = n_classes <= CONFUSION_CLASSES

    def add(self, output: UnitOutput) -> list[FoldScores]:
        """Count one unit's predictions; return the (fold, search) pairs it completed."""
        unit = output.unit
        search = self._search_index[(unit.scale, unit.metric)]
        folds = self._fold_of_position[unit.start : unit.stop]
        predictions = output.predictions.astype(np.intp)  # (W, K, rows)
        fold_scores = output.scores  # a whole fold's, scored where it was computed
        if fold_scores is not None and (self.pooled or unit.rows != self._fold_sizes[unit.fold]):
            raise ValueError(f"unit {unit.id}: scored as a whole fold, which it is not")
        if self._keeps_confusion:
            self._count_confusion(search, self._truth[unit.start : unit.stop], predictions)
        if fold_scores is not None:
            self._seen[search, unit.fold] += unit.rows
            return self._last_of_search(search, [FoldScores(unit.fold, search, fold_scores)])
        shares = output.shares
        if shares is None:
            raise ValueError(f"unit {unit.id}: neither scores nor vote shares")
        if self.pooled:
            tally = self._pooled.get(search)
            if tally is None:
                tally = self._pooled[search] = self._tally(self._truth)
            tally.add(unit.start, predictions, shares)
        scored = []
        one_row = self._one_row_scores(unit.start, folds, predictions, shares)
        # positions run fold after fold: each fold's are one slice of the unit
        edges = [0, *(np.flatnonzero(np.diff(folds)) + 1), folds.size]
        for first, last in itertools.pairwise(edges):
            fold = int(folds[first])
            if one_row is not None and self._fold_sizes[fold] == 1:
                self._seen[search, fold] += 1
                scored.append(FoldScores(fold, search, one_row(first)))
                continue
            begin, end = self._fold_start[fold], self._fold_start[fold + 1]
            tally = self._open.get((search, fold))
            if tally is None:
                tally = self._open[(search, fold)] = self._tally(self._truth[begin:end])
            at = unit.start + first - begin
            tally.add(at, predictions[..., first:last], _rows(shares, first, last))
            self._seen[search, fold] += last - first
            if self._seen[search, fold] == self._fold_sizes[fold]:
                del self._open[(search, fold)]
                scored.append(FoldScores(fold, search, tally.scores()))
        return self._last_of_search(search, scored)

    def _last_of_search(self, search: int, scored: list[FoldScores]) -> list[FoldScores]:
        """``scored``, its last fold carrying the search's totals if that was its last."""
        if scored and (self._seen[search] == self._fold_sizes).all():
            final: dict[str, Any] = {"confusion": self._confusion.pop(search, None)}
            if self.pooled:
                final["pooled"] = self._pooled.pop(search).scores()
            scored[-1] = dataclasses.replace(scored[-1], **final)
        return scored

    def _one_row_scores(
        self,
        start: int,
        folds: npt.NDArray[np.intp],
        predictions: npt.NDArray[np.intp],
        shares: VoteShares,
    ) -> Callable[[int], dict[str, npt.NDArray[np.float64]]] | None:
        """Scores of the unit's one-row folds (leave-one-out) at a position, or None if it
        has none: of one row every confusion score is its hit (1 or 0), its AUC is
        undefined and its log loss that of its true class's share. No tally needed,
        which with many classes would cost more than all the rest."""
        if not (self._fold_sizes[folds] == 1).any():
            return None
        truth = self._truth[start : start + folds.size]
        hits = (predictions == truth).astype(np.float64)
        eps = np.finfo(np.float64).eps
        losses = np.log(np.clip(shares.of(truth), eps, 1 - eps))
        undefined = np.full(self._grid, np.nan)

        def scores(position: int) -> dict[str, npt.NDArray[np.float64]]:
            hit = hits[..., position]
            found = {name: hit for name in CONFUSION_SCORES}
            return {**found, "roc_auc_ovr": undefined, "neg_log_loss": losses[..., position]}

        return scores

    def _count_confusion(
        self, search: int, truth: npt.NDArray[np.intp], predictions: npt.NDArray[np.intp]
    ) -> None:
        c = self._classes
        confusion = self._confusion.get(search)
        if confusion is None:
            confusion = self._confusion[search] = np.zeros((*self._grid, c, c), dtype=np.int64)
        codes = np.ascontiguousarray(predictions.reshape(-1, truth.size))
        _kernels.tally_codes(codes, truth, c, _NO_COUNTS, _NO_COUNTS, confusion.reshape(-1, c, c))

    def _tally(self, truth: npt.NDArray[np.intp]) -> _Tally:
        return _Tally(truth, self._grid, self._classes, self._width, self._counted)


def _rows(shares: VoteShares, first: int, last: int) -> VoteShares:
    classes = None if shares.classes is None else shares.classes[first:last]
    return VoteShares(shares.values[:, :, first:last], classes)
