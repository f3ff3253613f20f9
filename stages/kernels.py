"""Distance kernels and the selection of the nearest neighbours.

:func:`kneighbors` is the kernel a unit runs. Manhattan, Chebyshev and
Sorensen (SciPy's ``braycurtis``) distances come from
:func:`scipy.spatial.distance.cdist`. Euclidean distances are screened with
one matrix product (``|q|^2 + |p|^2 - 2 q.p``, the fast form BLAS computes)
and then recomputed exactly for the few points that can be among the nearest,
so the neighbours and their distances never depend on the rounding of the
product.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.spatial.distance import cdist

__all__ = ["SCIPY_METRIC", "kneighbors", "nearest", "pairwise_distances"]

_EPS = float(np.finfo(np.float64).eps)

SCIPY_METRIC = {
    "euclidean": "euclidean",
    "manhattan": "cityblock",
    "chebyshev": "chebyshev",
    "sorensen": "braycurtis",
}


def pairwise_distances(
    metric: str, queries: npt.NDArray[np.float64], points: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """The ``(len(queries), len(points))`` matrix of distances under ``metric``.

    Bray-Curtis is 0/0 between two all-zero rows; like scikit-learn we call
    that distance 0 (the rows are identical) rather than NaN.
    """
    distances = np.asarray(cdist(queries, points, metric=SCIPY_METRIC[metric]), dtype=np.float64)
    if metric == "sorensen":
        np.nan_to_num(distances, copy=False, nan=0.0)
    return distances


def nearest(
    distances: npt.NDArray[np.float64], k: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
    """Columns and distances of the ``k`` nearest points of each row.

    Ordered by (distance, column): equal distances keep the lower column first,
    which is the order a stable sort gives and the order scikit-learn breaks
    ties in. ``argpartition`` finds the candidates; rows whose k-th distance is
    shared by more columns than fit fall back to a stable full sort, so the
    lowest columns win the boundary too.
    """
    _rows, columns = distances.shape
    if k > columns:
        raise ValueError(f"cannot take {k} neighbours from {columns} points")
    if k == columns:
        order = np.argsort(distances, axis=1, kind="stable")
        return order, np.take_along_axis(distances, order, axis=1)
    part = np.argpartition(distances, k - 1, axis=1)[:, :k]
    part_dist = np.take_along_axis(distances, part, axis=1)
    within = np.lexsort((part, part_dist), axis=-1)
    order = np.take_along_axis(part, within, axis=1)
    kth = np.take_along_axis(part_dist, within[:, -1:], axis=1)
    crowded = np.flatnonzero(np.count_nonzero(distances <= kth, axis=1) > k)
    if crowded.size:
        order[crowded] = np.argsort(distances[crowded], axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(distances, order, axis=1)


def kneighbors(
    metric: str,
    queries: npt.NDArray[np.float64],
    points: npt.NDArray[np.float64],
    k: int,
    *,
    exclude: npt.NDArray[np.bool_] | None = None,
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
    """The ``k`` nearest points of each query, as :func:`nearest` orders them.

    ``exclude`` (shape ``(len(queries), len(points))``) marks pairs that may
    not be neighbours (a test row's own fold).
    """
    if metric == "euclidean":
        return _euclidean_kneighbors(queries, points, k, exclude)
    distances = pairwise_distances(metric, queries, points)
    if exclude is not None:
        distances[exclude] = np.inf
    return nearest(distances, k)


def _euclidean_kneighbors(
    queries: npt.NDArray[np.float64],
    points: npt.NDArray[np.float64],
    k: int,
    exclude: npt.NDArray[np.bool_] | None,
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
    """Exact euclidean neighbours through the matrix-product screen.

    scikit-learn's private ``ArgKmin`` screens about 10% faster, but importing
    scikit-learn in every worker costs a second of start-up, more than it saves
    on any but the largest runs (measured with ``benchmarks/vs_sklearn.py``).
    """
    columns = points.shape[0]
    if k > columns:
        raise ValueError(f"cannot take {k} neighbours from {columns} points")
    return _product_screen(queries, points, k, exclude)


def _tolerance(
    queries: npt.NDArray[np.float64], points: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """A bound on the rounding error of ``|q|^2 + |p|^2 - 2 q.p``, per query (generous)."""
    query_norms = np.einsum("ij,ij->i", queries, queries)
    point_norms = np.einsum("ij,ij->i", points, points)
    scale = 8.0 * (queries.shape[1] + 2) * _EPS
    return np.asarray(scale * (query_norms + point_norms.max(initial=0.0)), dtype=np.float64)


def _rank_exactly(
    queries: npt.NDArray[np.float64],
    points: npt.NDArray[np.float64],
    candidates: npt.NDArray[np.intp],
    k: int,
    exclude: npt.NDArray[np.bool_] | None,
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
    """The k candidates of each row with the smallest exact distance (then column)."""
    exact = np.sqrt(((queries[:, None, :] - points[np.maximum(candidates, 0)]) ** 2).sum(axis=2))
    exact[candidates < 0] = np.inf  # padding
    if exclude is not None:
        exact[np.take_along_axis(exclude, np.maximum(candidates, 0), axis=1)] = np.inf
    order = np.lexsort((candidates, exact), axis=-1)[:, :k]
    return np.take_along_axis(candidates, order, axis=1), np.take_along_axis(exact, order, axis=1)


def _product_screen(
    queries: npt.NDArray[np.float64],
    points: npt.NDArray[np.float64],
    k: int,
    exclude: npt.NDArray[np.bool_] | None,
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
    """Screen with a matrix product, then rank the survivors by exact distance.

    The product form has a rounding error of at most ``tol`` per row (a
    generous multiple of the bound for a ``d``-term dot product). Any point
    whose exact squared distance is at most the true k-th one has an
    estimate within ``kth_estimate + 2 tol``, so recomputing exactly every
    point under that threshold finds the exact k nearest, ties included.
    """
    query_norms = np.einsum("ij,ij->i", queries, queries)
    point_norms = np.einsum("ij,ij->i", points, points)
    estimate = queries @ points.T
    estimate *= -2.0
    estimate += query_norms[:, None]
    estimate += point_norms[None, :]
    if exclude is not None:
        estimate[exclude] = np.inf
    partition = np.argpartition(estimate, k - 1, axis=1)
    kth = np.take_along_axis(estimate, partition[:, k - 1 : k], axis=1)[:, 0]
    within = estimate <= (kth + 2.0 * _tolerance(queries, points))[:, None]
    counts = np.count_nonzero(within, axis=1)
    # Usually the screen holds exactly the k points the partition found.
    candidates = partition[:, :k] if (counts == k).all() else _padded_columns(within, counts)
    return _rank_exactly(queries, points, candidates, k, exclude)


def _padded_columns(
    mask: npt.NDArray[np.bool_], counts: npt.NDArray[np.intp]
) -> npt.NDArray[np.intp]:
    """The True columns of each row of ``mask``, left-aligned and padded with -1."""
    rows, columns = np.nonzero(mask)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    position = np.arange(rows.size) - np.repeat(starts, counts)
    padded = np.full((mask.shape[0], int(counts.max())), -1, dtype=np.intp)
    padded[rows, position] = columns
    return padded
