"""Distance kernels against SciPy, and neighbour selection against a stable sort."""

from __future__ import annotations

import warnings

import numpy as np
import numpy.typing as npt
import pytest
from scipy.spatial.distance import cdist

from stages.kernels import kneighbors, nearest, pairwise_distances

SCIPY_METRIC = {
    "euclidean": "euclidean",
    "manhattan": "cityblock",
    "chebyshev": "chebyshev",
    "sorensen": "braycurtis",
}


def reference_nearest(
    distances: npt.NDArray[np.float64], k: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
    """Row by row: the first k of a stable argsort (distance, then column)."""
    columns = np.empty((distances.shape[0], k), dtype=np.intp)
    for r, row in enumerate(distances):
        order = sorted(range(row.size), key=lambda c: (row[c], c))
        columns[r] = order[:k]
    return columns, np.take_along_axis(distances, columns, axis=1)


# ---------------------------------------------------------------------------- distances


@pytest.mark.parametrize("metric", list(SCIPY_METRIC))
@pytest.mark.parametrize("seed", [0, 1])
def test_pairwise_distances_equal_cdist(metric: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    queries = rng.uniform(0.0, 3.0, size=(23, 6))
    points = rng.uniform(0.0, 3.0, size=(41, 6))
    got = pairwise_distances(metric, queries, points)
    expected = cdist(queries, points, metric=SCIPY_METRIC[metric])
    assert got.shape == (23, 41)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("metric", ["euclidean", "manhattan", "chebyshev"])
def test_pairwise_distances_on_signed_data(metric: str) -> None:
    rng = np.random.default_rng(5)
    queries = rng.normal(size=(17, 3))
    points = rng.normal(size=(29, 3))
    np.testing.assert_allclose(
        pairwise_distances(metric, queries, points),
        cdist(queries, points, metric=SCIPY_METRIC[metric]),
        rtol=1e-12,
        atol=0,
    )


def test_pairwise_distances_by_hand() -> None:
    a = np.array([[0.0, 0.0], [1.0, 2.0]])
    b = np.array([[3.0, 4.0], [1.0, 2.0]])
    np.testing.assert_allclose(
        pairwise_distances("euclidean", a, b), [[5.0, np.sqrt(5)], [np.sqrt(8), 0]]
    )
    np.testing.assert_allclose(pairwise_distances("manhattan", a, b), [[7.0, 3.0], [4.0, 0.0]])
    np.testing.assert_allclose(pairwise_distances("chebyshev", a, b), [[4.0, 2.0], [2.0, 0.0]])
    # Bray-Curtis: sum|u - v| / sum|u + v|
    np.testing.assert_allclose(pairwise_distances("sorensen", a[1:], b), [[4.0 / 10.0, 0.0]])
    # Exact zeros for identical rows, under every metric (the exact-match rule relies on it).
    rng = np.random.default_rng(3)
    x = rng.uniform(0.1, 5.0, size=(10, 4))
    for metric in SCIPY_METRIC:
        assert (np.diag(pairwise_distances(metric, x, x)) == 0.0).all(), metric


def test_sorensen_between_all_zero_rows_is_zero() -> None:
    """Two all-zero rows are identical: distance 0, as scikit-learn's ``braycurtis`` says.

    Bray-Curtis is 0/0 there; SciPy's ``cdist`` returns NaN (with a warning),
    and a NaN sorts after every real distance in :func:`nearest`.
    """
    queries = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 0.0]])
    points = np.array([[0.0, 0.0, 0.0], [2.0, 2.0, 0.0], [0.0, 0.0, 0.0]])
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = pairwise_distances("sorensen", queries, points)
    assert np.isfinite(got).all(), f"sorensen distances between zero rows: {got.tolist()}"
    np.testing.assert_allclose(got, [[0.0, 1.0, 0.0], [1.0, 1.0 / 7.0, 1.0]], rtol=1e-12)


# ---------------------------------------------------------------------------- nearest


def check_nearest(distances: npt.NDArray[np.float64], k: int) -> None:
    columns, near = nearest(distances, k)
    expected_columns, expected_distances = reference_nearest(distances, k)
    assert columns.shape == (distances.shape[0], k)
    assert near.shape == (distances.shape[0], k)
    stable = np.argsort(distances, axis=1, kind="stable")[:, :k]
    assert np.array_equal(stable, expected_columns)  # the reference is a stable sort
    bad = np.flatnonzero((columns != expected_columns).any(axis=1))
    assert bad.size == 0, (
        f"k={k}: row {bad[0]} got {columns[bad[0]].tolist()}, "
        f"expected {expected_columns[bad[0]].tolist()} (distances {distances[bad[0]].tolist()})"
    )
    assert np.array_equal(near, expected_distances)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nearest_without_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    distances = cdist(rng.normal(size=(30, 3)), rng.normal(size=(50, 3)))
    for k in (1, 2, 3, 7, 15, 49, 50):
        check_nearest(distances, k)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_nearest_with_many_exact_ties(seed: int) -> None:
    """Integer features with few distinct values: distances tie everywhere, also at the k-th."""
    rng = np.random.default_rng(seed)
    # 1..3, no all-zero rows (0/0 under sorensen: see the test above)
    queries = rng.integers(1, 4, size=(40, 2)).astype(float)
    points = rng.integers(1, 4, size=(37, 2)).astype(float)
    for metric in SCIPY_METRIC:
        distances = pairwise_distances(metric, queries, points)
        assert np.unique(distances).size < 10  # precondition: ties are the rule
        for k in range(1, 38):
            check_nearest(distances, k)


def test_nearest_with_constant_rows_and_infinities() -> None:
    """Every column tied, and masked (infinite) columns as the planner makes for spanning units."""
    distances = np.zeros((4, 9))
    distances[1] = 1.0
    distances[2] = [3, 1, 1, 2, 1, 0, 1, 1, 2]
    distances[3] = [np.inf, 2, np.inf, 2, 0, 2, np.inf, 2, 2]
    for k in range(1, 10):
        check_nearest(distances, k)
    columns, near = nearest(distances, 3)
    assert columns.tolist() == [[0, 1, 2], [0, 1, 2], [5, 1, 2], [4, 1, 3]]
    assert near.tolist() == [[0, 0, 0], [1, 1, 1], [0, 1, 1], [0, 2, 2]]


def test_nearest_ties_on_the_boundary_take_the_lowest_columns() -> None:
    # The k-th distance is shared by columns 7, 3 and 1 (in the order argpartition might give);
    # the lowest columns must win, and the result must be sorted by (distance, column).
    row = np.array([[5.0, 2.0, 9.0, 2.0, 1.0, 8.0, 0.5, 2.0, 3.0]])
    for k, expected in [
        (1, [6]),
        (2, [6, 4]),
        (3, [6, 4, 1]),
        (4, [6, 4, 1, 3]),
        (5, [6, 4, 1, 3, 7]),
        (6, [6, 4, 1, 3, 7, 8]),
    ]:
        columns, near = nearest(row, k)
        assert columns[0].tolist() == expected, k
        assert near[0].tolist() == row[0, expected].tolist()


def test_nearest_k_equal_to_columns_is_a_full_stable_sort() -> None:
    rng = np.random.default_rng(9)
    distances = rng.integers(0, 4, size=(25, 12)).astype(float)
    columns, near = nearest(distances, 12)
    assert np.array_equal(columns, np.argsort(distances, axis=1, kind="stable"))
    assert np.array_equal(near, np.sort(distances, axis=1))


def test_nearest_refuses_more_neighbours_than_points() -> None:
    with pytest.raises(ValueError):
        nearest(np.zeros((2, 3)), 4)


def test_nearest_single_row_and_single_column() -> None:
    columns, near = nearest(np.array([[4.0], [0.0]]), 1)
    assert columns.tolist() == [[0], [0]]
    assert near.tolist() == [[4.0], [0.0]]


# --- kneighbors: the kernel a unit runs -------------------------------------------------


@pytest.mark.parametrize("metric", ["euclidean", "manhattan", "chebyshev", "sorensen"])
@pytest.mark.parametrize("integer_valued", [False, True])
def test_kneighbors_equals_nearest_of_exact_distances(metric: str, integer_valued: bool) -> None:
    """The fast euclidean screen must give the exact order, ties included."""
    rng = np.random.default_rng(11)
    if integer_valued:  # many exact ties
        queries = rng.integers(0, 3, (60, 5)).astype(np.float64)
        points = rng.integers(0, 3, (300, 5)).astype(np.float64)
    else:
        queries, points = rng.random((60, 7)) * 100, rng.random((300, 7)) * 100
    exclude = rng.random((60, 300)) < 0.2
    for k, mask in ((1, None), (17, None), (40, exclude), (300, None)):
        distances = pairwise_distances(metric, queries, points)
        if mask is not None:
            distances[mask] = np.inf
        want_columns, want_distances = nearest(distances, k)
        columns, got = kneighbors(metric, queries, points, k, exclude=mask)
        assert np.array_equal(columns, want_columns), (metric, k)
        np.testing.assert_allclose(got, want_distances, rtol=1e-12, atol=0)


def test_euclidean_screen_survives_large_offsets() -> None:
    """Large norms make the product form lose digits; the exact pass must fix the order."""
    rng = np.random.default_rng(2)
    points = 1e6 + rng.random((500, 3))
    queries = 1e6 + rng.random((40, 3))
    want, _ = nearest(pairwise_distances("euclidean", queries, points), 10)
    got, _ = kneighbors("euclidean", queries, points, 10)
    assert np.array_equal(got, want)
