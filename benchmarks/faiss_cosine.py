"""Cosine neighbours of embeddings: our float32 kernel against FAISS's exact search, one thread.

    python benchmarks/faiss_cosine.py            # 384 and 768 features, two sizes
    python benchmarks/faiss_cosine.py --quick    # small: a smoke test
    python benchmarks/faiss_cosine.py --k 50 --repeats 7

FAISS is a peer here, not a dependency: it comes with the test extras (``pip install -e .[test]``);
without it the script says so and exits 0.

The data are random vectors scaled to unit length, as embeddings are before
an inner-product search, in float32. Ours runs as a worker runs it: the
points transposed once (``transposed(points, "float32")``, read-only), then
the queries in blocks of ``rows_per_block(points)``, each through
``stages.kernels.kneighbors("cosine", ...)`` with the float32 kernel
(``--precision float32``): distances ``1 - q.p``, ties to the lower column,
every neighbour checked exactly. FAISS's is ``IndexFlatIP`` (exact, inner
product) with the points added, then ``search(queries, k)``. Both on one
thread: ``faiss.omp_set_num_threads(1)`` and ``threadpool_limits(1)``. Each
time is the best of a few repeats, the two alternating; ``product alone``
is ``queries @ points.T`` in float32, the matrix product both are built on.
Other processes may share the CPUs: compare the ratios, measured in the
same run.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the packages importable
    sys.path.insert(0, str(ROOT))

TARGET = 1.2
"""Ours at most this many times FAISS's time."""

SIZES = ((3_200, 800), (20_000, 2_000))
QUICK_SIZES = ((1_000, 200),)
WIDTHS = (384, 768)


def embeddings(rows: int, features: int, seed: int) -> npt.NDArray[np.float32]:
    """Random rows of length 1, in float32."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features))
    unit: npt.NDArray[np.float32] = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(
        np.float32
    )
    return unit


def ours(points: npt.NDArray[np.float32], k: int) -> Callable[[npt.NDArray[np.float32]], Any]:
    """Our search as a worker runs it: points transposed once, queries in blocks."""
    from stages.kernels import kneighbors, transposed
    from stages.plan import rows_per_block

    points_t = transposed(points, "float32")
    points_t.flags.writeable = False  # as a worker's: the kernel keeps what it derives
    block = rows_per_block(points.shape[0])

    def search(queries: npt.NDArray[np.float32]) -> npt.NDArray[np.intp]:
        found = [
            kneighbors("cosine", queries[start : start + block], points_t, k)[0]
            for start in range(0, queries.shape[0], block)
        ]
        return np.vstack(found)

    return search


def best_times(
    runs: dict[str, Callable[[], Any]], repeats: int
) -> tuple[dict[str, float], dict[str, Any]]:
    best = dict.fromkeys(runs, float("inf"))
    values: dict[str, Any] = {}
    for _ in range(repeats):
        for name, run in runs.items():
            started = time.perf_counter()
            values[name] = run()
            best[name] = min(best[name], time.perf_counter() - started)
    return best, values


def measure(
    faiss: Any, features: int, n_points: int, n_queries: int, k: int, repeats: int
) -> tuple[dict[str, float], int]:
    """Best seconds of FAISS, ours and the product alone; rows with the same neighbours."""
    from threadpoolctl import threadpool_limits

    points = embeddings(n_points, features, seed=features)
    queries = embeddings(n_queries, features, seed=features + 1)
    index = faiss.IndexFlatIP(features)
    index.add(points)
    search = ours(points, k)
    points_t = np.ascontiguousarray(points.T)
    with threadpool_limits(1):
        search(queries[:8])  # what the kernel derives from the points, once
        best, found = best_times(
            {
                "faiss": lambda: index.search(queries, k)[1],
                "ours": lambda: search(queries),
                "product": lambda: queries @ points_t,
            },
            repeats,
        )
    return best, int(np.count_nonzero((found["ours"] == found["faiss"]).all(axis=1)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=10, help="neighbours per query (default 10)")
    parser.add_argument("--repeats", type=int, default=5, help="best of (default 5)")
    parser.add_argument("--quick", action="store_true", help="1,000 points, 200 queries")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        import faiss
    except ImportError:
        print("faiss is not installed (pip install faiss-cpu): nothing to compare; skipped")
        return 0
    from benchmarks.report import TIMES, fine_seconds, header, table

    faiss.omp_set_num_threads(1)
    sizes = QUICK_SIZES if args.quick else SIZES
    repeats = 1 if args.quick else args.repeats
    print(header("our float32 cosine kernel against FAISS IndexFlatIP", ROOT), flush=True)
    print(
        f"\n== cosine on unit-length float32 embeddings, k {args.k}, one thread,"
        f" best of {repeats} (faiss {faiss.__version__})",
        flush=True,
    )
    rows, worst = [], 0.0
    for features in WIDTHS:
        for n_points, n_queries in sizes:
            best, same = measure(faiss, features, n_points, n_queries, args.k, repeats)
            ratio = best["ours"] / best["faiss"]
            worst = max(worst, ratio)
            rows.append(
                [
                    str(features),
                    f"{n_points:,} {TIMES} {n_queries:,}",
                    fine_seconds(best["ours"]),
                    fine_seconds(best["faiss"]),
                    f"{ratio:.2f}",
                    fine_seconds(best["product"]),
                    f"{same:,} of {n_queries:,}",
                ]
            )
    print()
    print(
        table(
            [
                "features",
                f"points {TIMES} queries",
                "ours s",
                "faiss s",
                "ours/faiss",
                "product alone s",
                "same neighbours",
            ],
            rows,
            left=2,
        )
    )
    print(
        "ours = stages.kernels.kneighbors('cosine') in float32, queries in the planner's blocks;"
        " faiss = IndexFlatIP.search; same neighbours: rows whose k columns are the same, in"
        " the same order (FAISS ranks near-ties by its own rounding)"
    )
    verdict = "met" if worst <= TARGET else "NOT MET"
    print(f"\nslowest ratio ours/faiss: {worst:.2f} (target {TARGET:.1f} or less: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
