"""The screens in front of the exact kernel: a matrix product for Euclidean and cosine
neighbours with many features, approximate powers for Minkowski. Whatever the data,
the neighbours and distances are the exact kernel's, bit for bit."""

from __future__ import annotations

import gc
import warnings
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from scipy.spatial.distance import cdist

import stages.kernels as kernels
from stages import _kernels
from stages.kernels import _NO_GROUPS, GEMM_FEATURES, kneighbors, transposed
from stages.metrics import kernel_metric, largest_summable
from tests.stages.test_kernels import NARROWER_ISAS, assert_narrower_loops_agree, runs_isa

Matrix = npt.NDArray[np.floating[Any]]
Neighbours = tuple[npt.NDArray[np.intp], npt.NDArray[Any]]

WIDE = max(GEMM_FEATURES, 40)


def exact(
    metric: str,
    queries: Matrix,
    points: Matrix,
    k: int,
    precision: str = "float64",
    query_groups: npt.NDArray[np.intp] = _NO_GROUPS,
    point_groups: npt.NDArray[np.intp] = _NO_GROUPS,
) -> Neighbours:
    """The direct loops alone, as kneighbors feeds them, without any screen."""
    code, power = kernel_metric(metric)
    points_t = transposed(points, precision)
    queries = np.ascontiguousarray(queries, dtype=points_t.dtype)
    if metric == "cosine":
        queries = kernels._unit_rows(queries)
        points_t = kernels._unit_t_of(points_t)
    columns = np.empty((queries.shape[0], k), np.intp)
    best = np.empty((queries.shape[0], k), points_t.dtype)
    _kernels.nearest(code, queries, points_t, query_groups, point_groups, columns, best, power)
    return columns, best


def screened(
    metric: str, queries: Matrix, points: Matrix, k: int, precision: str = "float64", **groups: Any
) -> Neighbours:
    points_t = transposed(points, precision)
    points_t.flags.writeable = False  # as a worker's
    return kneighbors(metric, queries, points_t, k, **groups)


def assert_bit_equal(got: Neighbours, want: Neighbours, context: object) -> None:
    bad = np.flatnonzero((got[0] != want[0]).any(axis=1))
    assert bad.size == 0, (
        f"{context}: row {bad[0]} got {got[0][bad[0]].tolist()}, want {want[0][bad[0]].tolist()}"
    )
    assert got[1].dtype == want[1].dtype, context
    assert np.array_equal(got[1], want[1]), context


@pytest.fixture
def exact_rows(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """How many queries each call handed on to the exact kernel."""
    handed: list[int] = []
    original = kernels._Search.exact

    def spy(self: kernels._Search, rows: npt.NDArray[np.intp]) -> None:
        handed.append(int(rows.size))
        original(self, rows)

    monkeypatch.setattr(kernels._Search, "exact", spy)
    yield handed


@pytest.fixture
def screens_taken(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, int, int]]]:
    """(product dtype, queries screened, queries settled) of every matrix-product screen."""
    taken: list[tuple[str, int, int]] = []
    original = kernels._settle

    def spy(search: kernels._Search, rows: Any, candidates: Any, values: Any, *rest: Any) -> Any:
        left = original(search, rows, candidates, values, *rest)
        taken.append((values.dtype.name, int(rows.size), int(rows.size - left.size)))
        return left

    monkeypatch.setattr(kernels, "_settle", spy)
    yield taken


def _with_queries(rng: np.random.Generator, points: Matrix) -> tuple[Matrix, Matrix]:
    """Queries that are training rows (exact duplicates) and rows near them."""
    scale = np.abs(points).max() or 1.0  # the spread of values at the edge of the range
    near = points[:25] + rng.normal(size=points[:25].shape) * (points / scale).std() * scale * 0.3
    return np.vstack([points[rng.choice(len(points), 25)], near]), points


WIDE_DATA: dict[str, Callable[[np.random.Generator], Matrix]] = {
    "normal": lambda rng: rng.normal(size=(700, WIDE)),
    "784 features": lambda rng: np.abs(rng.normal(size=(300, 784))),
    "exact ties": lambda rng: rng.integers(0, 3, (600, WIDE)).astype(np.float64),
    "duplicated rows": lambda rng: np.repeat(rng.normal(size=(80, WIDE)), 9, axis=0),
    "far from the origin": lambda rng: rng.normal(size=(600, WIDE)) * 1e-3 + 1e6,
    "tiny values": lambda rng: rng.normal(size=(600, WIDE)) * 1e-25,
    "huge values": lambda rng: rng.normal(size=(600, WIDE)),
    "one far outlier": lambda rng: np.vstack(
        [rng.normal(size=(599, WIDE)), np.full((1, WIDE), 1e8)]
    ),
    "tight clusters": lambda rng: (
        np.repeat(rng.normal(size=(20, WIDE)), 30, axis=0) + rng.normal(size=(600, WIDE)) * 1e-7
    ),
}


@pytest.mark.parametrize("precision", ["float64", "float32"])
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("data", list(WIDE_DATA))
def test_the_product_screen_gives_the_exact_kernels_result(
    data: str, metric: str, precision: str
) -> None:
    rng = np.random.default_rng(len(data))
    points = WIDE_DATA[data](rng)
    if data == "huge values":  # half the largest the arithmetic sums (the tuning refuses more)
        edge = largest_summable(metric, WIDE, np.dtype(precision))
        points *= edge / 2 / np.abs(points).max()
    queries, points = _with_queries(rng, points)
    for k in (1, 7, 30):
        got = screened(metric, queries, points, k, precision)
        assert_bit_equal(got, exact(metric, queries, points, k, precision), (data, k))


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("precision", ["float64", "float32"])
@pytest.mark.parametrize("metric", ["euclidean", "cosine", "manhattan", "minkowski:3"])
@pytest.mark.parametrize("features", [4, WIDE])
def test_features_at_the_edge_of_the_arithmetic_are_searched_exactly_and_quietly(
    features: int, metric: str, precision: str
) -> None:
    """Up to the largest values the tuning accepts, every screen either holds or steps
    aside without an overflow warning reaching the user."""
    rng = np.random.default_rng(features)
    points = rng.uniform(-1, 1, size=(500, features))
    points *= largest_summable(metric, features, np.dtype(precision)) * 0.99
    queries = np.vstack([points[:20], points[20:40] * 0.5])
    for k in (1, 9):
        got = screened(metric, queries, points, k, precision)
        assert_bit_equal(got, exact(metric, queries, points, k, precision), (metric, k))


def test_cosine_zero_rows_are_at_distance_one_from_every_row() -> None:
    rng = np.random.default_rng(5)
    points = rng.normal(size=(400, WIDE))
    points[[3, 50, 51]] = 0.0
    queries = np.vstack([np.zeros((2, WIDE)), points[:20]])
    for precision in ("float64", "float32"):
        for k in (1, 5, 40):
            got = screened("cosine", queries, points, k, precision)
            assert_bit_equal(got, exact("cosine", queries, points, k, precision), k)
            assert (got[1][:2] == 1).all()  # a zero query: distance 1, lowest columns first
            assert got[0][:2].tolist() == [list(range(k))] * 2


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "minkowski:3"])
@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_a_screened_query_never_takes_a_point_of_its_own_group(metric: str, precision: str) -> None:
    """Leave-one-out blocks: a test row's own fold is masked out, ties and all."""
    rng = np.random.default_rng(7)
    points = np.vstack(
        [rng.integers(0, 3, (300, WIDE)).astype(np.float64), rng.normal(size=(300, WIDE))]
    )
    point_groups = rng.integers(0, 5, len(points)).astype(np.intp)
    rows = rng.choice(len(points), 60, replace=False)
    queries, query_groups = points[rows], point_groups[rows]
    for k in (1, 9, 40):
        got = screened(
            metric,
            queries,
            points,
            k,
            precision,
            query_groups=query_groups,
            point_groups=point_groups,
        )
        own = query_groups[:, None] == point_groups[got[0]]
        assert not own.any(), k
        want = exact(metric, queries, points, k, precision, query_groups.copy(), point_groups)
        assert_bit_equal(got, want, k)


def test_ties_at_the_kth_neighbour_are_handed_to_the_exact_kernel(
    exact_rows: list[int],
) -> None:
    """Duplicates straddling the k-th place cannot be settled by any rounding bound."""
    rng = np.random.default_rng(9)
    points = np.repeat(rng.normal(size=(40, WIDE)), 15, axis=0)
    queries = points[::37]
    for metric in ("euclidean", "cosine"):
        exact_rows.clear()
        got = screened(metric, queries, points, 20)
        assert sum(exact_rows) == len(queries), metric  # each has 15 copies of its row
        assert_bit_equal(got, exact(metric, queries, points, 20), metric)


def test_float32_rounding_too_coarse_goes_on_to_the_float64_product(
    screens_taken: list[tuple[str, int, int]], exact_rows: list[int]
) -> None:
    """Neighbours 1e-5 apart: the float32 product cannot tell them apart, float64 can."""
    rng = np.random.default_rng(10)
    centres = rng.normal(size=(10, WIDE))
    points = np.repeat(centres, 60, axis=0) + rng.normal(size=(600, WIDE)) * 1e-5
    queries = centres + rng.normal(size=centres.shape) * 1e-5
    got = screened("euclidean", queries, points, 10)
    assert_bit_equal(got, exact("euclidean", queries, points, 10), "clusters")
    dtypes = [dtype for dtype, _rows, _settled in screens_taken]
    assert dtypes == ["float32", "float64"]
    assert screens_taken[1][2] > 0 and sum(exact_rows) < len(queries)


def test_random_wide_data_is_settled_by_the_float32_product(
    screens_taken: list[tuple[str, int, int]], exact_rows: list[int]
) -> None:
    rng = np.random.default_rng(11)
    points, queries = rng.normal(size=(2000, 256)), rng.normal(size=(100, 256))
    for metric in ("euclidean", "cosine"):
        assert_bit_equal(
            screened(metric, queries, points, 10), exact(metric, queries, points, 10), metric
        )
    assert [(d, r, s) for d, r, s in screens_taken] == [("float32", 100, 100)] * 2
    assert sum(exact_rows) == 0


def test_the_product_in_many_blocks_gives_the_same_neighbours(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Blocks of queries and of points, each merged into the running candidates."""
    rng = np.random.default_rng(12)
    points, queries = rng.normal(size=(3000, 64)), rng.normal(size=(300, 64))
    want = {m: screened(m, queries, points, 12) for m in ("euclidean", "cosine")}
    monkeypatch.setattr(kernels, "PRODUCT_ENTRIES", 2**14)
    monkeypatch.setattr(kernels, "_PRODUCT_ROWS", 16)
    for metric, neighbours in want.items():
        assert_bit_equal(screened(metric, queries, points, 12), neighbours, metric)


# ------------------------------------------------------------------------- Minkowski


@pytest.mark.parametrize("power", [1.5, 3.0, 7.25])
def test_screened_minkowski_distances_are_scipys_to_the_last_bit(power: float) -> None:
    rng = np.random.default_rng(int(power * 4))
    points, queries = rng.normal(size=(800, 70)), rng.normal(size=(30, 70))
    name = f"minkowski:{power:g}"
    columns, distances = screened(name, queries, points, 15)
    expected = cdist(queries, points, "minkowski", p=power)
    order = np.argsort(expected, axis=1, kind="stable")[:, :15]
    np.testing.assert_array_equal(columns, order)
    np.testing.assert_array_equal(distances, np.take_along_axis(expected, order, axis=1))


@pytest.mark.parametrize("precision", ["float64", "float32"])
@pytest.mark.parametrize("data", ["exact ties", "duplicated rows", "tiny values", "normal"])
def test_screened_minkowski_gives_the_exact_kernels_result(data: str, precision: str) -> None:
    rng = np.random.default_rng(3)
    queries, points = _with_queries(rng, WIDE_DATA[data](rng))
    for k in (1, 7, 30):
        got = screened("minkowski:3", queries, points, k, precision)
        assert_bit_equal(got, exact("minkowski:3", queries, points, k, precision), (data, k))


def test_minkowski_sums_beyond_the_screens_range_go_to_the_exact_kernel(
    exact_rows: list[int],
) -> None:
    """|q - p|^p near the largest double: the approximate power would leave its range."""
    rng = np.random.default_rng(4)
    points = rng.normal(size=(300, 8)) * 1e100
    queries = np.vstack([rng.normal(size=(5, 8)), rng.normal(size=(5, 8)) * 1e100])
    got = screened("minkowski:3", queries, points, 5)
    assert_bit_equal(got, exact("minkowski:3", queries, points, 5), "huge")
    assert sum(exact_rows) == len(queries)


def test_the_approximate_power_is_within_its_stated_error() -> None:
    """Minkowski's screen: relative error below 1e-11 (1 + p), absolute below 2^-1019."""
    rng = np.random.default_rng(6)
    x = np.concatenate([rng.uniform(0, 3, 3000), 10.0 ** rng.uniform(-300, 300, 3000), [0.0]])
    for power in (1.0, 1.5, 3.0, 40.0):
        usable = x[(x == 0) | (power * np.log2(np.where(x > 0, x, 1)) < 1000)]
        columns = np.empty((1, usable.size), np.intp)
        sums = np.empty((1, usable.size))
        _kernels.nearest(
            7, np.zeros((1, 1)), usable[None, :], _NO_GROUPS, _NO_GROUPS, columns, sums, power
        )
        with np.errstate(under="ignore"):
            want = usable[columns[0]] ** power
        error = np.abs(sums[0] - want)
        assert (error <= 1e-11 * (1 + power) * want + 2.0**-1019).all(), power


# ------------------------------------------------------------------- compiled parts


def test_select_keeps_the_m_smallest_in_value_then_column_order() -> None:
    """Across blocks of points, with ties, groups and carried lists, as a stable sort."""
    rng = np.random.default_rng(13)
    rows, width, m = 40, 1500, 12
    dtypes: tuple[type[np.floating[Any]], ...] = (np.float64, np.float32)
    for dtype in dtypes:
        scores = rng.integers(0, 50, (rows, width)).astype(dtype)  # ties everywhere
        query_terms = rng.integers(0, 3, rows).astype(dtype)
        point_terms = rng.integers(0, 3, width).astype(dtype)
        point_groups = rng.integers(0, 4, width).astype(np.intp)
        query_groups = rng.integers(0, 4, rows).astype(np.intp)
        values = query_terms[:, None] + point_terms[None, :] - 2 * scores.astype(np.float64)
        values[query_groups[:, None] == point_groups[None, :]] = np.inf
        want = np.argsort(values, axis=1, kind="stable")[:, :m]
        columns = np.full((rows, m), -1, np.intp)
        best = np.full((rows, m), np.inf, dtype)
        for start, stop in ((0, 7), (7, 300), (300, 301), (301, 1500)):
            _kernels.select(
                np.ascontiguousarray(scores[:, start:stop]),
                query_terms,
                np.ascontiguousarray(point_terms[start:stop]),
                -2.0,
                start,
                query_groups,
                point_groups,
                columns,
                best,
            )
        np.testing.assert_array_equal(columns, want)
        np.testing.assert_array_equal(best, np.take_along_axis(values, want, axis=1))


def test_select_refuses_what_it_cannot_read() -> None:
    scores, terms = np.zeros((2, 5)), np.zeros(2)
    columns, best = np.full((2, 3), -1, np.intp), np.full((2, 3), np.inf)
    _kernels.select(scores, terms, np.zeros(5), -1.0, 0, _NO_GROUPS, _NO_GROUPS, columns, best)
    with pytest.raises(ValueError, match="shapes"):
        _kernels.select(scores, terms, np.zeros(4), -1.0, 0, _NO_GROUPS, _NO_GROUPS, columns, best)
    with pytest.raises(ValueError, match="shapes"):
        groups = np.zeros(2, np.intp)
        _kernels.select(
            scores, terms, np.zeros(5), -1.0, 3, groups, np.zeros(5, np.intp), columns, best
        )
    with pytest.raises(TypeError):
        _kernels.select(
            scores.astype(np.float32),
            terms,
            np.zeros(5),
            -1.0,
            0,
            _NO_GROUPS,
            _NO_GROUPS,
            columns,
            best,
        )


@pytest.mark.parametrize("precision", ["float64", "float32"])
@pytest.mark.parametrize("metric", ["euclidean", "cosine", "minkowski:2.5"])
def test_refine_over_every_point_is_the_exact_kernel(metric: str, precision: str) -> None:
    """Every point a candidate, in a shuffled order, with gaps: the same sums, the same order."""
    rng = np.random.default_rng(14)
    points = np.vstack([rng.normal(size=(150, 37)), rng.integers(0, 2, (150, 37))])
    queries = np.vstack([rng.normal(size=(20, 37)), points[:10]])
    want = exact(metric, queries, points, 25, precision)
    rows = transposed(points, precision).T
    queries_in = np.ascontiguousarray(queries, dtype=rows.dtype)
    if metric == "cosine":
        rows, queries_in = kernels._unit_rows(rows), kernels._unit_rows(queries_in)
    candidates = np.stack([rng.permutation(len(points)) for _ in queries])
    candidates = np.hstack([candidates, np.full((len(queries), 3), -1, np.intp)])
    columns = np.empty((len(queries), 25), np.intp)
    best = np.empty((len(queries), 25), rows.dtype)
    code, power = kernel_metric(metric)
    _kernels.refine(queries_in, np.ascontiguousarray(rows), candidates, columns, best, code, power)
    assert_bit_equal((columns, best), want, metric)


@pytest.mark.parametrize("isa", NARROWER_ISAS)
def test_the_narrower_loops_screen_to_the_same_bits(tmp_path: Path, isa: str) -> None:
    """select and refine are compiled for each instruction set too."""
    if not runs_isa(isa):
        pytest.skip(f"this processor has no {isa}")
    rng = np.random.default_rng(15)
    queries, points = rng.normal(size=(37, WIDE + 3)), rng.normal(size=(900, WIDE + 3))
    metrics = ["euclidean", "cosine", "minkowski:3"]
    assert_narrower_loops_agree(tmp_path, queries, points, metrics, isa)


# -------------------------------------------------------------- what is kept


def test_what_the_screens_derive_goes_with_the_matrix() -> None:
    """Kept per read-only matrix while it lives, and let go with it."""
    rng = np.random.default_rng(16)
    points_t = transposed(rng.normal(size=(500, WIDE)))
    points_t.flags.writeable = False
    key = id(points_t)
    for metric in ("euclidean", "cosine", "minkowski:3"):
        kneighbors(metric, rng.normal(size=(5, WIDE)), points_t, 3)
    assert key in kernels._derived
    alive = weakref.ref(points_t)
    del points_t
    gc.collect()
    assert alive() is None
    assert key not in kernels._derived


def test_a_writable_matrix_is_never_screened_from_stale_copies() -> None:
    rng = np.random.default_rng(17)
    points, queries = rng.normal(size=(600, WIDE)), rng.normal(size=(10, WIDE))
    for metric in ("euclidean", "cosine"):
        writable = transposed(points)
        first = kneighbors(metric, queries, writable, 3)
        writable[:] = writable[:, ::-1]  # the same array, its points in reverse order
        again = kneighbors(metric, queries, writable, 3)
        assert np.array_equal(again[0], len(points) - 1 - first[0]), metric


def test_threads_screen_side_by_side_and_blas_gets_its_threads_back() -> None:
    """Threads of one process (a model's predict, KNNSearchCV) run products at once."""
    import concurrent.futures

    from threadpoolctl import threadpool_info

    rng = np.random.default_rng(18)
    points_t = transposed(rng.normal(size=(2000, 96)))
    points_t.flags.writeable = False
    blocks = [rng.normal(size=(50, 96)) for _ in range(8)]
    alone = [kneighbors(m, b, points_t, 7) for m in ("euclidean", "cosine") for b in blocks]
    before = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    with concurrent.futures.ThreadPoolExecutor(4) as threads:
        together = list(
            threads.map(
                lambda job: kneighbors(job[0], job[1], points_t, 7),
                [(m, b) for m in ("euclidean", "cosine") for b in blocks],
            )
        )
    for got, want in zip(together, alone, strict=True):
        assert_bit_equal(got, want, "threads")
    after = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    assert after == before


# ---------------------------------------------- Manhattan and Chebyshev in float32

L1_FEATURES = 32  # the matrix product's float32 copy; below GEMM_FEATURES, the direct screen's


def l1_points(features: int) -> int:
    return kernels.L1_SCREEN_VALUES // features + 500  # enough values to be screened


L1_DATA: dict[str, Callable[[np.random.Generator, int, int], Matrix]] = {
    "normal": lambda rng, n, d: rng.normal(size=(n, d)),
    "non-negative": lambda rng, n, d: np.abs(rng.normal(size=(n, d))),
    "exact ties": lambda rng, n, d: rng.integers(0, 3, (n, d)).astype(np.float64),
    "duplicated rows": lambda rng, n, d: np.repeat(rng.normal(size=(n // 8, d)), 8, axis=0),
    "far from the origin": lambda rng, n, d: rng.normal(size=(n, d)) * 1e-3 + 1e6,
    "tiny values": lambda rng, n, d: rng.normal(size=(n, d)) * 1e-36,
    "beyond float32": lambda rng, n, d: rng.normal(size=(n, d)) * 1e300,
    "one far outlier": lambda rng, n, d: np.vstack(
        [rng.normal(size=(n - 1, d)), np.full((1, d), 1e8)]
    ),
}


@pytest.fixture
def l1_screens(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The queries of every float32 Manhattan or Chebyshev screen."""
    screened_queries: list[int] = []
    original = kernels._l1_or_linf_by_screen

    def spy(search: kernels._Search) -> None:
        screened_queries.append(int(search.queries.shape[0]))
        original(search)

    monkeypatch.setattr(kernels, "_l1_or_linf_by_screen", spy)
    yield screened_queries


@pytest.mark.parametrize("features", [16, L1_FEATURES])
@pytest.mark.parametrize("metric", ["manhattan", "chebyshev"])
@pytest.mark.parametrize("data", list(L1_DATA))
def test_the_float32_screen_gives_the_exact_kernels_manhattan_and_chebyshev(
    metric: str, data: str, features: int, exact_rows: list[int], l1_screens: list[int]
) -> None:
    rng = np.random.default_rng(17)
    queries, points = _with_queries(rng, L1_DATA[data](rng, l1_points(features), features))
    for k in (1, 7, 30):
        assert_bit_equal(
            screened(metric, queries, points, k), exact(metric, queries, points, k), (data, k)
        )
    assert l1_screens == [queries.shape[0]] * 3
    if data in ("normal", "non-negative", "far from the origin"):
        assert sum(exact_rows) == 0  # settled by the screen, no query handed on


@pytest.mark.parametrize("metric", ["manhattan", "chebyshev"])
def test_the_float32_screen_skips_a_querys_own_group(metric: str) -> None:
    rng = np.random.default_rng(19)
    points = rng.normal(size=(l1_points(L1_FEATURES), L1_FEATURES))
    groups = (np.arange(points.shape[0]) % 5).astype(np.intp)
    queries, query_groups = points[:200], np.ascontiguousarray(groups[:200])
    got = screened(metric, queries, points, 9, query_groups=query_groups, point_groups=groups)
    want = exact(metric, queries, points, 9, "float64", query_groups, groups)
    assert_bit_equal(got, want, metric)


def test_small_training_sets_take_the_plain_loop(l1_screens: list[int]) -> None:
    """Below L1_SCREEN_VALUES the centring and refine would cost what the screen saves."""
    rng = np.random.default_rng(23)
    points = rng.normal(size=(kernels.L1_SCREEN_VALUES // 16 - 10, 16))
    for metric in ("manhattan", "chebyshev"):
        assert_bit_equal(
            screened(metric, points[:50], points, 5), exact(metric, points[:50], points, 5), metric
        )
    assert l1_screens == []
    screened("manhattan", points[:50], np.vstack([points, points[:20]]), 5)
    assert l1_screens == [50]  # a few more rows, enough values: screened


def test_refine_computes_manhattan_and_chebyshev_as_the_exact_kernel() -> None:
    rng = np.random.default_rng(29)
    points, queries = rng.normal(size=(300, 13)), rng.normal(size=(40, 13))
    for metric in ("manhattan", "chebyshev"):
        code, _ = kernel_metric(metric)
        everything = np.tile(np.arange(300, dtype=np.intp), (40, 1))
        columns = np.empty((40, 12), np.intp)
        best = np.empty((40, 12))
        _kernels.refine(queries, points, everything, columns, best, code)
        assert_bit_equal((columns, best), exact(metric, queries, points, 12), metric)


def test_only_a_query_beyond_float32_leaves_the_screen(exact_rows: list[int]) -> None:
    rng = np.random.default_rng(31)
    points = rng.normal(size=(l1_points(L1_FEATURES), L1_FEATURES))
    queries = np.vstack([points[:40], np.full((1, L1_FEATURES), 1e300)])
    for metric in ("manhattan", "chebyshev"):
        exact_rows.clear()
        assert_bit_equal(
            screened(metric, queries, points, 5), exact(metric, queries, points, 5), metric
        )
        assert exact_rows == [1], metric


@pytest.mark.parametrize("features", [16, L1_FEATURES])
def test_values_whose_sums_overflow_are_searched_quietly(features: int) -> None:
    """A mean of such points overflows: the screen steps aside without NumPy warnings."""
    rng = np.random.default_rng(37)
    points = np.abs(rng.normal(size=(l1_points(features), features))) * 1e305
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for metric in ("manhattan", "chebyshev"):
            assert_bit_equal(
                screened(metric, points[:30], points, 5),
                exact(metric, points[:30], points, 5),
                metric,
            )
