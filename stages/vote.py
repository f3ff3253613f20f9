"""Votes for every ``k`` and weighting from one sorted neighbour list.

Class votes are accumulated along the neighbour axis once, nearest first (the
compiled :func:`stages._kernels.vote`: a loop NumPy can only express through a
rows x neighbours x classes one-hot array, at twice the time), so the
prediction for any ``k`` is the first maximum of the votes of the first ``k``
neighbours, which gives a tie to the smallest class code, as scikit-learn does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from . import _kernels

__all__ = [
    "EveryKVotes",
    "VoteShares",
    "class_votes",
    "neighbour_weights",
    "normalise",
    "predict_every_k",
    "share_width",
    "vote_every_k",
]


def neighbour_weights(distances: npt.NDArray[np.float64], weights: str) -> npt.NDArray[np.float64]:
    """Vote weight of each neighbour; ``distance`` is 1/d, and exact matches win outright.

    As in scikit-learn, a row with a neighbour at distance 0 votes with its
    zero-distance neighbours only (weight 1 each).
    """
    if weights == "uniform":
        return np.ones_like(distances)
    if weights != "distance":
        raise ValueError(f"unknown weighting {weights!r}")
    with np.errstate(divide="ignore"):
        inverse = 1.0 / distances
    exact = np.isinf(inverse)
    has_exact = exact.any(axis=1)
    inverse[has_exact] = exact[has_exact]
    return inverse


_FEW_CLASSES = 7
"""Up to this many columns a row's total is added column by column (see :func:`normalise`)."""


def normalise(votes: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Divide each row of summed weights (the last axis) by its total, in place.

    The totals are added class after class, the order in which NumPy's ``sum``
    adds a short last axis, and in which scikit-learn's ``predict_proba`` thus
    divides; NumPy's own reduction costs about 15 times as much over an axis of
    a few classes. Every share of ours, tuned or predicted, is made here.
    """
    width = votes.shape[-1]
    if width > _FEW_CLASSES:
        votes /= votes.sum(axis=-1, keepdims=True)
        return votes
    total = votes[..., 0].copy()
    for column in range(1, width):
        total += votes[..., column]
    votes /= total[..., None]
    return votes


@dataclass(frozen=True)
class VoteShares:
    """Vote shares ``(W, K, rows, width)`` of the classes a row's neighbours hold.

    A row's votes go to at most ``k_max`` classes, so with more classes than
    that only those are kept: ``classes[row]`` lists them in ascending code
    order (``-1`` pads a row with fewer) and ``values[..., row, j]`` is the share of
    ``classes[row, j]``. Every other class has share 0. With ``classes`` ``None`` the
    columns are all the classes, column ``c`` for class ``c`` (the usual case: fewer
    classes than neighbours). Memory grows with ``k_max``, not with the classes.
    """

    values: npt.NDArray[np.float64]
    classes: npt.NDArray[np.int32] | None = None
    counted: tuple[int, ...] = ()
    """Series along the first axis whose shares are neighbour counts over ``k``
    (uniform votes): pickled as those counts, one byte each up to ``k`` 255."""
    ks: tuple[int, ...] = ()
    """The ``k`` of each series along the second axis, when ``counted`` names some."""

    def __post_init__(self) -> None:
        if self.counted and len(self.ks) != self.values.shape[1]:
            raise ValueError(f"ks: {len(self.ks)} values for {self.values.shape[1]} series")

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled compactly: a unit's shares cross a pipe to the parent, and uniform
        votes' are exactly ``count / k``, so their counts travel instead and the same
        division rebuilds them to the last bit."""
        if not self.counted or max(self.ks) > np.iinfo(np.uint16).max:
            return (VoteShares, (self.values, self.classes))
        counted = list(self.counted)
        kept = [w for w in range(self.values.shape[0]) if w not in self.counted]
        ks = np.asarray(self.ks, dtype=np.float64)[:, None, None]
        counts = np.rint(self.values[counted] * ks)  # c / k * k rounds back to c
        small = counts.astype(np.uint8 if max(self.ks) <= np.iinfo(np.uint8).max else np.uint16)
        return (_rebuilt, (self.values[kept], small, self.counted, self.ks, self.classes))

    @property
    def rows(self) -> int:
        return int(self.values.shape[-2])

    def of(self, codes: npt.NDArray[np.intp]) -> npt.NDArray[np.float64]:
        """The share of class ``codes[row]`` in each row, shape ``(..., rows)``."""
        rows = np.arange(self.rows)
        if self.classes is None:
            return np.asarray(self.values[..., rows, codes])
        match = self.classes == np.asarray(codes)[:, None]
        column = match.argmax(axis=1)
        return np.where(match.any(axis=1), self.values[..., rows, column], 0.0)

    def column(self, code: int) -> npt.NDArray[np.float64]:
        """The share of class ``code`` in every row, shape ``(..., rows)``."""
        if self.classes is None:
            return np.asarray(self.values[..., code])
        row, place = np.nonzero(self.classes == code)
        column = np.zeros(self.values.shape[:-1])
        column[..., row] = self.values[..., row, place]
        return column

    @classmethod
    def from_dense(cls, dense: npt.NDArray[np.float64], width: int) -> VoteShares:
        """Shares of every class ``(..., rows, classes)`` in ``width`` columns: per row, the
        classes with a share in some series (``ValueError`` if more than ``width``)."""
        n_classes = dense.shape[-1]
        if width >= n_classes:
            return cls(dense)
        held = (dense > 0).reshape(-1, *dense.shape[-2:]).any(axis=0)  # rows, classes
        if held.sum(axis=1).max(initial=0) > width:
            raise ValueError(f"width: a row has shares in more than {width} classes")
        order = np.argsort(~held, axis=1, kind="stable")[:, :width]  # held first, ascending
        classes = np.where(np.take_along_axis(held, order, axis=1), order, -1).astype(np.int32)
        values = dense[..., np.arange(dense.shape[-2])[:, None], order]
        return cls(values * (classes >= 0), classes)

    def dense(self, n_classes: int) -> npt.NDArray[np.float64]:
        """Every class's share, ``(..., rows, n_classes)`` (for small results and tests)."""
        if self.classes is None:
            return self.values
        dense = np.zeros((*self.values.shape[:-1], n_classes + 1))  # the last takes the pads
        dense[..., np.arange(self.rows)[:, None], self.classes] = self.values
        return dense[..., :n_classes]


def _rebuilt(
    kept: npt.NDArray[np.float64],
    counts: npt.NDArray[np.unsignedinteger[Any]],
    counted: tuple[int, ...],
    ks: tuple[int, ...],
    classes: npt.NDArray[np.int32] | None,
) -> VoteShares:
    """The :class:`VoteShares` that :meth:`VoteShares.__reduce__` took apart."""
    series = kept.shape[0] + counts.shape[0]
    values = np.empty((series, *counts.shape[1:]), dtype=np.float64)
    values[[w for w in range(series) if w not in counted]] = kept
    values[list(counted)] = counts / np.asarray(ks, dtype=np.float64)[:, None, None]
    return VoteShares(values, classes, counted, ks)


def share_width(n_classes: int, k_max: int) -> int:
    """Columns of a unit's :class:`VoteShares`: every class, or ``k_max`` when fewer."""
    return min(n_classes, k_max)


@dataclass(frozen=True)
class EveryKVotes:
    """Predicted codes ``(W, K, rows)`` and the vote shares behind them."""

    predictions: npt.NDArray[np.int32]
    shares: VoteShares


def _row_classes(
    labels: npt.NDArray[np.intp], width: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.int32]]:
    """Each neighbour's column among its row's distinct classes, and those classes
    ascending (``-1`` pads), so the first maximum is still the smallest class code."""
    order = np.argsort(labels, axis=1, kind="stable")
    ordered = np.take_along_axis(labels, order, axis=1)
    new = np.ones(ordered.shape, dtype=bool)
    new[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    rank = np.cumsum(new, axis=1) - 1
    classes = np.full((labels.shape[0], width), -1, dtype=np.int32)
    classes[np.arange(labels.shape[0])[:, None], rank] = ordered
    columns = np.empty_like(rank)
    np.put_along_axis(columns, order, rank, axis=1)
    return columns, classes


def vote_every_k(
    neighbour_labels: npt.NDArray[np.intp],
    neighbour_distances: npt.NDArray[np.float64],
    ks: Sequence[int],
    weightings: Sequence[str],
    n_classes: int,
) -> EveryKVotes:
    """The class and the vote shares of every row for each weighting and ``k``.

    Shares are the summed weights divided by their total, as scikit-learn's
    ``predict_proba`` divides them; the class is the ``argmax`` of the summed
    weights themselves, so dividing never changes which class wins.
    Neighbours must be sorted nearest first; ``ks`` (in any order, repeats allowed)
    may not exceed their count.
    """
    rows, depth = neighbour_labels.shape
    width = share_width(n_classes, depth)
    columns, classes = np.ascontiguousarray(neighbour_labels, dtype=np.intp), None
    if width < n_classes:
        columns, classes = _row_classes(columns, width)
    given = np.asarray(ks, dtype=np.intp)
    distinct, where = np.unique(given, return_inverse=True)
    predictions = np.empty((len(weightings), len(ks), rows), dtype=np.int32)
    shares = np.empty((len(weightings), len(ks), rows, width), dtype=np.float64)
    winners = np.empty((distinct.size, rows), dtype=np.intp)
    # ks ascending and distinct (the usual case) are voted straight into the shares
    votes = None if np.array_equal(distinct, given) else np.empty((distinct.size, rows, width))
    for w, weighting in enumerate(weightings):
        weight = neighbour_weights(neighbour_distances, weighting)
        weight = np.ascontiguousarray(weight, dtype=np.float64)  # float32 distances too
        if votes is None:
            _kernels.vote(columns, weight, distinct, winners, shares[w])
            winner = winners
        else:  # each distinct k voted once, then placed where the ks name it
            _kernels.vote(columns, weight, distinct, winners, votes)
            shares[w] = votes[where]
            winner = winners[where]
        predictions[w] = winner if classes is None else classes[np.arange(rows)[None, :], winner]
        normalise(shares[w])
    uniform = tuple(w for w, weighting in enumerate(weightings) if weighting == "uniform")
    return EveryKVotes(predictions, VoteShares(shares, classes, uniform, tuple(map(int, ks))))


def predict_every_k(
    neighbour_labels: npt.NDArray[np.intp],
    neighbour_distances: npt.NDArray[np.float64],
    ks: Sequence[int],
    weightings: Sequence[str],
    n_classes: int,
) -> npt.NDArray[np.int32]:
    """Predicted class codes, shape ``(len(weightings), len(ks), rows)``."""
    votes = vote_every_k(neighbour_labels, neighbour_distances, ks, weightings, n_classes)
    return votes.predictions


def class_votes(
    neighbour_labels: npt.NDArray[np.intp],
    neighbour_distances: npt.NDArray[np.float64],
    weighting: str,
    n_classes: int,
) -> npt.NDArray[np.float64]:
    """Summed vote weight per class, shape ``(rows, n_classes)``, over all given neighbours.

    The weights are added nearest first, one neighbour at a time: the same
    sums, to the last bit, as the votes :func:`predict_every_k` scores (and as
    scikit-learn's ``predict_proba`` accumulates them), so
    ``argmax`` gives the class the tuning scored.
    """
    rows = np.arange(neighbour_labels.shape[0])
    weight = neighbour_weights(neighbour_distances, weighting)
    votes = np.zeros((neighbour_labels.shape[0], n_classes), dtype=np.float64)
    for j in range(neighbour_labels.shape[1]):
        votes[rows, neighbour_labels[:, j]] += weight[:, j]
    return votes
