"""Votes for every ``k`` and weighting from one sorted neighbour list.

Class counts are accumulated along the neighbour axis once (a cumulative sum),
so the prediction for any ``k`` is one ``argmax`` over the counts of the first
``k`` neighbours. ``argmax`` returns the first maximum, which gives a tie to
the smallest class code, as scikit-learn does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["EveryKVotes", "class_votes", "neighbour_weights", "predict_every_k", "vote_every_k"]


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


@dataclass(frozen=True)
class EveryKVotes:
    """Predicted codes ``(W, K, rows)`` and vote shares ``(W, K, rows, classes)``."""

    predictions: npt.NDArray[np.int16]
    shares: npt.NDArray[np.float64]


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
    Neighbours must be sorted nearest first; ``ks`` may not exceed their count.
    """
    rows, depth = neighbour_labels.shape
    k_index = np.asarray(ks, dtype=np.intp) - 1
    one_hot = np.zeros((rows, depth, n_classes), dtype=np.float64)
    one_hot[np.arange(rows)[:, None], np.arange(depth)[None, :], neighbour_labels] = 1.0
    predictions = np.empty((len(weightings), len(ks), rows), dtype=np.int16)
    shares = np.empty((len(weightings), len(ks), rows, n_classes), dtype=np.float64)
    for w, weighting in enumerate(weightings):
        weight = neighbour_weights(neighbour_distances, weighting)
        votes = np.cumsum(one_hot * weight[:, :, None], axis=1)[:, k_index, :]  # rows, K, C
        predictions[w] = votes.argmax(axis=2).T
        shares[w] = (votes / votes.sum(axis=2, keepdims=True)).transpose(1, 0, 2)
    return EveryKVotes(predictions, shares)


def predict_every_k(
    neighbour_labels: npt.NDArray[np.intp],
    neighbour_distances: npt.NDArray[np.float64],
    ks: Sequence[int],
    weightings: Sequence[str],
    n_classes: int,
) -> npt.NDArray[np.int16]:
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
    sums, to the last bit, as the cumulative counts :func:`predict_every_k`
    scores (and as scikit-learn's ``predict_proba`` accumulates them), so
    ``argmax`` gives the class the tuning scored.
    """
    rows = np.arange(neighbour_labels.shape[0])
    weight = neighbour_weights(neighbour_distances, weighting)
    votes = np.zeros((neighbour_labels.shape[0], n_classes), dtype=np.float64)
    for j in range(neighbour_labels.shape[1]):
        votes[rows, neighbour_labels[:, j]] += weight[:, j]
    return votes
