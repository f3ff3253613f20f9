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

Euclidean neighbours in float64 are found in two steps when the points are
many: a float32 screen (fused multiply-adds, eight lanes a vector, on
centred copies) keeps each query's ``k +`` :data:`SCREEN_MARGIN` nearest
candidates, then :func:`_kernels.refine` recomputes those exactly, in the
exact kernel's order, and ranks them. A query whose candidates cannot be
proved to hold its true ``k`` nearest (the screen's rounding bound exceeds the
gap after the k-th, as with many tied points) is searched again with the
exact kernel, so the result is the exact kernel's, bit for bit.

Why by hand: SciPy's ``cdist`` builds the whole distance block and needs an
``argpartition`` over it afterwards (together 2-3 times slower than this, see
``benchmarks/vs_sklearn.py --kernel``); scikit-learn's fused ``ArgKmin`` is
private, has no per-row exclusion (our merged leave-one-out blocks), and
importing scikit-learn in every worker costs a second of start-up. Compiled
ahead of time rather than just in time, the kernel costs a worker nothing to
load and needs no cache folder.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
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

_SQUARED_SCREEN = 6
"""The kernel's code for the float32 screen of squared Euclidean distances."""

SCREEN_MARGIN = 8
"""Candidates the screen keeps beyond ``k``: room for its rounding, so fallbacks stay rare."""

_FLOAT32_UNIT = float(np.finfo(np.float32).eps) / 2
_FLOAT32_TINY = float(np.finfo(np.float32).tiny)
_FLOAT32_SAFE = float(np.finfo(np.float32).max) / 16
"""Squared norms below this leave every float32 sum of the screen finite."""


@dataclass(frozen=True)
class _Screen:
    """What the screen reads, derived once from a training matrix."""

    points_t: npt.NDArray[np.float32]  # centred, features x points
    points: npt.NDArray[np.float64]  # the exact rows, points x features, for refine
    center: npt.NDArray[np.float64]
    radius2: float  # the largest squared norm of a centred point


_screens: dict[int, tuple[weakref.ref[Matrix], _Screen]] = {}


def _screen_of(points_t: Matrix) -> _Screen:
    """The screen's copies of ``points_t``, kept while a read-only array lives.

    Workers attach the same read-only training matrix block after block;
    a writable array may change between calls, so it is never cached.
    """
    key = id(points_t)
    hit = _screens.get(key)
    if hit is not None and hit[0]() is points_t:
        return hit[1]
    center = points_t.mean(axis=1)
    centred_t = points_t - center[:, None]
    screen = _Screen(
        np.ascontiguousarray(centred_t, dtype=np.float32),
        np.ascontiguousarray(points_t.T),
        center,
        float(np.einsum("ij,ij->j", centred_t, centred_t).max()),
    )
    if not points_t.flags.writeable:
        _screens[key] = (weakref.ref(points_t, lambda _: _screens.pop(key, None)), screen)
    return screen


def _screened_euclidean(
    queries: Matrix,
    points_t: Matrix,
    k: int,
    query_groups: npt.NDArray[np.intp],
    point_groups: npt.NDArray[np.intp],
    columns: npt.NDArray[np.intp],
    distances: Matrix,
) -> None:
    """The exact kernel's Euclidean neighbours, by a float32 screen and an exact refine."""
    screen = _screen_of(points_t)
    centred = queries - screen.center
    query_norms2 = np.einsum("ij,ij->i", centred, centred)
    if not query_norms2.max() + screen.radius2 < _FLOAT32_SAFE:  # float32 sums would overflow
        code = kernel_metric("euclidean")[0]
        _kernels.nearest(code, queries, points_t, query_groups, point_groups, columns, distances)
        return
    wanted = k + SCREEN_MARGIN
    candidates = np.empty((queries.shape[0], wanted), dtype=np.intp)
    screened = np.empty((queries.shape[0], wanted), dtype=np.float32)
    _kernels.nearest(
        _SQUARED_SCREEN,
        np.ascontiguousarray(centred, dtype=np.float32),
        screen.points_t,
        query_groups,
        point_groups,
        candidates,
        screened,
    )
    _kernels.refine(queries, screen.points, candidates, columns, distances)
    # Every squared distance the screen gave is within `slack` of the exact one
    # (float32 rounding of the centred coordinates, of each square and of the
    # running sum). A true k-th nearest is then screened at most 2 * slack above
    # the screen's own k-th, so a query whose last candidate lies further than
    # that (or that has fewer points than candidates) has them all.
    features = queries.shape[1]
    slack = (32 + 4 * features) * _FLOAT32_UNIT * (
        query_norms2 + screen.radius2
    ) + features * _FLOAT32_TINY
    last = screened[:, -1].astype(np.float64)
    kth = screened[:, k - 1].astype(np.float64)
    unsure = np.flatnonzero((candidates[:, -1] >= 0) & ~(last > kth + 2 * slack))
    if unsure.size:
        redo_columns = np.empty((unsure.size, k), dtype=np.intp)
        redo_distances = np.empty((unsure.size, k), dtype=np.float64)
        _kernels.nearest(
            kernel_metric("euclidean")[0],
            np.ascontiguousarray(queries[unsure]),
            points_t,
            query_groups[unsure] if query_groups.size else query_groups,
            point_groups,
            redo_columns,
            redo_distances,
        )
        columns[unsure], distances[unsure] = redo_columns, redo_distances


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
    points_t = np.ascontiguousarray(points_t)
    groups = (
        _NO_GROUPS if query_groups is None else np.ascontiguousarray(query_groups, np.intp),
        _NO_GROUPS if point_groups is None else np.ascontiguousarray(point_groups, np.intp),
    )
    if (
        metric == "euclidean"
        and points_t.dtype == np.float64
        and n_points > 2 * (k + SCREEN_MARGIN)
    ):
        _screened_euclidean(queries, points_t, k, *groups, columns, distances)
    else:
        _kernels.nearest(code, queries, points_t, *groups, columns, distances, power)
    if columns.size and columns[:, -1].min() < 0:
        raise ValueError(f"fewer than {k} points lie outside some query's own group")
    return columns, distances
