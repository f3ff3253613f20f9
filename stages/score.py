"""Confusion matrices and vote shares per candidate and fold, and the scores derived from them.

Unit predictions are folded into one integer array of shape
``(searches, folds, weights, ks, classes, classes)`` with one
``np.add.at``, a search being one (scaling, metric); the vote shares of a
fold's test rows are kept until the fold is complete. When every test row of
a (fold, search) has been seen, that fold's scores for all of the search's
candidates are final: those of the confusion matrix, and from the shares
``roc_auc_ovr`` and ``neg_log_loss`` (scikit-learn's scorers on
``predict_proba``).

Leave-one-out folds hold one row, where a per-fold F1 or AUC means nothing:
the board then also scores all out-of-fold predictions at once
(``pooled``, as ``cross_val_predict`` and then the metric).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .neighbours import UnitOutput

__all__ = [
    "CONFUSION_SCORES",
    "SCORES",
    "SHARE_SCORES",
    "FoldScores",
    "Scoreboard",
    "scores_from_confusion",
    "scores_from_shares",
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

    @property
    def accuracy(self) -> npt.NDArray[np.float64]:
        return self.scores["accuracy"]


def scores_from_confusion(confusion: npt.NDArray[np.int64]) -> dict[str, npt.NDArray[np.float64]]:
    """Every score of :data:`SCORES` over the last two axes (true, predicted).

    Follow scikit-learn: balanced accuracy averages recall over classes present
    in the truth; the macro averages run over classes present in truth or
    prediction, an undefined precision, recall or F1 counting as 0; the
    weighted F1 weighs each class by its support.
    """
    confusion = confusion.astype(np.float64)
    hits = np.diagonal(confusion, axis1=-2, axis2=-1)
    support = confusion.sum(axis=-1)
    predicted = confusion.sum(axis=-2)
    total = support.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, hits / support, 0.0)
        precision = np.where(predicted > 0, hits / predicted, 0.0)
        denominator = support + predicted
        f1 = np.where(denominator > 0, 2.0 * hits / denominator, 0.0)
        present = np.count_nonzero(denominator > 0, axis=-1)
        return {
            "accuracy": hits.sum(axis=-1) / total,
            "balanced_accuracy": recall.sum(axis=-1) / np.count_nonzero(support > 0, axis=-1),
            "f1_macro": f1.sum(axis=-1) / present,
            "f1_weighted": (f1 * support).sum(axis=-1) / total,
            "precision_macro": precision.sum(axis=-1) / present,
            "recall_macro": recall.sum(axis=-1) / present,
        }


def scores_from_shares(
    shares: npt.NDArray[np.float64],
    truth: npt.NDArray[np.intp],
    counted: npt.NDArray[np.intp] | None = None,
) -> dict[str, npt.NDArray[np.float64]]:
    """``roc_auc_ovr`` and ``neg_log_loss`` of shares ``(..., rows, classes)`` for ``truth``.

    As scikit-learn's scorers: the log loss clips each true class's share to
    ``[eps, 1 - eps]`` (all classes are the labels, so a fold may lack some);
    the AUC is one-vs-rest, macro-averaged (binary: of the second class's
    share), and undefined (NaN) where a class has no positive or no negative row,
    where scikit-learn's scorer raises and ``GridSearchCV`` records NaN.

    ``counted`` (shape ``shares.shape[:-2]``) may give, per series, the ``k`` of
    uniform votes, whose shares are counts over ``k``: their AUC is then
    counted, not sorted (0: sort).
    """
    rows, n_classes = shares.shape[-2:]
    eps = np.finfo(np.float64).eps
    true_share = shares[..., np.arange(rows), truth]
    loss = -np.log(np.clip(true_share, eps, 1 - eps))
    neg_log_loss = -np.mean(loss, axis=-1)
    classes = [1] if n_classes == 2 else range(n_classes)
    auc = np.zeros(shares.shape[:-2])
    series = shares.reshape(-1, rows, n_classes)
    by_count = np.zeros(series.shape[0], dtype=np.intp)
    if counted is not None:
        by_count = np.asarray(counted, dtype=np.intp).reshape(-1)
    counting, sorting = np.flatnonzero(by_count > 0), np.flatnonzero(by_count == 0)
    flat_auc = np.zeros(series.shape[0])
    for c in classes:
        positive = truth == c
        class_shares = np.ascontiguousarray(series[:, :, c])
        if counting.size:
            flat_auc[counting] += _counted_auc(class_shares[counting], by_count[counting], positive)
        if sorting.size:
            flat_auc[sorting] += _binary_auc(class_shares[sorting], positive)
    auc = flat_auc.reshape(shares.shape[:-2]) / len(classes)
    return {"roc_auc_ovr": auc, "neg_log_loss": neg_log_loss}


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
    flat = scores.reshape(-1, scores.shape[-1])
    negatives = np.sort(flat[:, ~positive], axis=1)
    positives = np.sort(flat[:, positive], axis=1)  # sorted keys: searchsorted walks on
    right = np.empty(flat.shape[0])
    for series in range(flat.shape[0]):
        below = np.searchsorted(negatives[series], positives[series], side="left")
        not_above = np.searchsorted(negatives[series], positives[series], side="right")
        right[series] = below.sum() + 0.5 * (not_above - below).sum()
    return (right / (n_pos * n_neg)).reshape(scores.shape[:-1])


class Scoreboard:
    """Accumulates unit outputs; reports each (fold, search) as it completes.

    ``pooled`` keeps every test row's shares until a search's last fold, to
    score all its out-of-fold predictions at once (for leave-one-out).
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
        self._labels = labels
        self._test_order = test_order
        self._search_index = {search: i for i, search in enumerate(searches)}
        n_folds = len(fold_sizes)
        # ``test_order`` holds each fold's test rows in turn; a row may recur in overlapping folds.
        self._fold_of_position = np.repeat(np.arange(n_folds), fold_sizes)
        self._fold_start = np.concatenate([[0], np.cumsum(fold_sizes)]).astype(np.intp)
        self._shape = (len(searches), n_folds, len(weights), len(ks), n_classes, n_classes)
        # uniform votes' shares are counts over k: their AUC is counted, not sorted
        uniform = np.array([w == "uniform" for w in weights])[:, None]
        self._counted = np.where(uniform, np.asarray(ks, dtype=np.intp)[None, :], 0)
        self.confusion = np.zeros(self._shape, dtype=np.int64)
        self._fold_sizes = np.asarray(fold_sizes, dtype=np.int64)
        self._seen = np.zeros((len(searches), n_folds), dtype=np.int64)
        self.pooled = pooled
        # Shares of test positions, (W, K, positions, C): per (search, fold) until that fold
        # is scored, or per search over all positions when pooled.
        self._shares: dict[tuple[int, int], npt.NDArray[np.float64]] = {}

    def add(self, output: UnitOutput) -> list[FoldScores]:
        """Count one unit's predictions; return the (fold, search) pairs it completed."""
        unit = output.unit
        search = self._search_index[(unit.scale, unit.metric)]
        rows = self._test_order[unit.start : unit.stop]
        folds = self._fold_of_position[unit.start : unit.stop]
        truth = self._labels[rows]
        _, n_folds, n_weights, n_ks, n_classes, _ = self._shape
        predictions = output.predictions.astype(np.int64)  # (W, K, rows)
        w = np.arange(n_weights)[:, None, None]
        k = np.arange(n_ks)[None, :, None]
        flat = (
            ((((search * n_folds + folds[None, None, :]) * n_weights + w) * n_ks + k) * n_classes)
            + truth[None, None, :]
        ) * n_classes + predictions
        np.add.at(self.confusion.reshape(-1), flat.ravel(), 1)
        touched = np.unique(folds)
        self._keep_shares(search, unit.start, folds, touched, output.shares)
        self._seen[search] += np.bincount(folds, minlength=n_folds)
        completed = [int(f) for f in touched if self._seen[search, f] == self._fold_sizes[f]]
        scored = [self._fold_scores(f, search) for f in completed]
        if scored and self.pooled and (self._seen[search] == self._fold_sizes).all():
            scored[-1] = dataclasses.replace(scored[-1], pooled=self._pooled_scores(search))
            del self._shares[(search, -1)]
        return scored

    def _keep_shares(
        self,
        search: int,
        start: int,
        folds: npt.NDArray[np.intp],
        touched: npt.NDArray[np.intp],
        shares: npt.NDArray[np.float64],
    ) -> None:
        if self.pooled:
            store = self._store(search, -1, int(self._fold_start[-1]), shares)
            store[:, :, start : start + folds.size] = shares
            return
        for fold in touched:  # positions run fold after fold: each fold's are one slice
            first, last = np.flatnonzero(folds == fold)[[0, -1]]
            store = self._store(search, int(fold), int(self._fold_sizes[fold]), shares)
            offset = start - self._fold_start[fold]
            store[:, :, offset + first : offset + last + 1] = shares[:, :, first : last + 1]

    def _store(
        self, search: int, fold: int, rows: int, like: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float64]:
        store = self._shares.get((search, fold))
        if store is None:
            shape = (like.shape[0], like.shape[1], rows, like.shape[3])
            store = self._shares[(search, fold)] = np.empty(shape)
        return store

    def _fold_shares(self, search: int, fold: int) -> npt.NDArray[np.float64]:
        if self.pooled:
            stop, start = self._fold_start[fold + 1], self._fold_start[fold]
            return self._shares[(search, -1)][:, :, start:stop]
        return self._shares.pop((search, fold))

    def _fold_scores(self, fold: int, search: int) -> FoldScores:
        scores = scores_from_confusion(self.confusion[search, fold])
        start, stop = self._fold_start[fold], self._fold_start[fold + 1]
        truth = self._labels[self._test_order[start:stop]]
        shares = self._fold_shares(search, fold)
        scores.update(scores_from_shares(shares, truth, self._counted))
        return FoldScores(fold, search, scores)

    def _pooled_scores(self, search: int) -> dict[str, npt.NDArray[np.float64]]:
        scores = scores_from_confusion(self.confusion[search].sum(axis=0))
        truth = self._labels[self._test_order]
        scores.update(scores_from_shares(self._shares[(search, -1)], truth, self._counted))
        return scores
