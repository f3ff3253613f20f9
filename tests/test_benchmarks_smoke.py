"""The benchmark harness runs end to end on tiny data, so it does not rot.

No timing is asserted (the machine may be busy); only that every section
prints and that every contender's scores agree with ours.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HARNESS = Path(__file__).resolve().parents[1] / "benchmarks" / "vs_sklearn.py"


def run_quick(script: Path, timeout: float = 180) -> str:
    """What a benchmark script prints with ``--quick``, once it has exited with 0."""
    done = subprocess.run(
        [sys.executable, str(script), "--quick"], capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_harness_runs_and_contenders_agree() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(HARNESS),
            "--size",
            "XS",
            "--k-max",
            "2",
            "--once",
            "--contenders",
            "--kernel",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for section in ("== contenders", "== kernel", "== targets"):
        assert section in out
    rows = [line for line in out.splitlines() if line[:3] in ("1 G", "2 G", "3 o", "1w ", "4w ")]
    assert len(rows) == 5, out
    assert all("agree (16/16" in row for row in rows), out
    assert "DISAGREE" not in out


PREDICT = HARNESS.parent / "predict.py"


def test_predict_benchmark_runs_and_agrees() -> None:
    done = subprocess.run(
        [sys.executable, str(PREDICT), "--quick", "--metrics", "euclidean"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for section in ("== in-process", "== whole process", "== memory", "== targets"):
        assert section in out
    assert "ratio euclidean: in-process " in out and ", whole process " in out, out
    assert "DIFFER" not in out


SEARCH_CV = HARNESS.parent / "search_cv.py"


def test_search_cv_benchmark_runs_and_agrees() -> None:
    done = subprocess.run(
        [sys.executable, str(SEARCH_CV), "--quick"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "== XS" in out and "== targets" in out
    assert "ratio XS: fit " in out and ", whole process " in out, out
    assert "agree (24/24 within 1e-12)" in out, out
    assert "DISAGREE" not in out and "DIFFER" not in out


def test_csv_loading_benchmark_runs_and_reads_what_numpy_reads() -> None:
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "csv_load.py"
    stdout = run_quick(script, timeout=120)
    assert "features equal to np.loadtxt's: yes" in stdout
    assert "== targets" in stdout and "ours, load_dataset" in stdout


def test_dask_benchmark_runs_and_every_configuration_agrees() -> None:
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "on_dask.py"
    stdout = run_quick(script, timeout=300)
    assert "leaderboards equal everywhere: yes" in stdout
    assert "bytes to workers" in stdout and "dask local:2" in stdout


def test_events_benchmark_runs_and_every_sink_gets_every_event() -> None:
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "events_cost.py"
    stdout = run_quick(script, timeout=300)
    assert "--events FILE holds every unit_done: yes" in stdout
    assert "--log-to holds every unit_done: yes" in stdout


def test_startup_benchmark_runs_and_the_grid_agrees() -> None:
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "startup.py"
    out = run_quick(script)
    assert "== start-up" in out and "== targets" in out
    assert "ratio start-up: python -m pipeline run = " in out
    assert "ratio XS-quick: GridSearchCV script = " in out
    assert "mean accuracies: agree (16/16 within 1e-12)" in out, out
    assert "DISAGREE" not in out


KERNEL = HARNESS.parent / "kernel.py"


def test_kernel_benchmark_runs_every_metric_at_every_width() -> None:
    out = run_quick(KERNEL)
    assert "== kernel widths" in out and "slowest ratio ours/sklearn" in out, out
    table_rows = [line.split() for line in out.splitlines() if line.split()[:1]]
    for metric in ("euclidean", "manhattan", "chebyshev", "sorensen", "cosine", "minkowski:3"):
        widths = {row[1] for row in table_rows if row[0] == metric and len(row) >= 8}
        assert widths == {"16", "64"}, (metric, out)
    assert "differ" not in out, out


FAISS_COSINE = HARNESS.parent / "faiss_cosine.py"


def test_faiss_benchmark_runs_and_finds_faiss_neighbours() -> None:
    out = run_quick(FAISS_COSINE)
    assert "slowest ratio ours/faiss" in out, out
    assert "200 of 200" in out, out  # random embeddings: no near-ties, the same neighbours


BIG_N = HARNESS.parent / "big_n.py"


def test_big_n_benchmark_runs_and_reports_every_run() -> None:
    out = run_quick(BIG_N)
    assert "bench L: 10,000 rows x 32 features" in out, out
    for label in ("k 1..10, 4 metrics", "k 1..1, 4 metrics", "k 1..10, euclidean"):
        assert label in out, out
    assert "peak beyond the data:" in out and "the peak" in out, out


COMPARE = HARNESS.parent / "compare_revisions.py"


def test_revision_comparison_runs_both_trees_in_turns() -> None:
    done = subprocess.run(
        [sys.executable, str(COMPARE), "HEAD", "--quick"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line.split() for line in done.stdout.splitlines()]
    ours = next(row for row in rows if row[:2] == ["this", "checkout"])
    theirs = next(row for row in rows if row[:1] == ["HEAD"])
    assert float(ours[2]) > 0 and float(theirs[1]) > 0
    assert "this checkout takes" in done.stdout
    worktrees = subprocess.run(
        ["git", "worktree", "list"], cwd=HARNESS.parents[1], capture_output=True, text=True
    )
    assert "knn_bench_revision_" not in worktrees.stdout  # removed after the runs
