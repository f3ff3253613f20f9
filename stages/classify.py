"""Classify a block of new samples against a model's training rows: what a worker runs.

:func:`classify_block` is the prediction counterpart of
:func:`stages.neighbours.compute_unit`: a plain module-level function that
any executor can run, with the same kernel and the same vote. It receives
:class:`ModelInputs` (small handles to the training rows, placed once in
shared memory for a process pool, or carried inline for threads) and one
block of samples, and returns class codes and, if asked, vote shares.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline.shared import ArrayRef

from .kernels import kneighbors
from .missing import fill
from .scaling import FittedScale
from .vote import class_votes, normalise

__all__ = ["Classified", "ModelInputs", "classify_block", "neighbours_of_block"]


@dataclass(frozen=True)
class ModelInputs:
    """What every block of a prediction shares: the training rows and the parameters.

    ``X_t`` is the training matrix as the kernel reads it (features x rows, in
    the model's precision, already scaled); ``fill_values`` fills missing
    feature values of the samples, as the model's missing-value policy filled
    its own rows, and ``scaler`` scales them as the training rows were.
    """

    X_t: ArrayRef
    y: ArrayRef
    k: int
    metric: str
    weights: str
    n_classes: int
    fill_values: ArrayRef | None = None
    scaler: FittedScale | None = None


@dataclass(frozen=True)
class Classified:
    """Predicted class codes of one block, and vote shares per class when asked for."""

    codes: npt.NDArray[np.intp]
    proba: npt.NDArray[np.float64] | None
    seconds: float


def _queries(inputs: ModelInputs, samples: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    queries = np.asarray(samples, dtype=np.float64)
    if inputs.fill_values is not None:
        queries = fill(queries, inputs.fill_values.attach())
    if inputs.scaler is not None:
        queries = inputs.scaler.apply(queries)
    return queries


def neighbours_of_block(
    inputs: ModelInputs, samples: npt.NDArray[Any], k: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.intp]]:
    """Distances and training-row indices of each sample's ``k`` nearest, nearest first."""
    columns, distances = kneighbors(
        inputs.metric, _queries(inputs, samples), inputs.X_t.attach(), k
    )
    return distances.astype(np.float64, copy=False), columns


def classify_block(
    inputs: ModelInputs, samples: npt.NDArray[Any], proba: bool = False
) -> Classified:
    """Class codes (a vote tie goes to the smallest code) and optional vote shares."""
    started = time.perf_counter()
    distances, columns = neighbours_of_block(inputs, samples, inputs.k)
    votes = class_votes(inputs.y.attach()[columns], distances, inputs.weights, inputs.n_classes)
    codes = votes.argmax(axis=1)
    shares = normalise(votes) if proba else None  # votes are not needed after the codes
    return Classified(codes, shares, time.perf_counter() - started)
