"""Bench L: many rows. Time and peak memory of the whole command, and how memory grows
with the number of candidates.

The data is ``make_classification(100_000, 32, n_informative=16, n_classes=3,
random_state=0)`` made non-negative (sorensen is a metric only there), written
as a CSV as a user would have it. The command is the one a user runs::

    python -m pipeline run L.csv --k 1-50 --workers 2 --quiet

(four metrics, uniform votes, stratified 5-fold), timed as a whole process, its
process tree's peak PSS (shared pages split between the processes mapping them:
what the run really occupies) sampled every 100 ms. It runs again with
``--k 1-5`` and with one metric, so the peak can be compared across 10 times
fewer candidates: the neighbour lists are kept per unit of work, not per
candidate, so the peak should stay flat.

    python benchmarks/big_n.py             # bench L, about two minutes on 2 cores
    python benchmarks/big_n.py --quick     # 10,000 rows: a check that it runs
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.measure import MIB, PeakSampler  # noqa: E402

BUDGET_MIB = 300
"""What a run may take beyond its data (README's target for bench L)."""


@dataclass(frozen=True)
class Run:
    label: str
    candidates: int
    seconds: float
    peak_pss_mib: float


def write_data(path: Path, rows: int, features: int) -> int:
    """The bench L data as a CSV with a header; returns the features' bytes in memory."""
    from sklearn.datasets import make_classification

    X, y = make_classification(
        rows, features, n_informative=features // 2, n_classes=3, random_state=0
    )
    X = np.abs(X)
    header = ",".join([*(f"f{i}" for i in range(features)), "label"])
    table = np.column_stack([X, y])
    np.savetxt(path, table, delimiter=",", header=header, comments="", fmt="%.6g")
    return int(X.nbytes)


def timed(label: str, data: Path, options: list[str], candidates: int) -> Run:
    command = [sys.executable, "-m", "pipeline", "run", str(data), "--quiet", *options]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)
    with PeakSampler(process.pid) as sampler:
        status = process.wait()
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"{label}: the command exited with {status}")
    return Run(label, candidates, seconds, sampler.peaks().pss_all)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 rows, k 1..10")
    args = parser.parse_args()
    rows, k_max = (10_000, 10) if args.quick else (100_000, 50)
    metrics = "euclidean,manhattan,chebyshev,sorensen"
    with tempfile.TemporaryDirectory() as scratch:
        data = Path(scratch) / "L.csv"
        data_mib = write_data(data, rows, 32) / MIB
        common = ["--workers", "2", "--cv", "kfold:5"]
        runs = [
            timed(
                f"k 1..{k_max}, 4 metrics",
                data,
                [*common, "--k", f"1-{k_max}", "--metrics", metrics],
                4 * k_max,
            ),
            timed(
                f"k 1..{k_max // 10}, 4 metrics",
                data,
                [*common, "--k", f"1-{k_max // 10}", "--metrics", metrics],
                4 * (k_max // 10),
            ),
            timed(
                f"k 1..{k_max}, euclidean",
                data,
                [*common, "--k", f"1-{k_max}", "--metrics", "euclidean"],
                k_max,
            ),
        ]
    print(f"bench L: {rows:,} rows x 32 features, 5 folds, 2 workers; data {data_mib:.0f} MiB")
    print(f"{'run':<24} {'candidates':>10} {'seconds':>8} {'peak PSS MiB':>13} {'- data':>8}")
    for run in runs:
        print(
            f"{run.label:<24} {run.candidates:>10} {run.seconds:>8.1f} "
            f"{run.peak_pss_mib:>13.0f} {run.peak_pss_mib - data_mib:>8.0f}"
        )
    most, fewest = runs[0], runs[1]
    print(
        f"peak beyond the data: {most.peak_pss_mib - data_mib:.0f} MiB "
        f"(target <= {BUDGET_MIB}); {most.candidates} candidates against {fewest.candidates}: "
        f"{most.peak_pss_mib / fewest.peak_pss_mib:.2f}x the peak"
    )


if __name__ == "__main__":
    main()
