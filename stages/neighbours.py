"""The CPU work of one unit, run in a pool worker.

:func:`compute_unit` is a plain module-level function so any executor can run
it. It receives small handles (:class:`UnitInputs`) rather than the data set,
attaches the shared arrays once per worker, and returns only the predicted
class codes for every candidate: a small array, not Python objects per sample.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline.shared import ArrayRef

from .kernels import DTYPES, kneighbors, transposed
from .missing import fill, fit_fill_values
from .plan import MASKED, WorkUnit
from .scaling import FittedScale, fit_scale
from .score import whole_fold_scores
from .vote import EveryKVotes, VoteShares, vote_every_k

__all__ = [
    "PRECISIONS",
    "WORKER_PRELOAD",
    "UnitInputs",
    "UnitOutput",
    "compute_unit",
    "release_run",
]

log = logging.getLogger(__name__)

WORKER_PRELOAD = ("stages.neighbours",)
"""Imported once in the forkserver, so each worker starts with NumPy and the kernels loaded."""

PRECISIONS = ("float64", "float32")
"""Arithmetic of the distances: float64 is exact (scikit-learn's numbers), float32 faster."""


@dataclass(frozen=True)
class UnitInputs:
    """What every unit of a run shares: array handles and the search grid."""

    token: str
    X: ArrayRef
    y: ArrayRef
    fold_of_row: ArrayRef
    test_order: ArrayRef
    ks: tuple[int, ...]
    weights: tuple[str, ...]
    n_classes: int
    impute: str | None = None
    precision: str = "float64"
    train_rows: ArrayRef | None = None  # folds' training rows, when not the complement
    train_offsets: tuple[int, ...] = ()
    one_hot: tuple[int, int] | None = None  # X's one-hot columns (start, stop), if any
    fold_starts: tuple[int, ...] = ()
    """Where each fold's test rows start in ``test_order``, and where the last ends: a
    unit holding all of a fold's rows (more than one) is then scored in the worker
    (see :attr:`UnitOutput.scores`). Empty: every unit sends its vote shares."""


@dataclass(frozen=True)
class UnitOutput:
    """Predictions of shape ``(len(weights), len(ks), unit.rows)`` for one unit, and the
    vote shares behind them, or its fold's scores.

    Computed, the predicted codes come in the smallest unsigned type that holds every
    class (one byte up to 256 classes): every unit's output crosses a pipe to the
    parent."""

    unit: WorkUnit
    predictions: npt.NDArray[np.integer[Any]]
    shares: VoteShares | None
    seconds: float
    pid: int
    scores: dict[str, npt.NDArray[np.float64]] | None = None
    """The unit's fold's final scores, ``(W, K)`` by name, when the unit holds the whole
    fold and its inputs ask for it; its vote shares (the bulk of what crosses to the
    parent) are then not sent: ``shares`` is None."""


@dataclass(frozen=True)
class _TrainingSet:
    X_t: npt.NDArray[np.floating[Any]]  # transposed, in the run's precision, as the kernels read it
    y: npt.NDArray[np.intp]
    fill_values: npt.NDArray[np.float64] | None
    scaler: FittedScale | None = None
    unknown: npt.NDArray[np.intp] | None = None  # one-hot columns of categories not in training


_training_cache: dict[tuple[str, int, str | None], _TrainingSet] = {}
_folds_in_use: collections.Counter[tuple[str, int]] = collections.Counter()
"""Units running now in this process, per (run, fold): their training sets stay."""

_training_lock = threading.Lock()
"""A thread executor (KNNSearchCV's, or a Dask worker's threads) runs units side by
side in one process."""


@contextlib.contextmanager
def _training_set(
    inputs: UnitInputs, fold: int, scale: str | None = None
) -> Iterator[_TrainingSet]:
    """Training rows of ``fold`` (all rows for masked units), imputed and scaled as the
    unit says, kept per worker while units of the fold arrive.

    Units arrive fold-major, so a fold's training sets are dropped when a unit
    of another fold arrives and no unit of theirs is running: one fold at a
    time in a worker of one thread, the few folds its threads are at in one
    of many.
    """
    in_use = (inputs.token, fold)
    with _training_lock:
        _folds_in_use[in_use] += 1
        try:
            found = _cached_training_set(inputs, fold, scale)
        except BaseException:
            _release_fold(in_use)
            raise
    try:
        yield found
    finally:
        with _training_lock:
            _release_fold(in_use)


def _release_fold(in_use: tuple[str, int]) -> None:
    _folds_in_use[in_use] -= 1
    if _folds_in_use[in_use] <= 0:
        del _folds_in_use[in_use]


def _cached_training_set(inputs: UnitInputs, fold: int, scale: str | None) -> _TrainingSet:
    key = (inputs.token, fold, scale)
    for cached in list(_training_cache):
        if cached[:2] != key[:2] and cached[:2] not in _folds_in_use:
            del _training_cache[cached]  # a fold no unit here is at any more
    hit = _training_cache.get(key)
    if hit is not None:
        return hit
    X, y = inputs.X.attach(), inputs.y.attach()
    precision = inputs.precision
    if fold == MASKED:
        found = _TrainingSet(transposed(X, precision), y, None)
    else:
        if inputs.train_rows is not None:
            start, stop = inputs.train_offsets[fold], inputs.train_offsets[fold + 1]
            train = inputs.train_rows.attach()[start:stop]
        else:
            train = np.flatnonzero(inputs.fold_of_row.attach() != fold)
        one_hot = None if inputs.one_hot is None else slice(*inputs.one_hot)
        if inputs.impute is None and scale in (None, "none") and one_hot is None:
            # straight into the kernels' layout, no row-major copy
            X_t = np.take(X.T, train, axis=1).astype(DTYPES[precision], copy=False)
            found = _TrainingSet(X_t, y[train], None)
        else:
            train_X = X[train]
            fill_values = None
            if inputs.impute is not None:
                fill_values = fit_fill_values(train_X, inputs.impute)
                train_X = fill(train_X, fill_values)
            scaler = fit_scale(scale or "none", train_X, keep=one_hot)
            unknown = None
            if one_hot is not None:  # what an encoder fitted on these rows would not know
                seen = train_X[:, one_hot].any(axis=0)
                unknown = np.flatnonzero(~seen) + one_hot.start
            if scaler is not None:
                train_X = scaler.apply(train_X)
            found = _TrainingSet(
                transposed(train_X, precision), y[train], fill_values, scaler, unknown
            )
    found.X_t.flags.writeable = False  # lets the kernels keep what they derive from it
    _training_cache[key] = found
    return found


def release_run(token: str) -> None:
    """Drop this process's training sets of the run ``token``: its units are done.

    Workers drop them when the next run's units arrive; the process that owns
    the pool (which computes units while its workers start) and a thread
    executor's process call this when the run ends, so no run's data stays.
    """
    with _training_lock:
        for cached in [key for key in _training_cache if key[0] == token]:
            del _training_cache[cached]


def compute_unit(inputs: UnitInputs, unit: WorkUnit) -> UnitOutput:
    """Distances from the unit's test rows to its training rows, top ``k_max``, every vote."""
    started = time.perf_counter()
    with _training_set(inputs, unit.fold, unit.scale) as training:
        votes = _votes(inputs, unit, training)
    scores = None
    if _holds_its_fold(inputs, unit):
        truth = inputs.y.attach()[inputs.test_order.attach()[unit.start : unit.stop]]
        scores = whole_fold_scores(
            np.asarray(truth, dtype=np.intp),
            votes.predictions.astype(np.intp),
            votes.shares,
            inputs.weights,
            inputs.ks,
            inputs.n_classes,
        )
    seconds = time.perf_counter() - started
    log.debug("unit %d: %d test rows, %s, %.3f s", unit.id, unit.rows, unit.metric, seconds)
    codes = np.min_scalar_type(max(inputs.n_classes - 1, 0))
    predictions = votes.predictions.astype(codes)
    shares = votes.shares if scores is None else None
    return UnitOutput(unit, predictions, shares, seconds, os.getpid(), scores)


def _holds_its_fold(inputs: UnitInputs, unit: WorkUnit) -> bool:
    """Whether the unit is to be scored here: it holds every test row of its fold (more
    than one), and the run asks for it (:attr:`UnitInputs.fold_starts`)."""
    if not inputs.fold_starts or unit.fold == MASKED or unit.rows < 2:
        return False
    return (unit.start, unit.stop) == inputs.fold_starts[unit.fold : unit.fold + 2]


def _votes(inputs: UnitInputs, unit: WorkUnit, training: _TrainingSet) -> EveryKVotes:
    X = inputs.X.attach()
    rows = inputs.test_order.attach()[unit.start : unit.stop]
    queries = X[rows]
    if training.fill_values is not None:
        queries = fill(queries, training.fill_values)
    if training.scaler is not None:
        queries = training.scaler.apply(queries)
    if training.unknown is not None and training.unknown.size:
        queries = queries.copy() if queries.base is X else queries
        queries[:, training.unknown] = 0.0  # unseen categories: all zeros, as "ignore" has it
    query_groups = point_groups = None
    if unit.fold == MASKED:  # a test row's own fold is not its training set
        point_groups = inputs.fold_of_row.attach().astype(np.intp, copy=False)
        query_groups = point_groups[rows]
    columns, nearest_distances = kneighbors(
        unit.metric,
        queries,
        training.X_t,
        max(inputs.ks),
        query_groups=query_groups,
        point_groups=point_groups,
    )
    return vote_every_k(
        training.y[columns],
        nearest_distances.astype(np.float64, copy=False),
        inputs.ks,
        inputs.weights,
        inputs.n_classes,
    )
