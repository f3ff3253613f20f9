"""Benchmark reading a CSV data set: ours against NumPy's and pandas' readers, in one run.

    python benchmarks/csv_load.py             # 20,000 x 32, unscaled columns, odd header
    python benchmarks/csv_load.py --quick     # 2,000 x 8: a smoke test

Each reader is timed on the same file in this process, best of ``--repeat``
runs, alternating: ``stages.load.load_dataset`` (the whole of what ``run``
does to read DATA: the bytes read with aiofiles, parsed, labels encoded),
``np.loadtxt(path, delimiter=",", skiprows=1)`` and, when pandas is
installed, ``pandas.read_csv``. The target is ours at most 1.0 times ``np.loadtxt``.
Other processes may share the CPUs: compare ratios within a run.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the packages importable
    sys.path.insert(0, str(ROOT))

from benchmarks.report import TIMES, header, table  # noqa: E402
from stages.load import load_dataset  # noqa: E402

TARGET = 1.0


def write_data(path: Path, rows: int, features: int, seed: int = 0) -> None:
    """Columns of very different scales (as real files have), a header of odd names, a
    text label last."""
    rng = np.random.default_rng(seed)
    scales = 10.0 ** rng.integers(-3, 6, features)
    X = rng.normal(size=(rows, features)) * scales
    labels = rng.choice(["setosa", "versicolor", "virginica"], rows)
    names = [f"Feature #{i} (unit {i % 3})" for i in range(features)] + ["class label"]
    with path.open("w") as stream:
        stream.write(",".join(names) + "\n")
        for row, label in zip(X, labels, strict=True):
            stream.write(",".join(repr(float(v)) for v in row) + f",{label}\n")


def best_of(repeat: int, run: Callable[[], Any]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2,000 x 8, three runs")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.quick:
        args.rows, args.features, args.repeat = 2_000, 8, 3
    print(header("knn-pipeline CSV loading against NumPy and pandas", ROOT))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.csv"
        write_data(path, args.rows, args.features)
        size_mib = path.stat().st_size / 2**20
        readers: dict[str, Callable[[], Any]] = {
            "ours, load_dataset": lambda: asyncio.run(load_dataset(path)),
            "np.loadtxt": lambda: np.loadtxt(
                path, delimiter=",", skiprows=1, usecols=range(args.features)
            ),
        }
        try:
            import pandas as pd

            readers["pandas.read_csv"] = lambda: pd.read_csv(path)
        except ImportError:
            pass
        ours = asyncio.run(load_dataset(path))
        reference = np.loadtxt(path, delimiter=",", skiprows=1, usecols=range(args.features))
        equal = np.array_equal(ours.X, reference)
        times = {name: best_of(args.repeat, run) for name, run in readers.items()}
    base = times["np.loadtxt"]
    print(
        f"\n== reading a {args.rows:,} x {args.features} CSV ({size_mib:.1f} MiB), "
        f"best of {args.repeat}"
    )
    rows = [
        [name, f"{seconds * 1000:.0f}", f"{seconds / base:.2f}{TIMES}"]
        for name, seconds in times.items()
    ]
    print(table(["reader", "ms", "÷ np.loadtxt"], rows))
    print(f"features equal to np.loadtxt's: {'yes' if equal else 'NO'}")
    mine = times["ours, load_dataset"] / base
    verdict = "met" if mine <= TARGET and equal else "NOT MET"
    print(f"\n== targets\nload ≤ {TARGET:.1f}{TIMES} np.loadtxt: {verdict} ({mine:.2f}{TIMES})")
    return 0 if equal else 1


if __name__ == "__main__":
    raise SystemExit(main())
