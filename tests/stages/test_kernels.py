"""The fused kernel against SciPy's distances and a stable sort: same neighbours, same order."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from scipy.spatial.distance import cdist

from stages import _kernels
from stages.kernels import _NO_GROUPS, CHUNK, QUERY_BLOCK, VECTOR_ISA, kneighbors, transposed

SCIPY_METRIC = {
    "euclidean": "euclidean",
    "manhattan": "cityblock",
    "chebyshev": "chebyshev",
    "sorensen": "braycurtis",
}
Neighbours = tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]


def scipy_distances(
    metric: str, queries: npt.NDArray[np.float64], points: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """SciPy's distances, with Bray-Curtis 0/0 read as 0 (scikit-learn's convention)."""
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        distances = cdist(queries, points, metric=SCIPY_METRIC[metric])
    return np.nan_to_num(distances, nan=0.0)


def reference(
    metric: str,
    queries: npt.NDArray[np.float64],
    points: npt.NDArray[np.float64],
    k: int,
    excluded: npt.NDArray[np.bool_] | None = None,
) -> Neighbours:
    """The first k of a stable argsort of SciPy's distances: (distance, column) order."""
    distances = scipy_distances(metric, queries, points)
    if excluded is not None:
        distances[excluded] = np.inf
    columns = np.argsort(distances, axis=1, kind="stable")[:, :k]
    return columns, np.take_along_axis(distances, columns, axis=1)


def ours(
    metric: str,
    queries: npt.NDArray[np.float64],
    points: npt.NDArray[np.float64],
    k: int,
    **groups: npt.NDArray[np.intp],
) -> Neighbours:
    return kneighbors(metric, queries, transposed(points), k, **groups)


def assert_same(got: Neighbours, want: Neighbours, context: object) -> None:
    bad = np.flatnonzero((got[0] != want[0]).any(axis=1))
    assert bad.size == 0, (
        f"{context}: row {bad[0]} got {got[0][bad[0]].tolist()}, want {want[0][bad[0]].tolist()}"
    )
    np.testing.assert_allclose(got[1], want[1], rtol=1e-12, atol=0, err_msg=str(context))


# ------------------------------------------------------------------- against SciPy


@pytest.mark.parametrize("metric", list(SCIPY_METRIC))
@pytest.mark.parametrize("features", [1, 3, 4, 7, 8, 33])
def test_neighbours_equal_a_stable_sort_of_scipy_distances(metric: str, features: int) -> None:
    """Feature counts around the four-at-a-time step; more points than one chunk."""
    rng = np.random.default_rng(features)
    queries = rng.uniform(0.0, 3.0, size=(23, features))
    points = rng.uniform(0.0, 3.0, size=(CHUNK * 2 + 37, features))
    for k in (1, 2, 7, 40, points.shape[0]):
        assert_same(ours(metric, queries, points, k), reference(metric, queries, points, k), k)


@pytest.mark.parametrize("metric", list(SCIPY_METRIC))
def test_queries_beyond_one_block_keep_their_ties_and_groups(metric: str) -> None:
    """Queries go through the points a block at a time: two blocks and a ragged third,
    with exact ties and own-group points masked out, as one stable sort has them."""
    rng = np.random.default_rng(29)
    points = rng.integers(0, 4, (CHUNK * 2 + 37, 6)).astype(np.float64)
    point_groups = rng.integers(0, 5, points.shape[0]).astype(np.intp)
    queries = rng.integers(0, 4, (2 * QUERY_BLOCK + 7, 6)).astype(np.float64)
    query_groups = rng.integers(0, 5, queries.shape[0]).astype(np.intp)
    excluded = query_groups[:, None] == point_groups[None, :]
    for k in (1, 23):
        plain = ours(metric, queries, points, k)
        assert_same(plain, reference(metric, queries, points, k), k)
        grouped = ours(
            metric, queries, points, k, query_groups=query_groups, point_groups=point_groups
        )
        assert_same(grouped, reference(metric, queries, points, k, excluded), k)


@pytest.mark.parametrize("metric", ["euclidean", "manhattan", "chebyshev"])
def test_signed_data(metric: str) -> None:
    rng = np.random.default_rng(5)
    queries, points = rng.normal(size=(17, 5)), rng.normal(size=(300, 5))
    assert_same(ours(metric, queries, points, 9), reference(metric, queries, points, 9), metric)


def test_distances_by_hand() -> None:
    queries = np.array([[0.0, 0.0], [1.0, 2.0]])
    points = np.array([[3.0, 4.0], [1.0, 2.0]])
    nearer_first = [[1, 0], [1, 0]]
    expected = {
        "euclidean": (nearer_first, [[np.sqrt(5), 5.0], [0.0, np.sqrt(8)]]),
        "manhattan": (nearer_first, [[3.0, 7.0], [0.0, 4.0]]),
        "chebyshev": (nearer_first, [[2.0, 4.0], [0.0, 2.0]]),
        # sum|u - v| / sum|u + v|; the first query is at 1 from both points: lower column first
        "sorensen": ([[0, 1], [1, 0]], [[1.0, 1.0], [0.0, 0.4]]),
    }
    for metric, (want_columns, want_distances) in expected.items():
        columns, distances = ours(metric, queries, points, 2)
        assert columns.tolist() == want_columns, metric
        np.testing.assert_allclose(distances, want_distances, rtol=1e-15, err_msg=metric)


def test_identical_rows_are_at_distance_exactly_zero() -> None:
    """The exact-match rule of ``distance`` weighting relies on it."""
    x = np.random.default_rng(3).uniform(0.1, 5.0, size=(10, 6))
    for metric in SCIPY_METRIC:
        columns, distances = ours(metric, x, x, 1)
        assert columns[:, 0].tolist() == list(range(10)), metric
        assert (distances[:, 0] == 0.0).all(), metric


def test_sorensen_between_all_zero_rows_is_zero() -> None:
    """Bray-Curtis is 0/0 there: scikit-learn calls it 0 (the rows are identical), SciPy NaN."""
    queries = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 0.0]])
    points = np.array([[2.0, 2.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    columns, distances = ours("sorensen", queries, points, 3)
    assert columns.tolist() == [[1, 2, 0], [0, 1, 2]]
    np.testing.assert_allclose(distances, [[0.0, 0.0, 1.0], [1.0 / 7.0, 1.0, 1.0]], rtol=1e-12)


@pytest.mark.parametrize("precision", ["float64", "float32"])
@pytest.mark.parametrize("features", [1, 5, 16, 70])
def test_sorensen_on_non_negative_rows_equals_the_plain_kernel_to_the_bit(
    precision: str, features: int
) -> None:
    """Non-negative rows skip most denominators (bounded by the rows' sums); one negative
    value anywhere takes the plain kernel, which sums every denominator. Both must agree
    to the bit, ties, duplicates, all-zero rows and lists longer than a chunk included."""
    rng = np.random.default_rng(features)
    points = rng.uniform(0.0, 3.0, size=(CHUNK * 3 + 41, features)).round(1)
    points[::9] = points[4]  # duplicates: ties at every place
    points[5::17] = 0.0
    queries = rng.uniform(0.0, 3.0, size=(29, features)).round(1)
    queries[::7] = 0.0
    queries[3] = points[4]
    signed = np.vstack([queries, np.full((1, features), -1.0)])  # the plain kernel for all
    points_t = transposed(points, precision)
    for k in (1, 6, CHUNK + 30):
        bounded = kneighbors("sorensen", queries.astype(points_t.dtype), points_t, k)
        plain = kneighbors("sorensen", signed.astype(points_t.dtype), points_t, k)
        assert np.array_equal(bounded[0], plain[0][:-1]), k
        assert np.array_equal(bounded[1], plain[1][:-1]), k
    if precision == "float64":
        assert_same(bounded, reference("sorensen", queries, points, k), k)
    point_groups = (np.arange(points.shape[0]) % 4).astype(np.intp)
    query_groups = (np.arange(signed.shape[0]) % 4).astype(np.intp)
    grouped = kneighbors(
        "sorensen",
        queries.astype(points_t.dtype),
        points_t,
        9,
        query_groups=query_groups[:-1].copy(),
        point_groups=point_groups,
    )
    plain = kneighbors(
        "sorensen",
        signed.astype(points_t.dtype),
        points_t,
        9,
        query_groups=query_groups,
        point_groups=point_groups,
    )
    assert np.array_equal(grouped[0], plain[0][:-1]) and np.array_equal(grouped[1], plain[1][:-1])


def test_sorensen_near_overflow_takes_the_plain_kernel() -> None:
    """A denominator that overflows to infinity makes the plain kernel's distance 0 while
    the rows' sums stay finite: such values must not take the bounded path."""
    query = np.array([[5.991247996422267e290, 6.402238021645993e290, 8.988465674311579e307]])
    points = np.zeros((300, 3))
    points[0] = query[0] / 2
    points[256] = [4.860002903927512e291, 8.988465674311579e307, 1.4183167192409373e291]
    plain = kneighbors("sorensen", np.vstack([query, -np.ones((1, 3))]), transposed(points), 1)
    got = kneighbors("sorensen", query, transposed(points), 1)
    assert got[0].tolist() == plain[0][:1].tolist() == [[256]]
    assert got[1].tolist() == plain[1][:1].tolist() == [[0.0]]


def test_large_offsets_keep_the_exact_order() -> None:
    """No matrix-product shortcut: large norms lose no digits of the differences."""
    rng = np.random.default_rng(2)
    points = 1e6 + rng.random((500, 3))
    queries = 1e6 + rng.random((40, 3))
    for metric in SCIPY_METRIC:
        assert_same(ours(metric, queries, points, 10), reference(metric, queries, points, 10), 0)


# ------------------------------------------------------------------------------- ties


@pytest.mark.parametrize("metric", list(SCIPY_METRIC))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_ties_go_to_the_lowest_column(metric: str, seed: int) -> None:
    """Integer features with few distinct values: distances tie everywhere, also at the k-th."""
    rng = np.random.default_rng(seed)
    queries = rng.integers(1, 4, size=(40, 2)).astype(float)
    points = rng.integers(1, 4, size=(CHUNK + 45, 2)).astype(float)
    assert np.unique(scipy_distances(metric, queries, points)).size < 10  # ties are the rule
    for k in (1, 2, 3, 5, 17, 100, CHUNK + 1, CHUNK + 45):
        assert_same(ours(metric, queries, points, k), reference(metric, queries, points, k), k)


@pytest.mark.parametrize("precision", ["float64", "float32"])
@pytest.mark.parametrize("metric", ["euclidean", "manhattan", "chebyshev", "sorensen"])
def test_every_list_length_around_the_vector_steps_keeps_ties_in_column_order(
    metric: str, precision: str
) -> None:
    """A query's list is rewritten four places at a time, a long one (over 32) only up to
    where the new distance lands: lengths on and beside those steps, with ties everywhere.
    Small integers, so float32 sums are exact too: both find the float64 reference's
    neighbours, float32's distances within its last root's or quotient's rounding."""
    rng = np.random.default_rng(11)
    queries = rng.integers(0, 4, size=(30, 3)).astype(np.float64)
    points = rng.integers(0, 4, size=(CHUNK + 70, 3)).astype(np.float64)
    for k in (3, 4, 5, 8, 31, 32, 33, 36, 64, 65):
        columns, distances = kneighbors(
            metric, queries.astype(precision), transposed(points, precision), k
        )
        want_columns, want_distances = reference(metric, queries, points, k)
        assert np.array_equal(columns, want_columns), (k, precision)
        rtol = 1e-12 if precision == "float64" else 1e-6
        np.testing.assert_allclose(distances, want_distances, rtol=rtol, err_msg=str(k))


def test_ties_on_the_boundary_by_hand() -> None:
    points = np.array([5.0, 2.0, 9.0, 2.0, 1.0, 8.0, 0.5, 2.0, 3.0])[:, None]
    for k, expected in [(1, [6]), (3, [6, 4, 1]), (4, [6, 4, 1, 3]), (6, [6, 4, 1, 3, 7, 8])]:
        columns, distances = ours("manhattan", np.zeros((1, 1)), points, k)
        assert columns[0].tolist() == expected, k
        assert distances[0].tolist() == points[expected, 0].tolist()


def _squared_sums_with_one_root() -> npt.NDArray[np.float64]:
    """Two 2-feature points whose squared norms differ but whose norms are the same double.

    The second is nearer in squared distance; by distance they tie.
    """
    rng = np.random.default_rng(0)
    while True:
        a = rng.uniform(0.0, 1.0, 2)
        b = a.copy()
        b[1] = np.nextafter(b[1], 0.0)
        # Summed in Python floats, one rounding a step as the kernel and SciPy sum
        # (a BLAS dot product may fuse the steps and round differently).
        squared_a = float(a[0]) * float(a[0]) + float(a[1]) * float(a[1])
        squared_b = float(b[0]) * float(b[0]) + float(b[1]) * float(b[1])
        if squared_b < squared_a and np.sqrt(squared_a) == np.sqrt(squared_b):
            return np.array([a, b])


def test_euclidean_ties_are_decided_on_the_distance_not_its_square() -> None:
    """Equal distances go to the lower column even where their squared sums differ."""
    pair = _squared_sums_with_one_root()
    far = np.array([[5.0, 5.0]])
    points = np.vstack([far, pair, far])  # the tie sits on the k-th place for k=2
    queries = np.zeros((1, 2))
    for k in (1, 2, 3, 4):
        assert_same(
            ours("euclidean", queries, points, k), reference("euclidean", queries, points, k), k
        )
    columns, _ = ours("euclidean", queries, points[1:3], 1)
    assert columns.tolist() == [[0]]


# ----------------------------------------------------------------------------- groups


@pytest.mark.parametrize("metric", list(SCIPY_METRIC))
def test_a_query_never_takes_a_point_of_its_own_group(metric: str) -> None:
    """Spanning units: a test row's own fold is masked out of its training set."""
    rng = np.random.default_rng(11)
    points = rng.integers(0, 3, (CHUNK + 100, 5)).astype(np.float64)  # many exact ties
    point_groups = rng.integers(0, 5, points.shape[0]).astype(np.intp)
    rows = rng.choice(points.shape[0], 60, replace=False)
    queries, query_groups = points[rows], point_groups[rows]
    excluded = query_groups[:, None] == point_groups[None, :]
    for k in (1, 17, 40):
        got = ours(metric, queries, points, k, query_groups=query_groups, point_groups=point_groups)
        assert not np.take_along_axis(excluded, got[0], axis=1).any()
        assert_same(got, reference(metric, queries, points, k, excluded), k)


# ----------------------------------------------------------------------------- float32


@pytest.mark.parametrize("metric", list(SCIPY_METRIC))
def test_float32_finds_the_nearest_up_to_its_rounding(metric: str) -> None:
    """The opt-in float32 kernel: its neighbours are the exact k nearest, but for near-ties."""
    rng = np.random.default_rng(4)
    queries = rng.uniform(0.0, 3.0, size=(40, 9))
    points = rng.uniform(0.0, 3.0, size=(CHUNK + 77, 9))
    exact = scipy_distances(metric, queries, points)
    for k in (1, 10, 60):
        columns, distances = kneighbors(metric, queries, transposed(points, "float32"), k)
        assert distances.dtype == np.float32
        want = np.sort(exact, axis=1)[:, :k]
        got = np.take_along_axis(exact, columns, axis=1)
        np.testing.assert_allclose(got, want, rtol=1e-5, err_msg=f"k={k}")
        np.testing.assert_allclose(distances, got, rtol=1e-5, err_msg=f"k={k}")
        assert (np.diff(distances, axis=1) >= 0).all()


@pytest.mark.parametrize("metric", ["euclidean", "manhattan", "chebyshev"])
def test_float32_equals_float64_where_float32_is_exact(metric: str) -> None:
    """Small integers: every sum is exact in float32 too, so even the ties come out the same."""
    rng = np.random.default_rng(8)
    queries = rng.integers(0, 8, size=(50, 5)).astype(np.float64)
    points = rng.integers(0, 8, size=(CHUNK + 30, 5)).astype(np.float64)
    for k in (1, 7, 40):
        want = kneighbors(metric, queries, transposed(points), k)
        got = kneighbors(metric, queries, transposed(points, "float32"), k)
        assert np.array_equal(got[0], want[0]), k
        np.testing.assert_allclose(got[1], want[1], rtol=1e-6)


# ----------------------------------------------------------------------------- refusals


def test_refuses_more_neighbours_than_points() -> None:
    with pytest.raises(ValueError, match="cannot take 4 neighbours from 3 points"):
        ours("euclidean", np.zeros((2, 1)), np.zeros((3, 1)), 4)
    with pytest.raises(ValueError):
        ours("euclidean", np.zeros((2, 1)), np.zeros((3, 1)), 0)


def test_refuses_when_a_group_leaves_too_few_points() -> None:
    groups = np.array([0, 0, 0, 1], dtype=np.intp)
    with pytest.raises(ValueError, match="fewer than 2 points"):
        ours(
            "manhattan",
            np.zeros((1, 2)),
            np.zeros((4, 2)),
            2,
            query_groups=groups[:1],
            point_groups=groups,
        )


def test_groups_go_together() -> None:
    with pytest.raises(ValueError, match="together"):
        ours("manhattan", np.zeros((1, 2)), np.zeros((4, 2)), 1, query_groups=np.zeros(1, np.intp))


# ------------------------------------------------------------------- compiled loops

_NARROWER_SCRIPT = """
import sys
import numpy as np
from stages.kernels import VECTOR_ISA, kneighbors, transposed
data = np.load(sys.argv[1])
found = {}
for metric in sys.argv[3].split(","):
    for precision in ("float64", "float32"):
        columns, distances = kneighbors(
            metric, data["queries"], transposed(data["points"], precision), 25
        )
        found[f"{metric}-{precision}-columns"] = columns
        found[f"{metric}-{precision}-distances"] = distances
np.savez(sys.argv[2], isa=VECTOR_ISA, **found)
"""


# The narrower compiled copies a process can be told to run, and whether this
# machine runs each (the narrowest, "baseline", runs everywhere).
NARROWER_ISAS = ("baseline", "avx2")


def runs_isa(isa: str) -> bool:
    return isa == "baseline" or VECTOR_ISA in ("avx2", "avx512")


def assert_narrower_loops_agree(
    tmp_path: Path, queries: np.ndarray, points: np.ndarray, metrics: Sequence[str], isa: str
) -> None:
    """The 25 nearest by ``metrics`` in both precisions, in a process told to run the
    ``isa`` copy of the loops, equal this process's (its widest copy) to the bit."""
    data = tmp_path / "data.npz"
    np.savez(data, queries=queries, points=points)
    out = tmp_path / f"{isa}.npz"
    done = subprocess.run(
        [sys.executable, "-c", _NARROWER_SCRIPT, str(data), str(out), ",".join(metrics)],
        env={**os.environ, "KNN_PIPELINE_VECTOR_ISA": isa},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    narrower = np.load(out)
    assert str(narrower["isa"]) == isa
    for metric in metrics:
        for precision in ("float64", "float32"):
            columns, distances = kneighbors(metric, queries, transposed(points, precision), 25)
            key = f"{metric}-{precision}"
            assert np.array_equal(narrower[f"{key}-columns"], columns), key
            assert np.array_equal(narrower[f"{key}-distances"], distances), key


@pytest.mark.parametrize("isa", NARROWER_ISAS)
def test_the_narrower_loops_give_the_widest_loops_results_to_the_bit(
    tmp_path: Path, isa: str
) -> None:
    """Machines without AVX-512 or AVX2 run another compiled copy of the loops: same
    arithmetic, in order."""
    if not runs_isa(isa):
        pytest.skip(f"this processor has no {isa}")
    rng = np.random.default_rng(21)
    queries, points = rng.uniform(0, 3, (37, 11)), rng.uniform(0, 3, (CHUNK + 91, 11))
    assert_narrower_loops_agree(tmp_path, queries, points, list(SCIPY_METRIC), isa)


def test_the_compiled_entry_refuses_arrays_it_cannot_read() -> None:
    """Wrong dtypes, layouts or shapes raise; they never reach the loops."""
    queries, points_t = np.zeros((3, 2)), np.zeros((2, 5))
    none = np.empty(0, np.intp)
    columns, best = np.empty((3, 2), np.intp), np.empty((3, 2))
    _kernels.nearest(0, queries, points_t, none, none, columns, best)  # the valid call
    with pytest.raises(TypeError):
        _kernels.nearest(0, queries.astype(np.float32), points_t, none, none, columns, best)
    with pytest.raises((TypeError, ValueError, BufferError)):
        _kernels.nearest(0, np.zeros((2, 3)).T, points_t, none, none, columns, best)
    with pytest.raises(ValueError, match="shapes"):
        _kernels.nearest(0, queries, np.zeros((3, 5)), none, none, columns, best)
    with pytest.raises(ValueError, match="shapes"):
        _kernels.nearest(0, queries, points_t, np.zeros(3, np.intp), none, columns, best)
    with pytest.raises(TypeError):
        _kernels.nearest(0, queries, points_t, none, none, columns.astype(np.int32), best)
    with pytest.raises(ValueError, match="read-only"):
        best.flags.writeable = False
        _kernels.nearest(0, queries, points_t, none, none, columns, best)
    with pytest.raises(ValueError, match="metric code"):
        _kernels.nearest(8, queries, points_t, none, none, columns, np.empty((3, 2)))
    with pytest.raises(ValueError, match="cannot take 6 neighbours"):
        six_columns, six_best = np.empty((3, 6), np.intp), np.empty((3, 6))
        _kernels.nearest(0, queries, points_t, none, none, six_columns, six_best)


# ------------------------------------------------------------- the Euclidean screen


def exact_kernel(
    queries: npt.NDArray[np.float64],
    points: npt.NDArray[np.float64],
    k: int,
    query_groups: npt.NDArray[np.intp] = _NO_GROUPS,
    point_groups: npt.NDArray[np.intp] = _NO_GROUPS,
) -> Neighbours:
    """The direct float64 loops alone, without the screen in front of them."""
    columns = np.empty((queries.shape[0], k), np.intp)
    best = np.empty((queries.shape[0], k))
    _kernels.nearest(
        0,
        np.ascontiguousarray(queries),
        transposed(points),
        query_groups,
        point_groups,
        columns,
        best,
    )
    return columns, best


SCREENED_DATA = {
    "normal": lambda rng: rng.normal(size=(CHUNK * 6 + 5, 12)),
    "exact ties": lambda rng: rng.integers(0, 3, (CHUNK * 4, 4)).astype(np.float64),
    "far from the origin": lambda rng: rng.normal(size=(CHUNK * 4, 6)) * 1e-3 + 1e6,
    "wide": lambda rng: rng.normal(size=(CHUNK * 3, 130)),
    "tiny values": lambda rng: rng.normal(size=(CHUNK * 4, 5)) * 1e-25,
    "huge values": lambda rng: rng.normal(size=(CHUNK * 4, 5)) * 1e30,
    "duplicated rows": lambda rng: np.repeat(rng.normal(size=(CHUNK // 2, 7)), 9, axis=0),
}


@pytest.mark.parametrize("data", list(SCREENED_DATA))
def test_the_screen_gives_the_exact_kernels_result_to_the_bit(data: str) -> None:
    """float32 screen, exact refine, exact fallback: nothing of the screen's rounding shows."""
    rng = np.random.default_rng(len(data))
    points = SCREENED_DATA[data](rng)
    queries = np.vstack(
        [
            points[rng.choice(len(points), 20)],
            points[:20] + rng.normal(size=points[:20].shape) * points.std(),
        ]
    )
    for k in (1, 6, 31):
        got = kneighbors("euclidean", queries, transposed(points), k)
        want = exact_kernel(queries, points, k)
        assert np.array_equal(got[0], want[0]), (data, k)
        assert np.array_equal(got[1], want[1]), (data, k)


def test_the_screen_skips_a_querys_own_group_as_the_exact_kernel_does() -> None:
    rng = np.random.default_rng(3)
    points = rng.integers(0, 4, (CHUNK * 3, 3)).astype(np.float64)
    point_groups = rng.integers(0, 5, len(points)).astype(np.intp)
    rows = rng.choice(len(points), 50, replace=False)
    for k in (1, 9, 40):
        got = kneighbors(
            "euclidean",
            points[rows],
            transposed(points),
            k,
            query_groups=point_groups[rows],
            point_groups=point_groups,
        )
        want = exact_kernel(points[rows], points, k, point_groups[rows].copy(), point_groups)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]), k


def test_the_screen_reuses_a_read_only_matrix_and_never_a_writable_one() -> None:
    """Workers attach one read-only matrix for many blocks; a writable one may change."""
    rng = np.random.default_rng(8)
    points, queries = rng.normal(size=(CHUNK * 2, 5)), rng.normal(size=(10, 5))
    writable = transposed(points)
    first = kneighbors("euclidean", queries, writable, 3)
    writable[:] = writable[:, ::-1]  # the same array, its points in reverse order
    again = kneighbors("euclidean", queries, writable, 3)
    assert np.array_equal(again[0], len(points) - 1 - first[0])
    frozen = transposed(points)
    frozen.flags.writeable = False
    assert np.array_equal(kneighbors("euclidean", queries, frozen, 3)[0], first[0])
    assert np.array_equal(kneighbors("euclidean", queries[::-1], frozen, 3)[0], first[0][::-1])


def test_refine_refuses_what_it_cannot_read() -> None:
    queries, points = np.zeros((2, 3)), np.zeros((4, 3))
    columns, best = np.empty((2, 1), np.intp), np.empty((2, 1))
    _kernels.refine(queries, points, np.zeros((2, 2), np.intp), columns, best)  # the valid call
    with pytest.raises(ValueError, match="out of range"):
        _kernels.refine(queries, points, np.full((2, 2), 4, np.intp), columns, best)
    with pytest.raises(ValueError, match="shapes"):
        _kernels.refine(queries, points, np.zeros((2, 2), np.intp), np.empty((2, 3), np.intp), best)
    with pytest.raises(TypeError):
        _kernels.refine(
            queries.astype(np.float32), points, np.zeros((2, 2), np.intp), columns, best
        )
