"""Distances fused with the selection of the nearest neighbours, compiled with numba.

:func:`kneighbors` is the kernel a unit runs. It walks the training points in
chunks of :data:`CHUNK`; for each query it computes the distances to the chunk
and compares each with the query's current k-th nearest, inserting the few
that beat it into a short sorted list. No (queries x points) distance matrix
is ever built, and nothing is partitioned or sorted but that list.

The points are read transposed (features x points), so the innermost loop
runs over points and the compiler vectorises it, while each distance is still
summed feature after feature, in order, as SciPy's ``cdist`` sums it (on the
benchmark data the two agree to the last bit). Four features are
taken per pass over the chunk, which quarters the loads and stores of the
running sums without changing their order.

Why by hand: SciPy's ``cdist`` builds the whole distance block and needs an
``argpartition`` over it afterwards (together 2-3 times slower than this, see
``benchmarks/vs_sklearn.py --kernel``); scikit-learn's fused ``ArgKmin`` is
private, has no per-row exclusion (our merged leave-one-out blocks), and
importing scikit-learn in every worker costs a second of start-up.

The compiled code is built once, when this module is imported (an explicit
signature), and cached on disk beside the module: the forkserver imports it
and every worker it forks inherits the machine code. The parent process does
not import it (nor numba) unless it runs units itself, on a thread executor.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
import numpy.typing as npt

__all__ = ["CHUNK", "METRIC_CODES", "kneighbors", "transposed"]

CHUNK = 256
"""Points per chunk: their running sums (2 KiB) stay in the first-level cache."""

METRIC_CODES = {"euclidean": 0, "manhattan": 1, "chebyshev": 2, "sorensen": 3}

Vector = npt.NDArray[np.floating[Any]]
Matrix = npt.NDArray[np.floating[Any]]


_SQUARED_DIFFERENCE, _ABSOLUTE_DIFFERENCE, _ABSOLUTE_SUM = 0, 1, 2


@numba.njit(inline="always")
def _term(kind: int, q: float, p: float) -> float:
    """One feature's share of a sum: (q - p)^2, |q - p| or |q + p|."""
    if kind == _SQUARED_DIFFERENCE:
        d = q - p
        return d * d
    if kind == _ABSOLUTE_DIFFERENCE:
        return abs(q - p)
    return abs(q + p)


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _feature_sums(
    kind: int, query: Vector, points_t: Matrix, start: int, width: int, out: Vector
) -> None:
    """``out[j]``: the sum over features, in order, of ``_term(kind, query, point j)``.

    ``kind`` is the same for the whole loop, so the compiler hoists its test
    out and vectorises each kind's loop on its own.
    """
    sums = out[:width]
    sums[:] = 0.0
    features = points_t.shape[0]
    f = 0
    while f + 4 <= features:
        q0, q1, q2, q3 = query[f], query[f + 1], query[f + 2], query[f + 3]
        p0 = points_t[f, start : start + width]
        p1 = points_t[f + 1, start : start + width]
        p2 = points_t[f + 2, start : start + width]
        p3 = points_t[f + 3, start : start + width]
        for j in range(width):
            sums[j] = (
                sums[j]
                + _term(kind, q0, p0[j])
                + _term(kind, q1, p1[j])
                + _term(kind, q2, p2[j])
                + _term(kind, q3, p3[j])
            )
        f += 4
    while f < features:
        qf = query[f]
        p = points_t[f, start : start + width]
        for j in range(width):
            sums[j] += _term(kind, qf, p[j])
        f += 1


# fastmath lets the compiler use the vector max instruction (much faster here):
# a max is exact in any order, and the data hold no NaN or infinity (refused
# before any unit runs). The sums of the other metrics keep their exact order.
@numba.njit(cache=True, nogil=True, boundscheck=False, fastmath=True)
def _chebyshev(query: Vector, points_t: Matrix, start: int, width: int, out: Vector) -> None:
    largest = out[:width]
    largest[:] = 0.0
    features = points_t.shape[0]
    f = 0
    while f + 4 <= features:
        q0, q1, q2, q3 = query[f], query[f + 1], query[f + 2], query[f + 3]
        p0 = points_t[f, start : start + width]
        p1 = points_t[f + 1, start : start + width]
        p2 = points_t[f + 2, start : start + width]
        p3 = points_t[f + 3, start : start + width]
        for j in range(width):
            a, b = abs(q0 - p0[j]), abs(q1 - p1[j])
            c, d = abs(q2 - p2[j]), abs(q3 - p3[j])
            ab = a if a > b else b
            cd = c if c > d else d
            m = ab if ab > cd else cd
            seen = largest[j]
            largest[j] = m if m > seen else seen
        f += 4
    while f < features:
        qf = query[f]
        p = points_t[f, start : start + width]
        for j in range(width):
            m = abs(qf - p[j])
            seen = largest[j]
            largest[j] = m if m > seen else seen
        f += 1


@numba.njit(cache=True, nogil=True, boundscheck=False)
def _sorensen(
    query: Vector, points_t: Matrix, start: int, width: int, out: Vector, scratch: Vector
) -> None:
    """Bray-Curtis: sum |q - p| / sum |q + p|, and 0 where both rows are all zero."""
    _feature_sums(_ABSOLUTE_DIFFERENCE, query, points_t, start, width, out)
    _feature_sums(_ABSOLUTE_SUM, query, points_t, start, width, scratch)
    for j in range(width):
        out[j] = out[j] / scratch[j] if scratch[j] != 0.0 else 0.0


@numba.njit(
    "Tuple((intp[:, ::1], float64[:, ::1]))"
    "(int64, float64[:, ::1], float64[:, ::1], int64, intp[::1], intp[::1])",
    cache=True,
    nogil=True,
    boundscheck=False,
)
def _nearest(
    metric: int,
    queries: Matrix,
    points_t: Matrix,
    k: int,
    query_groups: npt.NDArray[np.intp],
    point_groups: npt.NDArray[np.intp],
) -> tuple[npt.NDArray[np.intp], Matrix]:
    """Columns and distances of each query's k nearest, ordered by (distance, column).

    Points are visited in column order and only a strictly smaller distance
    displaces the k-th, so of equal distances the lower column wins, as a
    stable sort would have it. With groups given, a point of the query's own
    group is never a neighbour.
    """
    n_queries = queries.shape[0]
    n_points = points_t.shape[1]
    best = np.full((n_queries, k), np.inf, dtype=points_t.dtype)
    columns = np.full((n_queries, k), -1, dtype=np.intp)
    distances = np.empty(CHUNK, dtype=points_t.dtype)
    scratch = np.empty(CHUNK, dtype=points_t.dtype)
    grouped = query_groups.shape[0] > 0
    for start in range(0, n_points, CHUNK):
        width = min(CHUNK, n_points - start)
        for i in range(n_queries):
            if metric == 0:
                _feature_sums(_SQUARED_DIFFERENCE, queries[i], points_t, start, width, distances)
            elif metric == 1:
                _feature_sums(_ABSOLUTE_DIFFERENCE, queries[i], points_t, start, width, distances)
            elif metric == 2:
                _chebyshev(queries[i], points_t, start, width, distances)
            else:
                _sorensen(queries[i], points_t, start, width, distances, scratch)
            row_best = best[i]
            row_columns = columns[i]
            kth = row_best[k - 1]
            for j in range(width):
                distance = distances[j]
                if distance < kth:
                    if grouped and point_groups[start + j] == query_groups[i]:
                        continue
                    slot = k - 1
                    while slot > 0 and row_best[slot - 1] > distance:
                        row_best[slot] = row_best[slot - 1]
                        row_columns[slot] = row_columns[slot - 1]
                        slot -= 1
                    row_best[slot] = distance
                    row_columns[slot] = start + j
                    kth = row_best[k - 1]
    if metric == 0:
        best = np.sqrt(best)
    return columns, best


_nearest_float32 = numba.njit(cache=True, nogil=True, boundscheck=False)(_nearest.py_func)
"""The same kernel on float32: twice the values per vector instruction, 7 digits.

Compiled (or loaded from the cache) on its first call, so float64 runs never
pay for it."""

_NO_GROUPS = np.empty(0, dtype=np.intp)

DTYPES = {"float64": np.float64, "float32": np.float32}


def transposed(points: Matrix, precision: str = "float64") -> Matrix:
    """``points`` as the kernels read them: features x points, C-contiguous."""
    return np.ascontiguousarray(np.asarray(points).T, dtype=DTYPES[precision])


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
    kernel = _nearest_float32 if points_t.dtype == np.float32 else _nearest
    columns, distances = kernel(
        METRIC_CODES[metric],
        np.ascontiguousarray(queries, dtype=points_t.dtype),
        points_t,
        k,
        _NO_GROUPS if query_groups is None else np.ascontiguousarray(query_groups, np.intp),
        _NO_GROUPS if point_groups is None else np.ascontiguousarray(point_groups, np.intp),
    )
    if columns.size and columns[:, -1].min() < 0:
        raise ValueError(f"fewer than {k} points lie outside some query's own group")
    return columns, distances
