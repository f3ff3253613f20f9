"""Distances fused with the selection of the nearest neighbours.

:func:`kneighbors` is the kernel a unit runs; the loops are compiled C++
(``_kernels.cpp``, built when the package is installed). It walks the
training points in chunks of :data:`CHUNK`, four queries at a time; for each
query it compares the distances to the chunk with its current k-th nearest
and inserts the few that beat it into a short sorted list. The direct loops
build no (queries x points) distance matrix, and partition or sort nothing
but that list; only the matrix-product screen below holds a block of one.

The points are read transposed (features x points), so the innermost loop
runs over points and vectorises, while each distance is still summed
feature after feature, in order, as SciPy's ``cdist`` sums it: the distances
are SciPy's to the last bit, and ties go to the lower column.

Screens. Where a cheaper computation can rank the points nearly right, the
kernel finds each query's ``k +`` :data:`SCREEN_MARGIN` nearest by it, then
:func:`_kernels.refine` recomputes those candidates exactly, in the exact
kernel's order, and ranks them by (distance, column). A rounding bound on
the screen (its arithmetic's and the exact kernel's, underflow included)
then proves, query by query, that no point it dropped can be among the
true ``k`` nearest: the screen's value for the first point left out, less
the bound, must lie strictly beyond the k-th exact distance, with room for
that distance's own last rounding (a square root, a p-th root, ``1 - s``).
Candidates the bound already puts beyond the k-th are not recomputed. A
query for which the proof fails (ties or duplicates at the k-th place, say)
is searched again with the next screen or the exact kernel, so the result
is always the exact kernel's, bit for bit, ties to the lower column and
skipped groups included. The screens:

- Euclidean and cosine with :data:`GEMM_FEATURES` features or more: a BLAS
  matrix product, ``||q||^2 + ||p||^2 - 2 q.p`` for Euclidean (on copies
  centred on the training mean and scaled by a power of two, so neither
  float32 cancellation nor its range gets in the way) and the dot product of
  unit rows for cosine, first in float32 and, for float64 queries it could
  not settle, in float64. Why: once features are many, BLAS's matrix
  product does several times the arithmetic per second of the direct loop,
  which has to add each distance's terms in SciPy's order, one after
  another (scikit-learn's brute search is such a product, in float64, and
  was up to twice as fast as the direct loop at 784 features). The product is taken in
  blocks of at most :data:`PRODUCT_ENTRIES` entries, each merged into the
  running candidates by :func:`_kernels.select` before the next, so memory
  stays bounded at any size; what it derives from a read-only training
  matrix (the float32 copy, the rows for refine) is kept while the matrix
  lives, as a worker's lives for a fold. BLAS runs on one thread meanwhile,
  as the rest of the kernel does: parallelism is the callers'.
- Euclidean below that, in float64: the direct loop in float32 with fused
  multiply-adds (eight lanes a vector) on centred copies.
- Minkowski: sums of an approximate power (vectorised ``exp2(p log2 x)``,
  relative error below ``1e-11 (1 + p)``), since ``pow`` called once per term
  is nearly all of the exact kernel's time and of scikit-learn's.

Why by hand: SciPy's ``cdist`` builds the whole distance block and needs an
``argpartition`` over it afterwards (together 2-3 times slower than this, see
``benchmarks/vs_sklearn.py --kernel``); scikit-learn's fused ``ArgKmin`` is
private, has no per-row exclusion (our merged leave-one-out blocks), and
importing scikit-learn in every worker costs a second of start-up. Compiled
ahead of time rather than just in time, the kernel costs a worker nothing to
load and needs no cache folder.
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from . import _kernels
from .metrics import kernel_metric

__all__ = [
    "CHUNK",
    "DTYPES",
    "GEMM_FEATURES",
    "PRODUCT_ENTRIES",
    "QUERY_BLOCK",
    "SCREEN_MARGIN",
    "VECTOR_ISA",
    "kneighbors",
    "transposed",
]

CHUNK: int = _kernels.CHUNK
"""Points per chunk: a tile of four queries' running sums (8 KiB) stays in the first-level cache."""

QUERY_BLOCK: int = _kernels.QUERY_BLOCK
"""Queries searched together against every chunk in turn: their lists of nearest stay in
the core's own cache."""

VECTOR_ISA: str = _kernels.VECTOR_ISA
"""The vector instructions the loaded kernel runs: ``avx2`` or ``baseline``."""

DTYPES = {"float64": np.float64, "float32": np.float32}

Matrix = npt.NDArray[np.floating[Any]]
Columns = npt.NDArray[np.intp]

_NO_GROUPS = np.empty(0, dtype=np.intp)

_EUCLIDEAN, _MANHATTAN, _CHEBYSHEV, _COSINE, _MINKOWSKI = 0, 1, 2, 4, 5
_SQUARED_SCREEN = 6
"""The kernel's code for the float32 screen of squared Euclidean distances."""
_MINKOWSKI_SCREEN = 7
"""The kernel's code for the screen of Minkowski sums of an approximate power."""

SCREEN_MARGIN = 8
"""Candidates a screen keeps beyond ``k``: room for its rounding, so fallbacks stay rare."""

GEMM_FEATURES = 32
"""Features from which Euclidean and cosine neighbours are screened by a matrix product.

Chosen from one-thread measurements (AVX2, k 20, queries in the planner's
blocks), product against direct loop: at 8 features the direct loop is
faster on 20,000 points (the product takes 1.1-1.3 times its time), at 16
they are within 10% either way, and from 32 on the product is faster in
every case measured (3,200 and 20,000 points, float64 and float32, 0.55-0.93
of the direct loop's time, less the more features).
"""

L1_SCREEN_FEATURES = 8
L1_SCREEN_VALUES = 100_000
"""Manhattan and Chebyshev neighbours are screened in float32 from this many features
and this many training values (points x features): below, the centring and the refine
cost what the faster loop saves. Measured on one thread (AVX2, k 20, 1,000 queries),
screened over plain time: 0.62-0.70 at 16,000 points of 32 and 64 features, 0.77 at 16
features, 0.90 at 8; at 4,000 points 0.73 at 64 features, 0.81-0.92 at 32, 1.03 at 16
and 1.17 at 8; at 4 features 1.0 either way."""

PRODUCT_ENTRIES = 2**22
"""The most entries of one block of the screen's matrix product: 16 MiB in float32
(half as many in float64), the one block a thread keeps from call to call.

A block has ``2**14`` entries per feature, between ``2**20`` and this: with
few features the selection after the product costs the most, and it reads a
smaller block from a nearer cache; with many the product does, and it runs
faster on larger blocks (measured: 10-15% either way).
"""

_PRODUCT_ROWS = 256
"""Queries per block of the product when the points alone would fill it."""

_MINKOWSKI_POW_ERROR = 1e-11
"""The screen's approximate power is within this times ``1 + p`` of ``x ** p``, relatively."""

_UNIT = {np.dtype(t): float(np.finfo(t).eps) / 2 for t in (np.float32, np.float64)}
_TINY = {np.dtype(t): float(np.finfo(t).tiny) for t in (np.float32, np.float64)}
_FLOAT32_UNIT = _UNIT[np.dtype(np.float32)]
_FLOAT64_UNIT = _UNIT[np.dtype(np.float64)]
_FLOAT32_TINY = _TINY[np.dtype(np.float32)]
_FLOAT32_SAFE = float(np.finfo(np.float32).max) / 16
"""Squared norms below this leave every float32 sum of the screen finite."""
_PRODUCT_SAFE = 2.0**100
"""Scaled squared norms below this keep every entry of a float32 product finite."""


# --------------------------------------------------------- derived from the points

_derived: dict[int, tuple[weakref.ref[npt.NDArray[Any]], dict[str, Any]]] = {}
_T = TypeVar("_T")


def _derive(points_t: npt.NDArray[Any], what: str, make: Callable[[], _T]) -> _T:
    """``make()``, kept with ``points_t`` while it lives if it is read-only.

    Workers attach the same read-only training matrix block after block;
    a writable array may change between calls, so nothing is kept for it.
    What ``make`` returns must not refer to ``points_t``: it would keep it alive.
    """
    if points_t.flags.writeable:
        return make()
    key = id(points_t)
    hit = _derived.get(key)
    if hit is None or hit[0]() is not points_t:
        hit = (weakref.ref(points_t, lambda _: _derived.pop(key, None)), {})
        _derived[key] = hit
    found = hit[1]
    if what not in found:
        found[what] = make()
    value: _T = found[what]
    return value


def _rows_of(points_t: Matrix) -> Matrix:
    """The points row by row (points x features), as refine reads them."""
    return _derive(points_t, "rows", lambda: np.array(points_t.T, order="C"))


@dataclass(frozen=True)
class _FmaScreen:
    """What the float32 fused multiply-add screen reads."""

    points_t: npt.NDArray[np.float32]  # centred, features x points
    center: npt.NDArray[np.float64]
    radius2: float  # the largest squared norm of a centred point


_BLOCK_ENTRIES = 2**16
"""Entries of the float64 temporaries when deriving copies: they stay in the cache, so
a training matrix is never copied whole in float64 but for the refine's rows."""


def _fma_screen_of(points_t: Matrix) -> _FmaScreen:
    def make() -> _FmaScreen:
        center = points_t.mean(axis=1)
        features, n_points = points_t.shape
        centred_t = np.empty((features, n_points), dtype=np.float32)
        norms2 = np.zeros(n_points)
        step = max(1, _BLOCK_ENTRIES // max(n_points, 1))
        for first in range(0, features, step):
            block = points_t[first : first + step] - center[first : first + step, None]
            with np.errstate(over="ignore"):  # beyond float32: the screen is then not used
                centred_t[first : first + step] = block
            norms2 += np.einsum("ij,ij->j", block, block)
        return _FmaScreen(centred_t, center, float(norms2.max()))

    return _derive(points_t, "fma", make)


@dataclass(frozen=True)
class _Product:
    """One matrix-product screen: the points as it multiplies them, and their terms."""

    points_t: Matrix  # features x points (maybe a transposed view), in the product's dtype
    point_terms: Matrix  # added to every product entry: squared norms, or zeros
    norms: npt.NDArray[np.float64]  # of the points as multiplied
    center: npt.NDArray[np.float64] | None  # subtracted from the queries first, if any
    scale: float  # then multiplied by this (a power of two)

    @property
    def radius(self) -> float:
        return float(self.norms.max()) if self.norms.size else 0.0


def _euclidean_products(points_t: Matrix) -> list[_Product]:
    """float32 on centred, scaled copies; then, for float64 points, float64 on the points."""

    def make() -> tuple[_Product, npt.NDArray[np.float64] | None] | None:
        features, n_points = points_t.shape
        center = points_t.mean(axis=1, dtype=np.float64)
        raw2 = np.einsum("ij,ij->j", points_t, points_t, dtype=np.float64)
        # The largest centred norm, for the scale only (any power of two near its
        # inverse serves): |p - c|^2 = |p|^2 - 2 c.p + |c|^2, unless cancellation
        # leaves too little of it, when it is summed from the centred points.
        with np.errstate(over="ignore", invalid="ignore"):
            spread = raw2 - 2 * (center.astype(points_t.dtype) @ points_t) + center @ center
            radius2 = float(spread.max())
            if not radius2 > 1e-6 * float(raw2.max()):
                radius2 = float(_centred_norms2(points_t, center).max())
        if not math.isfinite(radius2):
            return None
        radius = math.sqrt(max(radius2, 0.0))
        scale = math.ldexp(1.0, -math.frexp(radius)[1]) if radius > 0 else 1.0
        cast = np.empty((features, n_points), dtype=np.float32)
        norms2 = np.zeros(n_points)
        step = max(1, _BLOCK_ENTRIES // n_points)
        for first in range(0, features, step):
            block = points_t[first : first + step] - center[first : first + step, None]
            rounded = cast[first : first + step]
            np.multiply(block, scale, out=rounded)
            norms2 += np.einsum("ij,ij->j", rounded, rounded, dtype=np.float64)
        screen = _Product(cast, norms2.astype(np.float32), np.sqrt(norms2), center, scale)
        usable = points_t.dtype == np.float64 and bool(raw2.max() < _PRODUCT_SAFE**2)
        return screen, raw2 if usable else None

    # What is kept must not refer to points_t, or it would keep it alive.
    kept = _derive(points_t, "euclidean products", make)
    if kept is None:
        return []
    screen, raw2 = kept
    if raw2 is None:
        return [screen]
    return [screen, _Product(points_t, raw2, np.sqrt(raw2), None, 1.0)]


@dataclass(frozen=True)
class _Float32Copy:
    """The points centred, times a power of two, in float32: a copy a Euclidean screen
    of the same points keeps anyway, and what bounds distances between such copies."""

    points_t: npt.NDArray[np.float32]  # features x points
    center: npt.NDArray[np.float64]
    scale: float  # a power of two: scaling is exact, bar underflow
    largest_sum: float  # of |p - c| over a point's features, the largest over the points
    largest_value: float  # of |p - c|


def _float32_copy_of(points_t: Matrix) -> _Float32Copy | None:
    """The centred float32 copy the Euclidean screen of this width uses (the matrix
    product's from GEMM_FEATURES, the direct screen's below), so both share one."""

    def make() -> _Float32Copy | None:
        with np.errstate(over="ignore", invalid="ignore"):  # huge values: not screened
            return _copy_and_reaches(points_t)

    return _derive(points_t, "float32 copy", make)


def _copy_and_reaches(points_t: Matrix) -> _Float32Copy | None:
    """The shared copy, and the points' largest sum and value of |p - c| (which say
    whether float32 sums of the copies stay finite)."""
    if points_t.shape[0] >= GEMM_FEATURES:
        products = _euclidean_products(points_t)
        if not products or products[0].center is None:  # points beyond the arithmetic
            return None
        copy, center, scale = products[0].points_t, products[0].center, products[0].scale
    else:
        screen = _fma_screen_of(points_t)
        copy, center, scale = screen.points_t, screen.center, 1.0
    sums = np.zeros(points_t.shape[1])
    largest = np.zeros(points_t.shape[1])
    step = max(1, _BLOCK_ENTRIES // max(points_t.shape[1], 1))
    for first in range(0, points_t.shape[0], step):
        block = np.abs(points_t[first : first + step] - center[first : first + step, None])
        sums += block.sum(axis=0)
        np.maximum(largest, block.max(axis=0), out=largest)
    return _Float32Copy(
        copy, center, scale, float(sums.max(initial=0.0)), float(largest.max(initial=0.0))
    )


def _centred_norms2(points_t: Matrix, center: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Squared norms of the points less ``center``, a few features at a time."""
    norms2 = np.zeros(points_t.shape[1])
    step = max(1, _BLOCK_ENTRIES // max(points_t.shape[1], 1))
    for first in range(0, points_t.shape[0], step):
        block = points_t[first : first + step] - center[first : first + step, None]
        norms2 += np.einsum("ij,ij->j", block, block)
    return norms2


def _unit_rows_of(points_t: Matrix) -> Matrix:
    """The points as cosine reads them, row by row: unit rows, zero rows left as they are."""

    def make() -> Matrix:
        rows = np.asarray(points_t.T)
        norms = np.sqrt(np.einsum("ij,ij->i", rows, rows))
        norms[norms == 0] = 1
        unit: Matrix = np.divide(rows, norms[:, None], out=np.empty(rows.shape, rows.dtype))
        return unit

    return _derive(points_t, "unit rows", make)


def _unit_t_of(points_t: Matrix) -> Matrix:
    """The unit rows as the exact kernel reads them, features x points."""
    return _derive(points_t, "unit t", lambda: np.ascontiguousarray(_unit_rows_of(points_t).T))


def _cosine_products(points_t: Matrix) -> list[_Product]:
    """float32 on the unit rows; then, for float64 points, float64."""

    def make() -> list[_Product]:
        rows = _unit_rows_of(points_t)
        norms = np.sqrt(np.einsum("ij,ij->i", rows, rows, dtype=np.float64))
        zeros = np.zeros(rows.shape[0], dtype=np.float32)
        # features x points in C order, which the product reads faster than a
        # transposed view; in float32 it is the exact kernel's own copy.
        if rows.dtype == np.float32:
            return [_Product(_unit_t_of(points_t), zeros, norms, None, 1.0)]
        rounded = np.ascontiguousarray(rows.T, dtype=np.float32)
        return [
            _Product(rounded, zeros, norms, None, 1.0),
            _Product(rows.T, zeros.astype(np.float64), norms, None, 1.0),
        ]

    return _derive(points_t, "cosine products", make)


def _ranges_of(points_t: Matrix) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Each feature's smallest and largest value over the points."""
    return _derive(
        points_t,
        "ranges",
        lambda: (
            points_t.min(axis=1).astype(np.float64),
            points_t.max(axis=1).astype(np.float64),
        ),
    )


# ------------------------------------------------------------------------- screens


@dataclass
class _Search:
    """One call's queries, points, groups and the output the screens fill in."""

    code: int
    power: float
    queries: Matrix  # the exact kernel's queries (unit rows for cosine)
    given_t: Matrix  # the caller's points, features x points
    k: int
    query_groups: Columns
    point_groups: Columns
    columns: Columns
    distances: Matrix

    @property
    def n_points(self) -> int:
        return int(self.given_t.shape[1])

    @functools.cached_property
    def points_t(self) -> Matrix:
        """The exact kernel's points (unit rows for cosine), features x points."""
        return _unit_t_of(self.given_t) if self.code == _COSINE else self.given_t

    @functools.cached_property
    def point_rows(self) -> Matrix:
        """The exact kernel's points row by row, as refine reads them."""
        return _unit_rows_of(self.given_t) if self.code == _COSINE else _rows_of(self.given_t)

    def exact(self, rows: Columns) -> None:
        """The exact kernel for some of the queries."""
        if rows.size == 0:
            return
        redo_columns = np.empty((rows.size, self.k), dtype=np.intp)
        redo_distances = np.empty((rows.size, self.k), dtype=self.distances.dtype)
        _kernels.nearest(
            self.code,
            self.queries_of(rows),
            self.points_t,
            self.groups_of(rows),
            self.point_groups,
            redo_columns,
            redo_distances,
            self.power,
        )
        self.columns[rows], self.distances[rows] = redo_columns, redo_distances

    def queries_of(self, rows: Columns) -> Matrix:
        """Some of the queries (sorted rows, no copy when they are all of them)."""
        if rows.size == self.queries.shape[0]:
            return self.queries
        return self.queries[rows]

    def groups_of(self, rows: Columns | slice) -> Columns:
        if not self.query_groups.size:
            return self.query_groups
        return np.ascontiguousarray(self.query_groups[rows])

    def refine(self, rows: Columns, candidates: Columns) -> tuple[Columns, Matrix]:
        """The exact k nearest among the candidates of some of the queries."""
        columns = np.empty((rows.size, self.k), dtype=np.intp)
        distances = np.empty((rows.size, self.k), dtype=self.distances.dtype)
        _kernels.refine(
            self.queries_of(rows),
            self.point_rows,
            candidates,
            columns,
            distances,
            self.code,
            self.power,
        )
        return columns, distances

    def keep(
        self, rows: Columns, sure: npt.NDArray[np.bool_], found: tuple[Columns, Matrix]
    ) -> Columns:
        """Store the proved rows' neighbours; return the rows still to search."""
        self.columns[rows[sure]] = found[0][sure]
        self.distances[rows[sure]] = found[1][sure]
        return rows[~sure]


_scratches = threading.local()


def _scratch(nbytes: int) -> npt.NDArray[np.uint8]:
    """Room for one block of a product, kept by each thread from call to call.

    Fresh pages cost more to touch, on some machines, than the product takes
    to fill them.
    """
    held: npt.NDArray[np.uint8] | None = getattr(_scratches, "buffer", None)
    if held is None or held.nbytes < nbytes:
        held = np.empty(nbytes, dtype=np.uint8)
        _scratches.buffer = held
    return held


_blas_lock = threading.Lock()
_blas_users = 0
_blas_limit: Any = None
_blas_controller: Any = None


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """BLAS on one thread while any call's matrix product runs.

    The kernel runs on one thread, and parallelism is its callers' (workers,
    or threads of one process, each with its own block): a threaded BLAS
    under threaded callers only contends for the same cores. Workers limit
    BLAS to one thread already; in a process that has not, the limit holds
    while any product runs and the original comes back after the last.
    """
    global _blas_users, _blas_limit, _blas_controller
    with _blas_lock:
        if _blas_users == 0:
            if _blas_controller is None:
                from threadpoolctl import ThreadpoolController

                _blas_controller = ThreadpoolController()
            _blas_limit = _blas_controller.limit(limits=1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                _blas_limit.restore_original_limits()
                _blas_limit = None


def _screened_candidates(
    search: _Search,
    rows: Columns,
    product: _Product,
    queries: Matrix,
    query_terms: Matrix,
    scale: float,
) -> tuple[Columns, Matrix]:
    """Each query's ``k + SCREEN_MARGIN`` smallest ``query_term + point_term + scale q.p``.

    The product is taken a block at a time (at most ``PRODUCT_ENTRIES``
    entries) and each block merged into the running candidates.
    """
    features, n_points = product.points_t.shape
    wanted = search.k + SCREEN_MARGIN
    dtype = product.points_t.dtype
    candidates = np.full((rows.size, wanted), -1, dtype=np.intp)
    values = np.full((rows.size, wanted), np.inf, dtype=dtype)
    entries = min(PRODUCT_ENTRIES, max(2**20, 2**14 * features)) * 4 // dtype.itemsize
    block_rows = min(rows.size, max(_PRODUCT_ROWS, entries // n_points))
    block_points = min(n_points, max(CHUNK, entries // block_rows))
    scratch = _scratch(block_rows * block_points * dtype.itemsize)
    groups = search.groups_of(rows)
    for first in range(0, rows.size, block_rows):
        last = min(first + block_rows, rows.size)
        block = queries[first:last]
        for start in range(0, n_points, block_points):
            stop = min(start + block_points, n_points)
            entries = (last - first) * (stop - start)
            out = scratch[: entries * dtype.itemsize].view(dtype).reshape(last - first, -1)
            np.matmul(block, product.points_t[:, start:stop], out=out)
            _kernels.select(
                out,
                query_terms[first:last],
                product.point_terms[start:stop],
                scale,
                start,
                groups[first:last] if groups.size else groups,
                search.point_groups,
                candidates[first:last],
                values[first:last],
            )
    return candidates, values


def _available(search: _Search, rows: Columns) -> Columns:
    """Points each query may take: all, less those of its own group."""
    n_points = search.n_points
    if not search.query_groups.size:
        return np.full(rows.size, n_points, dtype=np.intp)

    def count() -> tuple[Columns, Columns]:
        found = np.unique(search.point_groups, return_counts=True)
        return found[0].astype(np.intp), found[1].astype(np.intp)

    groups, counts = _derive(search.point_groups, "group sizes", count)
    own = search.query_groups[rows]
    at = np.minimum(np.searchsorted(groups, own), groups.size - 1)
    available: Columns = n_points - np.where(groups[at] == own, counts[at], 0)
    return available


def _settle(
    search: _Search,
    rows: Columns,
    candidates: Columns,
    values: Matrix,
    limit: npt.NDArray[np.float64],
    proved: Callable[[npt.NDArray[np.float64], Matrix], npt.NDArray[np.bool_]],
) -> Columns:
    """Refine the candidates a query may need; keep the queries ``proved`` settles.

    A candidate screened beyond ``limit`` (the k-th value plus a few rounding
    bounds) cannot be among the k nearest when the proof holds, so it is not
    recomputed; the proof then starts from the first such value instead of
    the last candidate's. ``proved(next_value, distances)`` says whether every
    point screened at ``next_value`` or beyond lies strictly beyond the k-th
    exact distance. A query with fewer points than candidates has them all.
    Returns the rows still to search.
    """
    wanted = candidates.shape[1]
    available = _available(search, rows)
    exhausted = (available < wanted) & ((candidates >= 0).sum(axis=1) == available)
    kept = values.astype(np.float64) <= limit[:, None]
    kept[:, : search.k] = True
    kept[exhausted] = True
    count = kept.sum(axis=1)
    found = search.refine(rows, np.where(kept, candidates, -1))
    next_value = values[np.arange(rows.size), np.minimum(count, wanted - 1)].astype(np.float64)
    sure = exhausted | (
        (candidates[:, -1] >= 0) & np.isfinite(next_value) & proved(next_value, found[1])
    )
    return search.keep(rows, sure, found)


def _scaled_queries(queries: Matrix, product: _Product) -> Matrix:
    """The queries as the product takes them: centred and scaled in float64 (a block of
    rows at a time), then rounded once to its dtype."""
    cast = np.empty(queries.shape, dtype=product.points_t.dtype)
    step = max(1, _BLOCK_ENTRIES // max(queries.shape[1], 1))
    with np.errstate(over="ignore", invalid="ignore"):
        for first in range(0, queries.shape[0], step):
            block = queries[first : first + step]
            if product.center is not None:
                block = block - product.center
            np.multiply(block, product.scale, out=cast[first : first + step])
    return cast


def _euclidean_by_products(search: _Search, products: list[_Product]) -> None:
    """Euclidean neighbours by matrix-product screens, then the exact kernel for the rest."""
    rows = np.arange(search.queries.shape[0])
    features = search.queries.shape[1]
    unit_w, tiny_w = _UNIT[search.distances.dtype], _TINY[search.distances.dtype]
    for product in products:
        if rows.size == 0:
            return
        dtype = product.points_t.dtype
        unit_s, tiny_s = _UNIT[dtype], _TINY[dtype]
        cast = _scaled_queries(search.queries_of(rows), product)
        with np.errstate(over="ignore", invalid="ignore"):
            norms2 = np.einsum("ij,ij->i", cast, cast, dtype=np.float64)
        # Rows whose product could overflow go on to the next screen.
        fits = np.isfinite(norms2) & (norms2 < _PRODUCT_SAFE)
        here, rows_left = rows[fits], rows[~fits]
        if rows_left.size:
            cast, norms2 = np.ascontiguousarray(cast[fits]), norms2[fits]
        if here.size:
            candidates, values = _screened_candidates(
                search, here, product, cast, norms2.astype(dtype), -2.0
            )
            # A value v of the screen is within c (|q| + |p|)^2 of the squared
            # distance of the (scaled, centred) rows it was given: the product's
            # rounding (the dot product's n-term sum, then two additions) and the
            # cast of the rows to its dtype. The exact kernel's squared sum is
            # within (n + 4) u of the true one. A dropped point x has v_x >= v_next;
            # if |p_x| >= r_cap its distance is beyond sqrt(v_next) anyway, so
            # |p| <= min(radius, r_cap) in the bound (taken at the last value,
            # the largest). Dropped points are then strictly beyond the k-th
            # exact distance when the lower bound of their squared distance
            # exceeds the k-th squared, with room for the square root's rounding.
            norms = np.sqrt(norms2)
            last = values[:, -1].astype(np.float64)
            with np.errstate(invalid="ignore"):
                cap = 1.01 * (norms + np.sqrt(np.maximum(last, 0.0)))
            reach = (norms + np.minimum(product.radius, cap)) ** 2
            c = 1.1 * ((features + 12) * unit_s + (features + 4) * unit_w) + 64 * _FLOAT64_UNIT
            bound = c * reach + (2 * features + 16) * tiny_s
            scale2 = product.scale**2

            def proved(
                next_value: npt.NDArray[np.float64],
                distances: Matrix,
                bound: npt.NDArray[np.float64] = bound,
                scale2: float = scale2,
            ) -> npt.NDArray[np.bool_]:
                # the exact kernel's squares below its smallest normal number may
                # be lost entirely: an absolute error, scaled as the screen's values
                lowest = (next_value - bound) * (1 - (features + 4) * unit_w) - (
                    features + 2
                ) * tiny_w * scale2
                kth = distances[:, -1].astype(np.float64)
                needed = kth * kth * scale2 * (1 + 8 * unit_w) * (1 + 8 * _FLOAT64_UNIT)
                beyond: npt.NDArray[np.bool_] = lowest > needed
                return beyond

            limit = values[:, search.k - 1].astype(np.float64) + 3 * bound
            rows_left = np.concatenate(
                [rows_left, _settle(search, here, candidates, values, limit, proved)]
            )
        rows = np.sort(rows_left)
    search.exact(rows)


def _cosine_by_products(search: _Search, products: list[_Product]) -> None:
    """Cosine neighbours by matrix-product screens of unit rows, then the exact kernel."""
    rows = np.arange(search.queries.shape[0])
    features = search.queries.shape[1]
    working = search.distances.dtype
    unit_w, tiny_w = _UNIT[working], _TINY[working]
    norms_all = np.sqrt(np.einsum("ij,ij->i", search.queries, search.queries, dtype=np.float64))
    for product in products:
        if rows.size == 0:
            return
        dtype = product.points_t.dtype
        unit_s, tiny_s = _UNIT[dtype], _TINY[dtype]
        cast = np.ascontiguousarray(search.queries_of(rows), dtype=dtype)
        zeros = np.zeros(rows.size, dtype=dtype)
        candidates, values = _screened_candidates(search, rows, product, cast, zeros, -1.0)
        # -v is a dot product of unit rows, within c |q| |p| of the exact
        # kernel's sum for the same rows (both n-term sums, and the cast). A
        # dropped point's exact similarity is then at most -v_next + bound, its
        # distance at least 1 + v_next - bound, which must beat the k-th
        # exact distance by more than the rounding of 1 - similarity.
        c = 1.1 * ((features + 4) * unit_s + (features + 2) * unit_w) + 64 * _FLOAT64_UNIT
        bound = c * norms_all[rows] * product.radius + (2 * features + 16) * (tiny_s + tiny_w)

        def proved(
            next_value: npt.NDArray[np.float64],
            distances: Matrix,
            bound: npt.NDArray[np.float64] = bound,
        ) -> npt.NDArray[np.bool_]:
            lowest = (1 + next_value - bound - 8 * _FLOAT64_UNIT) * (1 - unit_w)
            kth = distances[:, -1].astype(np.float64)
            beyond: npt.NDArray[np.bool_] = (lowest > kth) & (kth < 2)
            return beyond

        limit = values[:, search.k - 1].astype(np.float64) + 3 * bound
        rows = _settle(search, rows, candidates, values, limit, proved)
    search.exact(rows)


def _minkowski_by_screen(search: _Search) -> None:
    """Minkowski neighbours by sums of an approximate power, then the exact kernel."""
    features = search.queries.shape[1]
    working = search.distances.dtype
    unit_w, tiny_w = _UNIT[working], _TINY[working]
    power = search.power
    # The screen's sums must stay finite and its power in range: the largest
    # term is at most the widest gap between a query and the points' range.
    low, high = _ranges_of(search.given_t)
    queries = search.queries.astype(np.float64)
    gap = np.maximum(queries - low, high - queries).max(axis=1)
    limit = (1000.0 if working == np.float64 else 120.0) - math.log2(features + 1)
    with np.errstate(divide="ignore"):
        fits = np.isfinite(gap) & (power * np.log2(np.maximum(gap, 0.0)) < limit)
    rows = np.flatnonzero(fits)
    rows_left = np.flatnonzero(~fits)
    if rows.size:
        wanted = search.k + SCREEN_MARGIN
        candidates = np.empty((rows.size, wanted), dtype=np.intp)
        values = np.empty((rows.size, wanted), dtype=working)
        _kernels.nearest(
            _MINKOWSKI_SCREEN,
            search.queries_of(rows),
            search.points_t,
            search.groups_of(rows),
            search.point_groups,
            candidates,
            values,
            power,
        )
        # Screen and exact kernel each sum n terms of |q - p|^p, every term
        # within a relative (p + 2) u (the difference's rounding, raised to
        # the p-th power, and the power's own) plus the approximate power's
        # error, the sums within n u more; terms below the smallest normal
        # number may be off by that much. The k-th exact distance d_k is the
        # p-th root; a dropped point's exact sum must exceed d_k^p with room
        # for that root's rounding.
        unit_s = max(unit_w, _FLOAT64_UNIT)
        c = 1.1 * (
            _MINKOWSKI_POW_ERROR * (1 + power)
            + (power + 2) * (unit_s + unit_w)
            + (features + 2) * (unit_s + unit_w)
        )
        absolute = (features + 1) * (2.0**-1019 + 2 * tiny_w)
        root = float(working.type(1) / working.type(power))

        def proved(next_value: npt.NDArray[np.float64], distances: Matrix) -> npt.NDArray[np.bool_]:
            lowest = next_value * (1 - c) - absolute
            reach = distances[:, -1].astype(np.float64) * (1 + 8 * unit_w)
            with np.errstate(over="ignore"):
                needed = reach ** (1 / root)
                logs = np.abs(np.log(np.maximum(needed, _TINY[np.dtype(np.float64)])))
                needed *= 1 + (np.minimum(logs, 1000.0) + 8) * 4 * _FLOAT64_UNIT
            beyond: npt.NDArray[np.bool_] = lowest > needed
            return beyond

        kth = values[:, search.k - 1].astype(np.float64)
        rows_left = np.concatenate(
            [
                rows_left,
                _settle(search, rows, candidates, values, kth * (1 + 3 * c) + 3 * absolute, proved),
            ]
        )
        rows_left.sort()
    search.exact(rows_left)


def _l1_or_linf_by_screen(search: _Search) -> None:
    """The exact kernel's Manhattan or Chebyshev neighbours, by the same kernel in float32
    (eight lanes a vector, not four) on centred copies and an exact refine.

    Both distances are unchanged by moving every row by the same centre, which
    keeps the float32 copies' rounding small next to the distances, and scale
    with the rows by a power of two exactly.
    """
    copy = _float32_copy_of(search.given_t)
    if copy is None:  # points beyond the arithmetic
        search.exact(np.arange(search.queries.shape[0]))
        return
    features = search.queries.shape[1]
    with np.errstate(over="ignore", invalid="ignore"):
        centred = search.queries - copy.center
        if search.code == _MANHATTAN:
            own = np.abs(centred).sum(axis=1)  # sum |q - c|
            largest = own + copy.largest_sum
            # Each centred coordinate's rounding to float32, each term's and the
            # float32 sum's (one rounding a term): within a unit of the sum of |q - c|
            # and |p - c|; the exact float64 sum's own rounding is far smaller.
            relative, absolute = 1.1 * (features + 4) * _FLOAT32_UNIT, 4 * features * _FLOAT32_TINY
        else:
            own = np.abs(centred).max(axis=1, initial=0.0)  # max |q - c|
            largest = own + copy.largest_value
            # The largest term moves by at most the largest term's rounding.
            relative, absolute = 4 * _FLOAT32_UNIT, 4 * _FLOAT32_TINY
        fits = largest * copy.scale < _FLOAT32_SAFE  # every float32 copy and sum finite
    rows, beyond = np.flatnonzero(fits), np.flatnonzero(~fits)
    if rows.size:
        wanted = search.k + SCREEN_MARGIN
        candidates = np.empty((rows.size, wanted), dtype=np.intp)
        screened = np.empty((rows.size, wanted), dtype=np.float32)
        _kernels.nearest(
            search.code,
            np.ascontiguousarray(centred[rows] * copy.scale, dtype=np.float32),
            copy.points_t,
            search.groups_of(rows),
            search.point_groups,
            candidates,
            screened,
        )
        found = search.refine(rows, candidates)
        # In the copies' scale, a point p at exact distance D from q is screened
        # within r (|q - c| + |p - c|) + a of D, and |p - c| <= |q - c| + D term
        # by term, so within r (2 A + D) + a, A the query's own sum (or largest)
        # |q - c|. The exact k-th is then at most (kth + 2 r A + a) / (1 - r), kth
        # the screen's k-th, and a point left out (screened at least at the last
        # candidate's value) at least (last - 2 r A - a) / (1 + r): when that is
        # larger, the candidates hold every point that can be among the k nearest.
        spread = 2 * relative * own[rows] * copy.scale + absolute
        last = screened[:, -1].astype(np.float64)
        kth = screened[:, search.k - 1].astype(np.float64)
        complete = (last - spread) / (1 + relative) > (kth + spread) / (1 - relative)
        sure = (candidates[:, -1] < 0) | complete  # -1: every point was a candidate
        beyond = np.sort(np.concatenate([beyond, search.keep(rows, sure, found)]))
    search.exact(beyond)


def _screened_euclidean(
    queries: Matrix,
    points_t: Matrix,
    k: int,
    query_groups: Columns,
    point_groups: Columns,
    columns: Columns,
    distances: Matrix,
) -> None:
    """The exact kernel's Euclidean neighbours, by a float32 screen and an exact refine."""
    screen = _fma_screen_of(points_t)
    centred = queries - screen.center
    query_norms2 = np.einsum("ij,ij->i", centred, centred)
    if not query_norms2.max() + screen.radius2 < _FLOAT32_SAFE:  # float32 sums would overflow
        _kernels.nearest(
            _EUCLIDEAN, queries, points_t, query_groups, point_groups, columns, distances
        )
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
    _kernels.refine(queries, _rows_of(points_t), candidates, columns, distances)
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
            _EUCLIDEAN,
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
    points_t = np.ascontiguousarray(points_t)
    features = queries.shape[1]
    screened = n_points > 2 * (k + SCREEN_MARGIN) and queries.shape[0] > 0
    if code == _COSINE:  # the kernel takes dot products of unit rows
        queries = _unit_rows(queries)
    columns = np.empty((queries.shape[0], k), dtype=np.intp)
    distances = np.empty((queries.shape[0], k), dtype=points_t.dtype)
    groups = (
        _NO_GROUPS if query_groups is None else np.ascontiguousarray(query_groups, np.intp),
        _NO_GROUPS if point_groups is None else np.ascontiguousarray(point_groups, np.intp),
    )
    search = _Search(code, power, queries, points_t, k, *groups, columns, distances)
    wide = screened and features >= GEMM_FEATURES
    if wide and code in (_EUCLIDEAN, _COSINE):
        with _one_blas_thread():
            if code == _COSINE:
                _cosine_by_products(search, _cosine_products(points_t))
            elif products := _euclidean_products(points_t):
                _euclidean_by_products(search, products)
            else:  # non-finite points: the direct loop
                _kernels.nearest(code, queries, points_t, *groups, columns, distances, power)
    elif screened and code == _MINKOWSKI:
        _minkowski_by_screen(search)
    elif screened and code == _EUCLIDEAN and points_t.dtype == np.float64:
        _screened_euclidean(queries, points_t, k, *groups, columns, distances)
    elif screened and code in (_MANHATTAN, _CHEBYSHEV) and points_t.dtype == np.float64:
        if features >= L1_SCREEN_FEATURES and n_points * features >= L1_SCREEN_VALUES:
            _l1_or_linf_by_screen(search)
        else:
            _kernels.nearest(code, queries, points_t, *groups, columns, distances, power)
    else:
        _kernels.nearest(code, queries, search.points_t, *groups, columns, distances, power)
    if columns.size and columns[:, -1].min() < 0:
        raise ValueError(f"fewer than {k} points lie outside some query's own group")
    return columns, distances
