"""Benchmark the tuning on a Dask cluster: bytes shipped, 1 against 2 workers, and the local pool.

    python benchmarks/on_dask.py          # bench M: 20,000 x 32, k 1..50, 4 metrics x 2 weightings
    python benchmarks/on_dask.py --quick  # bench XS with k 1..5: a smoke test

In process, on clusters started once beforehand (``LocalCluster`` of 1 and of
2 worker processes, one thread each, as ``--dask local:N`` starts them) and on
a local process pool of 2 workers kept for every run, best of ``--repeat``
runs of ``Tuning(...).run()``:

- bytes: what the cluster's workers read from their TCP comms during one run
  (task messages, the scattered data, copies fetched from each other),
  counted by ``benchmarks.cluster_wire``, against the data's size times the
  workers; target at most 3.
- scaling: 1 Dask worker's time over 2 Dask workers'; target at least 1.8.
- this process's CPU seconds during the run (scoring, ranking, receiving
  results; for a local cluster its scheduler too): on a 2-core machine
  these are taken from the workers.
- overhead: a 2-worker ``LocalCluster`` against the local pool of 2; target
  at most 1.25, in process and as whole processes (``python -m pipeline run
  DATA --dask local:2`` against ``--workers 2``, median of ``--repeat``, the
  cluster's start-up included).

Every configuration must give the same leaderboard. Other processes may share
the CPUs: compare ratios within a run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the packages importable
    sys.path.insert(0, str(ROOT))

from benchmarks.cluster_wire import received_bytes  # noqa: E402
from benchmarks.contenders import bundle_dataset  # noqa: E402
from benchmarks.data import METRICS, SIZES, WEIGHTS, Bundle, make_bundle  # noqa: E402
from benchmarks.measure import run_measured  # noqa: E402
from benchmarks.report import TIMES, header, table  # noqa: E402

BYTES_TARGET = 3.0
SCALING_TARGET = 1.8
OVERHEAD_TARGET = 1.25


class Timed:
    """One configuration's best time, its leaderboard and its units' mean compute time."""

    def __init__(self) -> None:
        self.seconds = float("inf")
        self.board: list[tuple[Any, ...]] = []
        self.units = 0
        self.unit_seconds = 0.0
        self.parent_cpu = 0.0


async def tune_once(data: Bundle, ks: list[int], timed: Timed, **where: Any) -> None:
    from stages import Tuning

    tuning = Tuning(
        bundle_dataset(data),
        k=ks,
        metrics=list(METRICS),
        weights=list(WEIGHTS),
        cv="column:fold",
        **where,
    )
    unit_seconds: list[float] = []

    async def collect() -> None:
        async for event in tuning.subscribe():
            if event.kind == "unit_done":
                unit_seconds.append(event.seconds)

    watcher = asyncio.create_task(collect())
    started, cpu = time.perf_counter(), time.process_time()
    result = await tuning.run()
    seconds = time.perf_counter() - started
    parent_cpu = time.process_time() - cpu
    await watcher
    if seconds < timed.seconds:
        timed.seconds = seconds
        timed.units = len(unit_seconds)
        timed.unit_seconds = statistics.fmean(unit_seconds)
        timed.parent_cpu = parent_cpu
    timed.board = [(r.candidate.params(), r.fold_accuracy) for r in result.candidates]


def in_process(data: Bundle, ks: list[int], repeat: int) -> dict[str, Any]:
    """Each configuration ``repeat`` times, all warm: the local pool kept for every
    run, the clusters started beforehand as ``--dask local:N`` starts them."""
    from pipeline.cluster import DaskCluster
    from stages import compute_pool
    from stages.cli import _quiet_dask

    _quiet_dask()  # the scheduler runs in this process: its log lines would fill the report
    timings = {name: Timed() for name in ("local pool, 2", "dask, 1 worker", "dask, 2 workers")}
    wire: dict[str, int] = {}

    async def measure() -> None:
        clusters = {
            "dask, 1 worker": await DaskCluster.connect("local:1"),
            "dask, 2 workers": await DaskCluster.connect("local:2"),
        }
        try:
            async with compute_pool(workers=2) as pool:
                for _ in range(repeat):
                    await tune_once(data, ks, timings["local pool, 2"], pool=pool)
                    for name, cluster in clusters.items():
                        before = await asyncio.to_thread(received_bytes, cluster.client)
                        await tune_once(data, ks, timings[name], dask=cluster)
                        after = await asyncio.to_thread(received_bytes, cluster.client)
                        wire[name] = sum(after.values()) - sum(before.values())
        finally:
            for cluster in clusters.values():
                await cluster.aclose()

    asyncio.run(measure())
    return {"timings": timings, "wire": wire}


def whole_process(data_file: Path, ks: str, repeat: int) -> dict[str, float]:
    common = [sys.executable, "-m", "pipeline", "run", str(data_file), "--k", ks, "--quiet"]
    common += ["--metrics", ",".join(METRICS), "--weights", ",".join(WEIGHTS)]
    commands = {
        "local pool, 2": [*common, "--workers", "2"],
        "dask local:2": [*common, "--dask", "local:2"],
    }
    walls: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, command in commands.items():
            walls[name].append(run_measured(command).wall)
    return {name: statistics.median(values) for name, values in walls.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="M")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="bench XS, k 1..5, one run")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    size = SIZES["XS"].with_k_max(5) if args.quick else SIZES[args.size]
    repeat = 1 if args.quick else args.repeat
    print(header("knn-pipeline on a Dask cluster against its local pool", ROOT))
    data = make_bundle(size.rows, size.features)
    ks = list(size.ks)
    data_bytes = data.X.nbytes + data.y.nbytes
    print(
        f"\n== bench {size.name}: {size.rows:,} x {size.features} ({data_bytes / 1e6:.1f} MB), "
        f"k 1..{size.k_max}, {len(METRICS)} metrics x {len(WEIGHTS)} weightings, "
        f"{size.candidates} candidates, 5 folds; best of {repeat}"
    )
    with tempfile.TemporaryDirectory() as folder:
        data_file = Path(folder) / "data.npz"
        data.save(data_file)
        # First: this process has no children yet (a local pool's forkserver outlives
        # its run), so each command's exit is its whole tree's.
        walls = whole_process(data_file, f"1-{size.k_max}", repeat)
    measured = in_process(data, ks, repeat)
    timings: dict[str, Timed] = measured["timings"]
    wire: dict[str, int] = measured["wire"]
    base = timings["local pool, 2"].seconds
    rows = []
    for name, timed in timings.items():
        workers = 1 if "1 worker" in name else 2
        shipped = wire.get(name)
        rows.append(
            [
                name,
                f"{timed.seconds:.2f}",
                f"{timed.seconds / base:.2f}{TIMES}",
                str(timed.units),
                f"{timed.unit_seconds * 1000:.0f}",
                f"{timed.parent_cpu:.2f}",
                "-" if shipped is None else f"{shipped / 1e6:.1f}",
                "-" if shipped is None else f"{shipped / (data_bytes * workers):.2f}",
            ]
        )
    print(
        table(
            [
                "in process",
                "s",
                "÷ local",
                "units",
                "ms/unit",
                "this process's CPU s",
                "MB to workers",
                f"÷ data{TIMES}workers",
            ],
            rows,
        )
    )
    boards = {name: timed.board for name, timed in timings.items()}
    agree = all(board == boards["local pool, 2"] for board in boards.values())
    print(f"leaderboards equal everywhere: {'yes' if agree else 'NO'}")

    print(f"\n== whole process, median of {repeat}")
    local_wall = walls["local pool, 2"]
    print(
        table(
            ["command", "s", "÷ local"],
            [[n, f"{w:.2f}", f"{w / local_wall:.2f}{TIMES}"] for n, w in walls.items()],
        )
    )

    shipped = max(wire["dask, 1 worker"] / data_bytes, wire["dask, 2 workers"] / (2 * data_bytes))
    scaling = timings["dask, 1 worker"].seconds / timings["dask, 2 workers"].seconds
    overhead = timings["dask, 2 workers"].seconds / base
    whole = walls["dask local:2"] / local_wall

    def verdict(met: bool) -> str:
        return "met" if met else "NOT MET"

    print("\n== targets")
    print(
        f"bytes to workers ≤ {BYTES_TARGET:.0f}{TIMES} data {TIMES} workers: "
        f"{verdict(shipped <= BYTES_TARGET)} ({shipped:.2f}{TIMES})"
    )
    print(
        f"2 Dask workers ≥ {SCALING_TARGET}{TIMES} 1: {verdict(scaling >= SCALING_TARGET)} "
        f"({scaling:.2f}{TIMES})"
    )
    print(
        f"LocalCluster of 2 ≤ {OVERHEAD_TARGET}{TIMES} the local pool: in process "
        f"{verdict(overhead <= OVERHEAD_TARGET)} ({overhead:.2f}{TIMES}), whole process "
        f"{verdict(whole <= OVERHEAD_TARGET)} ({whole:.2f}{TIMES})"
    )
    return 0 if agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
