"""One (metric, fold) neighbour search, ours against scikit-learn's, on one thread.

Ours runs as a worker does: the fold's training rows transposed once, then
the test rows in blocks of ``rows_per_block(train rows)``, each through
``stages.kernels.kneighbors`` (distances and the ``k_max`` nearest), and (timed
apart, as it is not part of scikit-learn's call) the votes for every ``k`` and
weighting. Scikit-learn's is
``NearestNeighbors(algorithm="brute").fit(train).kneighbors(test)``. Each
timing is the best of a few repeats, which is the least disturbed by other
processes on a busy machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from benchmarks.data import METRICS, SKLEARN_METRIC, WEIGHTS, Bundle

REPEATS = 3

Neighbours = tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]


@dataclass(frozen=True)
class KernelRow:
    """Best-of-repeats seconds for one metric on one fold."""

    metric: str
    ours: float
    ours_float32: float
    votes: float
    sklearn: float
    rows_differing: int


def _best_of(repeats: int, run: Callable[[], Any]) -> tuple[float, Any]:
    best, value = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        value = run()
        best = min(best, time.perf_counter() - started)
    return best, value


def _ours_blocks(
    metric: str,
    test: npt.NDArray[np.float64],
    train: npt.NDArray[np.float64],
    k: int,
    precision: str = "float64",
) -> Neighbours:
    """The neighbours of every test row, found block by block as a worker does."""
    from stages.kernels import kneighbors, transposed
    from stages.plan import rows_per_block

    block = rows_per_block(train.shape[0])
    train_t = transposed(train, precision)
    found = [
        kneighbors(metric, test[start : start + block], train_t, k)
        for start in range(0, test.shape[0], block)
    ]
    return np.vstack([f[0] for f in found]), np.vstack([f[1] for f in found])


def _sklearn(
    metric: str, test: npt.NDArray[np.float64], train: npt.NDArray[np.float64], k: int
) -> npt.NDArray[np.intp]:
    from sklearn.neighbors import NearestNeighbors

    model = NearestNeighbors(n_neighbors=k, algorithm="brute", metric=SKLEARN_METRIC[metric])
    _distances, columns = model.fit(train).kneighbors(test)
    return np.asarray(columns, dtype=np.intp)


def _votes_seconds(found: Neighbours, train_y: npt.NDArray[np.intp], ks: tuple[int, ...]) -> float:
    from stages.vote import predict_every_k

    columns, distances = found
    started = time.perf_counter()
    predict_every_k(train_y[columns], distances, ks, WEIGHTS, int(train_y.max()) + 1)
    return time.perf_counter() - started


def kernel_row(data: Bundle, metric: str, k_max: int, repeats: int = REPEATS) -> KernelRow:
    """Time one metric on fold 0, both sides limited to one thread."""
    from threadpoolctl import threadpool_limits

    train_rows, test_rows = data.splits()[0]
    train = np.ascontiguousarray(data.X[train_rows])
    test = np.ascontiguousarray(data.X[test_rows])
    with threadpool_limits(1):
        ours_seconds, found = _best_of(repeats, lambda: _ours_blocks(metric, test, train, k_max))
        _ours_blocks(metric, test[:8], train, k_max, "float32")  # compiled or loaded once
        float32_seconds, _ = _best_of(
            repeats, lambda: _ours_blocks(metric, test, train, k_max, "float32")
        )
        sklearn_seconds, theirs = _best_of(repeats, lambda: _sklearn(metric, test, train, k_max))
    votes = _votes_seconds(found, data.y[train_rows], tuple(range(1, k_max + 1)))
    differing = int(np.count_nonzero((found[0] != theirs).any(axis=1)))
    return KernelRow(metric, ours_seconds, float32_seconds, votes, sklearn_seconds, differing)


def kernel_rows(data: Bundle, k_max: int) -> list[KernelRow]:
    return [kernel_row(data, metric, k_max) for metric in METRICS]
