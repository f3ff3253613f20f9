"""Benchmark ``KNNSearchCV.fit`` against scikit-learn's ``GridSearchCV.fit``, in one run.

    python benchmarks/search_cv.py                  # sizes S and M (M's GridSearchCV estimated)
    python benchmarks/search_cv.py --sizes S
    python benchmarks/search_cv.py --quick          # XS, k 1..3: a smoke test

Both get the same call: ``param_grid`` over ``n_neighbors``, ``metric`` and
``weights``, ``cv=StratifiedKFold(5, shuffle=True, random_state=0)``,
``n_jobs=2``, then ``.fit(X, y)``, each in a fresh interpreter. Every
candidate's ``mean_test_score`` must agree within 1e-12 and ``best_params_``
must be the same. Other processes may share the CPUs, so compare ratios
within a run. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the ``benchmarks`` package importable
    sys.path.insert(0, str(ROOT))

from benchmarks.data import METRICS, SIZES, WEIGHTS, Size, make_bundle  # noqa: E402
from benchmarks.measure import Memory, become_subreaper, run_measured  # noqa: E402
from benchmarks.report import (  # noqa: E402
    TIMES,
    header,
    load_average,
    mib,
    ratio,
    revision,
    seconds,
    table,
)
from benchmarks.search_contenders import SearchTask  # noqa: E402
from benchmarks.sections import Target, targets_section  # noqa: E402

TOLERANCE = 1e-12
WORKERS = 2
SPEED_TARGETS = {"S": 50.0, "M": 200.0}
CONTENDERS = {
    "ours": "KNNSearchCV",
    "grid": "GridSearchCV(KNeighborsClassifier(algorithm='brute'))",
}


@dataclass(frozen=True)
class Result:
    """One contender on one size: fit seconds, whole-process seconds, CPU, memory, scores.

    For an estimate (a subset of the candidates, scaled up), ``fit`` and
    ``cpu`` are scaled by the ratio of candidates and ``wall`` is the subset
    run's fixed part (start-up, imports, data) plus the scaled fit.
    """

    fit: float
    wall: float
    cpu: float
    memory: Memory
    scores: dict[str, float]
    order: list[str]
    best: str
    load: str
    note: str = ""


def _progress(text: str) -> None:
    print(f"  running {text} ...", file=sys.stderr, flush=True)


def run_search(task: SearchTask, scratch: Path) -> Result:
    """``task`` in a fresh interpreter: fit timed inside, the whole process outside."""
    out = scratch / f"report_{task.contender}.json"
    task = replace(task, out=str(out))
    run = run_measured([sys.executable, "-m", "benchmarks.search_contenders", task.to_json()])
    report = json.loads(out.read_text(encoding="utf-8"))
    return Result(
        fit=report["seconds"],
        wall=run.wall,
        cpu=run.cpu - report["setup_cpu"],
        memory=run.memory,
        scores=report["scores"],
        order=report["order"],
        best=report["best"],
        load=load_average(),
    )


def _candidates(ks: tuple[int, ...]) -> int:
    return len(ks) * len(METRICS) * len(WEIGHTS)


def _scaled(subset: Result, ks: tuple[int, ...], full: int) -> Result:
    """A plain grid search costs the same per candidate: scale its fit by the candidates."""
    factor = full / _candidates(ks)
    fit = subset.fit * factor
    return Result(
        fit=fit,
        wall=subset.wall - subset.fit + fit,
        cpu=subset.cpu * factor,
        memory=subset.memory,
        scores=subset.scores,
        order=subset.order,
        best=subset.best,
        load=subset.load,
        note=f"estimated from {_candidates(ks)} of {full} candidates (k in {list(ks)})",
    )


def _best_among(result: Result, keys: set[str]) -> str:
    """``best_params_`` by scikit-learn's rule among ``keys``: highest mean, first in grid order."""
    order = [key for key in result.order if key in keys]
    best = order[0]
    for key in order[1:]:
        if result.scores[key] > result.scores[best]:
            best = key
    return best


def _agreement(theirs: Result, ours: Result) -> tuple[str, str, bool]:
    """Score and best-parameter cells, and whether both agree."""
    keys = set(theirs.scores)
    missing = keys - set(ours.scores)
    if missing:
        return f"MISMATCHED GRID ({len(missing)} candidates)", "", False
    differ = [k for k in keys if abs(theirs.scores[k] - ours.scores[k]) > TOLERANCE]
    if differ:
        worst = max(abs(theirs.scores[k] - ours.scores[k]) for k in differ)
        scores = f"DISAGREE on {len(differ)} of {len(keys)} (max |Δ| {worst:.1e})"
    else:
        scores = f"agree ({len(keys)}/{len(keys)} within {TOLERANCE:g})"
    subset = len(keys) < len(ours.scores)
    ours_best = _best_among(ours, keys) if subset else ours.best
    same_best = ours_best == theirs.best
    best = ("same" if same_best else f"DIFFER: ours {ours_best}, theirs {theirs.best}") + (
        f" (best of the {len(keys)} run)" if subset else ""
    )
    return scores, best, not differ and same_best


def _heading(size: Size, rows: int, features: int) -> str:
    return (
        f"\n== {size.name}: {rows:,} rows {TIMES} {features} features, 3 classes,"
        f" StratifiedKFold(5, shuffle=True, random_state=0), n_neighbors 1..{size.k_max}"
        f" {TIMES} {len(METRICS)} metrics {TIMES} {len(WEIGHTS)} weights"
        f" = {size.candidates} candidates, n_jobs={WORKERS}"
    )


def size_section(size: Size, scratch: Path, full_grid: bool) -> list[Target]:
    """Ours and GridSearchCV on one size; a table, ratio lines and the targets."""
    bundle = make_bundle(size.rows, size.features)
    path = bundle.save(scratch / f"{size.name}.npz")

    def task(contender: str, ks: tuple[int, ...]) -> SearchTask:
        return SearchTask(contender, str(path), ks, METRICS, WEIGHTS, WORKERS, "")

    _progress(f"{CONTENDERS['ours']} on {size.name}")
    ours = run_search(task("ours", size.ks), scratch)
    subsets = None if full_grid else size.subsets.get("grid")
    if subsets:
        ks = subsets[0]
        _progress(f"{CONTENDERS['grid']} on {size.name}, k in {list(ks)}")
        theirs = _scaled(run_search(task("grid", ks), scratch), ks, size.candidates)
    else:
        _progress(f"{CONTENDERS['grid']} on {size.name}")
        theirs = run_search(task("grid", size.ks), scratch)
    scores, best, agree = _agreement(theirs, ours)
    agree = agree and len(ours.scores) == size.candidates
    fit_ratio, wall_ratio = theirs.fit / ours.fit, theirs.wall / ours.wall
    estimated = " (estimated)" if theirs.note else ""
    rows = [
        [
            CONTENDERS["ours"],
            seconds(ours.fit),
            seconds(ours.wall),
            seconds(ours.cpu),
            mib(ours.memory.pss_all),
            str(len(ours.scores)),
            f"1.0{TIMES}",
            f"1.0{TIMES}",
            "reference",
            "reference",
            ours.load,
            "",
        ],
        [
            CONTENDERS["grid"],
            seconds(theirs.fit) + estimated,
            seconds(theirs.wall) + estimated,
            seconds(theirs.cpu),
            mib(theirs.memory.pss_all),
            str(len(theirs.scores)),
            ratio(fit_ratio),
            ratio(wall_ratio),
            scores,
            best,
            theirs.load,
            theirs.note,
        ],
    ]
    print(_heading(size, bundle.X.shape[0], bundle.X.shape[1]))
    print(
        table(
            [
                "contender",
                "fit s",
                "whole process s",
                "fit CPU s",
                "peak PSS MiB",
                "candidates run",
                f"fit {TIMES} slower",
                f"whole {TIMES} slower",
                "mean_test_score vs ours",
                "best_params_",
                "load",
                "note",
            ],
            rows,
        )
    )
    print(f"ratio {size.name}: fit {ratio(fit_ratio)}, whole process {ratio(wall_ratio)}")
    targets = [
        Target(f"{size.name}: mean_test_score within {TOLERANCE:g}, same best_params_", agree, best)
    ]
    wanted = SPEED_TARGETS.get(size.name)
    if wanted is not None:
        targets.append(
            Target(
                f"{size.name}: KNNSearchCV.fit ≥ {wanted:g}{TIMES} faster than GridSearchCV.fit",
                fit_ratio >= wanted,
                ratio(fit_ratio) + estimated,
            )
        )
    return targets


NOTE = (
    "fit: the clock around .fit(X, y) in a fresh interpreter that has imported its library and"
    " loaded the data (starting worker pools is part of fit); whole process: the interpreter from"
    " start to exit; fit CPU: user+sys of the process and all its descendants, less what it used"
    " before fit; peak PSS: sum over the process tree; an estimate's memory is its subset run's"
)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="S,M", help="comma-separated sizes (default S,M)")
    parser.add_argument("--k-max", type=int, help="n_neighbors 1..K instead of the size's own")
    parser.add_argument(
        "--full-grid",
        action="store_true",
        help="run GridSearchCV on every candidate even on M (about 35 minutes more)",
    )
    parser.add_argument("--quick", action="store_true", help="XS with n_neighbors 1..3")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.k_max = "XS", args.k_max or 3
    names = [n.strip() for n in args.sizes.split(",") if n.strip()]
    unknown = [n for n in names if n not in SIZES]
    if unknown:
        parser.error(f"--sizes: unknown {', '.join(unknown)}; choose from {', '.join(SIZES)}")
    args.sizes = [
        SIZES[n] if args.k_max is None else SIZES[n].with_k_max(args.k_max) for n in names
    ]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if hasattr(sys.stdout, "reconfigure"):  # each table as soon as it is measured
        sys.stdout.reconfigure(line_buffering=True)
    become_subreaper()
    started_at = revision(ROOT)
    print(header("KNNSearchCV against scikit-learn's GridSearchCV", ROOT), flush=True)
    targets: list[Target] = []
    with tempfile.TemporaryDirectory(prefix="knn_bench_search_") as scratch:
        for size in args.sizes:
            targets += size_section(size, Path(scratch), args.full_grid)
    print(NOTE)
    targets_section(targets)
    if (now := revision(ROOT)) != started_at:  # others may commit while a long run goes on
        print(f"code changed during the run; at the end: {now}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
