"""Confusion matrices per candidate and fold, and the scores derived from them.

Unit predictions are folded into one integer array of shape
``(searches, folds, weights, ks, classes, classes)`` with one
``np.add.at``, a search being one (scaling, metric). When every test row of
a (fold, search) has been seen, that fold's scores for all of the search's
candidates are final.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .neighbours import UnitOutput

__all__ = ["SCORES", "FoldScores", "Scoreboard", "scores_from_confusion"]


SCORES = (
    "accuracy",
    "balanced_accuracy",
    "f1_macro",
    "f1_weighted",
    "precision_macro",
    "recall_macro",
)
"""Every score a candidate carries per fold (scikit-learn's scorer names), all from one
confusion matrix; ``--scoring`` picks the one that ranks."""


@dataclass(frozen=True)
class FoldScores:
    """Final scores of one (fold, search) for every (weighting, k): arrays of shape ``(W, K)``.

    ``search`` indexes :attr:`SearchSpace.searches`, the (scaling, metric) pairs;
    ``scores`` holds one such array per name in :data:`SCORES`.
    """

    fold: int
    search: int
    scores: dict[str, npt.NDArray[np.float64]]

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


class Scoreboard:
    """Accumulates unit outputs; reports each (fold, search) as it completes."""

    def __init__(
        self,
        *,
        labels: npt.NDArray[np.intp],
        test_order: npt.NDArray[np.intp],
        fold_sizes: list[int],
        searches: tuple[tuple[str | None, str], ...],
        n_weights: int,
        n_ks: int,
        n_classes: int,
    ) -> None:
        self._labels = labels
        self._test_order = test_order
        self._search_index = {search: i for i, search in enumerate(searches)}
        n_folds = len(fold_sizes)
        # ``test_order`` holds each fold's test rows in turn; a row may recur in overlapping folds.
        self._fold_of_position = np.repeat(np.arange(n_folds), fold_sizes)
        self._shape = (len(searches), n_folds, n_weights, n_ks, n_classes, n_classes)
        self.confusion = np.zeros(self._shape, dtype=np.int64)
        self._fold_sizes = np.asarray(fold_sizes, dtype=np.int64)
        self._seen = np.zeros((len(searches), n_folds), dtype=np.int64)

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
        self._seen[search] += np.bincount(folds, minlength=n_folds)
        completed = [int(f) for f in touched if self._seen[search, f] == self._fold_sizes[f]]
        return [self._fold_scores(int(f), search) for f in completed]

    def _fold_scores(self, fold: int, search: int) -> FoldScores:
        return FoldScores(fold, search, scores_from_confusion(self.confusion[search, fold]))
