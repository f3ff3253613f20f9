"""Distance kernels and the selection of the nearest neighbours.

Distances come from :func:`scipy.spatial.distance.cdist`, which computes each
metric exactly (no expansion of squares), so neighbour order never depends on
rounding in a matrix product. ``sorensen`` is SciPy's ``braycurtis``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.spatial.distance import cdist

__all__ = ["SCIPY_METRIC", "nearest", "pairwise_distances"]

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
