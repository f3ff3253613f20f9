"""Distances fused with the selection of the nearest neighbours.

:func:`kneighbors` is the kernel a unit runs; the loops are compiled C++
(``_kernels.cpp``, built when the package is installed). It walks the
training points in chunks of :data:`CHUNK`, four queries at a time; for each
query it compares the distances to the chunk with its current k-th nearest
and inserts the few that beat it into a short sorted list. No
(queries x points) distance matrix is ever built, and nothing is partitioned
or sorted but that list.

The points are read transposed (features x points), so the innermost loop
runs over points and vectorises, while each distance is still summed
feature after feature, in order, as SciPy's ``cdist`` sums it: the distances
are SciPy's to the last bit, and ties go to the lower column.

Why by hand: SciPy's ``cdist`` builds the whole distance block and needs an
``argpartition`` over it afterwards (together 2-3 times slower than this, see
``benchmarks/vs_sklearn.py --kernel``); scikit-learn's fused ``ArgKmin`` is
private, has no per-row exclusion (our merged leave-one-out blocks), and
importing scikit-learn in every worker costs a second of start-up. Compiled
ahead of time rather than just in time, the kernel costs a worker nothing to
load and needs no cache folder.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from . import _kernels
from .metrics import kernel_metric

__all__ = ["CHUNK", "DTYPES", "VECTOR_ISA", "kneighbors", "transposed"]

CHUNK: int = _kernels.CHUNK
"""Points per chunk: a tile of four queries' running sums (8 KiB) stays in the first-level cache."""

VECTOR_ISA: str = _kernels.VECTOR_ISA
"""The vector instructions the loaded kernel runs: ``avx2`` or ``baseline``."""

DTYPES = {"float64": np.float64, "float32": np.float32}

Matrix = npt.NDArray[np.floating[Any]]

_NO_GROUPS = np.empty(0, dtype=np.intp)


def transposed(points: Matrix, precision: str = "float64") -> Matrix:
    """``points`` as the kernels read them: features x points, C-contiguous."""
    return np.ascontiguousarray(np.asarray(points).T, dtype=DTYPES[precision])


def _unit_rows(rows: Matrix) -> Matrix:
    """Rows scaled to length 1, zero rows left as they are (scikit-learn's ``normalize``)."""
    norms = np.sqrt(np.einsum("ij,ij->i", rows, rows))
    norms[norms == 0] = 1
    return np.ascontiguousarray(rows / norms[:, None])


def kneighbors(
    metric: str,
    queries: Matrix,
    points_t: Matrix,
    k: int,
    *,
    query_groups: npt.NDArray[np.intp] | None = None,
    point_groups: npt.NDArray[np.intp] | None = None,
) -> tuple[npt.NDArray[np.intp], Matrix]:
    """The ``k`` nearest points of each query: columns and distances, nearest first.

    ``points_t`` is the training set as :func:`transposed` gives it (made once
    per fold, not per call); its dtype (float64, or float32 for the faster,
    rounded kernel) decides the arithmetic, and the queries are converted to
    it. Ties in distance go to the lower column. With
    ``query_groups`` and ``point_groups`` (a test row's fold and every training
    row's fold), points in the query's own group are skipped.

    Euclidean neighbours are chosen by squared distance, which orders points
    exactly as the distance does, and reported as distances.
    """
    n_points = points_t.shape[1]
    if not 1 <= k <= n_points:
        raise ValueError(f"cannot take {k} neighbours from {n_points} points")
    if (query_groups is None) != (point_groups is None):
        raise ValueError("query_groups and point_groups go together")
    code, power = kernel_metric(metric)
    queries = np.ascontiguousarray(queries, dtype=points_t.dtype)
    if metric == "cosine":  # the kernel takes dot products of unit rows
        queries, points_t = _unit_rows(queries), _unit_rows(points_t.T).T
    columns = np.empty((queries.shape[0], k), dtype=np.intp)
    distances = np.empty((queries.shape[0], k), dtype=points_t.dtype)
    _kernels.nearest(
        code,
        queries,
        np.ascontiguousarray(points_t),
        _NO_GROUPS if query_groups is None else np.ascontiguousarray(query_groups, np.intp),
        _NO_GROUPS if point_groups is None else np.ascontiguousarray(point_groups, np.intp),
        columns,
        distances,
        power,
    )
    if columns.size and columns[:, -1].min() < 0:
        raise ValueError(f"fewer than {k} points lie outside some query's own group")
    return columns, distances
