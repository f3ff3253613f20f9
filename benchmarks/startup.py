"""Whole-process times: the default run against a bare ``import numpy``, and the S grid
against the ``GridSearchCV`` script a scikit-learn user writes, in one run.

    python benchmarks/startup.py              # 5 runs of each, medians
    python benchmarks/startup.py --repeats 15  # steadier medians
    python benchmarks/startup.py --quick      # 1 run of each, a small grid: a smoke test

Every command is a fresh interpreter timed from start to exit, so imports,
starting the worker pool and printing count. Other processes may share the
CPUs, so compare the ratios printed in one run. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the ``benchmarks`` package importable
    sys.path.insert(0, str(ROOT))

from benchmarks.data import METRICS, SIZES, WEIGHTS, Size, make_bundle  # noqa: E402
from benchmarks.measure import become_subreaper, reap_orphans  # noqa: E402
from benchmarks.report import TIMES, header, load_average, ratio, table  # noqa: E402
from benchmarks.sections import Target, targets_section  # noqa: E402

STARTUP_TARGET = 4.0
"""The default run may take at most this many times a bare ``import numpy``."""
S_TARGET = 50.0
"""The user's GridSearchCV script on S should take at least this many times our CLI."""
WORKERS = 2
TOLERANCE = 1e-12
QUICK = Size("XS-quick", 300, 8, 2)

USER_SCRIPT = '''\
"""What a scikit-learn user writes to tune k-NN on a CSV with a column of folds."""

import json
import sys

import numpy as np
from sklearn.model_selection import GridSearchCV, PredefinedSplit
from sklearn.neighbors import KNeighborsClassifier

path, k_max, n_jobs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
table = np.loadtxt(path, delimiter=",", skiprows=1)
X, y, fold = table[:, :-2], table[:, -2].astype(int), table[:, -1].astype(int)
grid = {
    "n_neighbors": list(range(1, k_max + 1)),
    "metric": ["euclidean", "manhattan", "chebyshev", "braycurtis"],
    "weights": ["uniform", "distance"],
}
search = GridSearchCV(
    KNeighborsClassifier(algorithm="brute"), grid, cv=PredefinedSplit(fold), n_jobs=n_jobs
)
search.fit(X, y)
print(search.best_params_, search.best_score_)
if len(sys.argv) > 4:  # for the benchmark: every candidate's mean accuracy
    scores = {
        f"k={p['n_neighbors']} {p['metric']} {p['weights']}": float(s)
        for p, s in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"])
    }
    with open(sys.argv[4], "w") as out:
        json.dump(scores, out)
'''


@dataclass(frozen=True)
class Timed:
    """Whole-process seconds of several runs of one command."""

    label: str
    runs: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    def row(self, reference: Timed | None = None) -> list[str]:
        shown = f"{self.median:.3f}" if self.median < 10 else f"{self.median:.1f}"
        return [
            self.label,
            shown,
            f"{min(self.runs):.3f}",
            f"{max(self.runs):.3f}",
            str(len(self.runs)),
            ratio(self.median / reference.median) if reference is not None else "reference",
        ]


def _environment() -> dict[str, str]:
    """This environment, with bytecode caching on: an installed package has its modules
    compiled, so a run that recompiled ours each time would measure the compiler."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run_once(command: Sequence[str], env: dict[str, str]) -> float:
    """Seconds from starting ``command`` to its exit; raise if it fails.

    Output goes to files rather than pipes, so the clock stops when the
    process exits, not when a helper process holding a pipe lets go.
    """
    with tempfile.TemporaryFile("w+") as errors:
        started = time.perf_counter()
        proc = subprocess.Popen(
            list(command), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=errors
        )
        proc.wait()
        seconds = time.perf_counter() - started
        reap_orphans()  # its forkserver and tracker exit after it: not on the next run's time
        if proc.returncode != 0:
            errors.seek(0)
            raise RuntimeError(
                f"{' '.join(command)[:200]} failed ({proc.returncode}):\n{errors.read()}"
            )
    return seconds


def time_alternating(
    commands: dict[str, Sequence[str]], repeats: int, warm_up: bool, env: dict[str, str]
) -> dict[str, Timed]:
    """Each command ``repeats`` times, taking turns, so a busy moment hits all alike."""
    if warm_up:  # bytecode written, files in the page cache
        for command in commands.values():
            run_once(command, env)
    runs: dict[str, list[float]] = {label: [] for label in commands}
    for _ in range(repeats):
        for label, command in commands.items():
            runs[label].append(run_once(command, env))
    return {label: Timed(label, times) for label, times in runs.items()}


def time_bracketing(
    short: tuple[str, Sequence[str]],
    long: tuple[str, Sequence[str]],
    repeats: tuple[int, int],
    warm_up: bool,
    env: dict[str, str],
) -> tuple[Timed, Timed]:
    """The short command's runs before, between and after the long one's, in even shares.

    A sub-second command run nine times in a row and a twenty-second one run
    after it would see the machine in different minutes, and its speed moves
    by a fifth between them here; bracketed, the short runs' median comes
    from the same minutes as the long runs.
    """
    (short_label, short_command), (long_label, long_command) = short, long
    short_repeats, long_repeats = repeats
    if warm_up:
        run_once(short_command, env)
    share, extra = divmod(short_repeats, long_repeats + 1)
    short_runs: list[float] = []
    long_runs: list[float] = []
    for turn in range(long_repeats + 1):
        short_runs += [run_once(short_command, env) for _ in range(share + (turn < extra))]
        if turn < long_repeats:
            long_runs.append(run_once(long_command, env))
    return Timed(short_label, short_runs), Timed(long_label, long_runs)


HEADINGS = ["command", "median s", "min s", "max s", "runs", f"{TIMES} reference"]


def startup_section(repeats: int, warm_up: bool, env: dict[str, str]) -> list[Target]:
    """``python -c "import numpy"`` against ``python -m pipeline run`` (Iris, defaults)."""
    python = sys.executable
    timed = time_alternating(
        {
            'python -c "import numpy"': [python, "-c", "import numpy"],
            "python -m pipeline run": [python, "-m", "pipeline", "run"],
        },
        repeats,
        warm_up,
        env,
    )
    numpy_run, ours = timed.values()
    print(f"\n== start-up: the default run (Iris, 80 candidates, {os.cpu_count()} CPUs)")
    print(table(HEADINGS, [numpy_run.row(), ours.row(numpy_run)]))
    times = ours.median / numpy_run.median
    print(f"ratio start-up: python -m pipeline run = {ratio(times)} python -c 'import numpy'")
    return [
        Target(
            f"default run <= {STARTUP_TARGET:g}{TIMES} a bare import numpy (whole process)",
            times <= STARTUP_TARGET,
            f"{ratio(times)} ({ours.median:.3f} s against {numpy_run.median:.3f} s)",
        )
    ]


def write_csv(size: Size, path: Path) -> None:
    """The size's data with a label and a fold column (the benchmark's folds), exactly
    representable: every float written with 17 significant digits."""
    bundle = make_bundle(size.rows, size.features)
    names = [f"x{i}" for i in range(size.features)]
    table_ = np.column_stack([bundle.X, bundle.y, bundle.fold])
    formats = ["%.17g"] * size.features + ["%d", "%d"]
    np.savetxt(
        path,
        table_,
        delimiter=",",
        fmt=formats,
        header=",".join([*names, "label", "fold"]),
        comments="",
    )


def _our_scores(path: Path) -> dict[str, float]:
    results = json.loads(path.read_text(encoding="utf-8"))
    scores = {}
    for candidate in results["candidates"]:
        params = candidate["params"]
        metric = "braycurtis" if params["metric"] == "sorensen" else params["metric"]
        scores[f"k={params['k']} {metric} {params['weights']}"] = candidate["mean_accuracy"]
    return scores


def _agreement(ours: dict[str, float], theirs: dict[str, float]) -> tuple[bool, str]:
    differ = [k for k, v in theirs.items() if k not in ours or abs(ours[k] - v) > TOLERANCE]
    if differ or len(ours) != len(theirs):
        return False, f"DISAGREE on {len(differ)} of {len(theirs)} (ours ran {len(ours)})"
    return True, f"agree ({len(theirs)}/{len(theirs)} within {TOLERANCE:g})"


@dataclass(frozen=True)
class Plan:
    """How many runs of what: the size, the repeats, and the user's ``n_jobs``."""

    size: Size
    repeats: int
    grid_repeats: int
    warm_up: bool
    n_jobs: int = WORKERS


def grid_section(plan: Plan, env: dict[str, str], scratch: Path) -> list[Target]:
    """Our CLI on the size's CSV against the user's GridSearchCV script, both whole processes."""
    size = plan.size
    data = scratch / f"{size.name}.csv"
    write_csv(size, data)
    script = scratch / "user_gridsearch.py"
    script.write_text(USER_SCRIPT, encoding="utf-8")
    ours_json, theirs_json = scratch / "ours.json", scratch / "theirs.json"
    python = sys.executable
    grid = ["--k", f"1-{size.k_max}", "--metrics", ",".join(METRICS)]
    grid += ["--weights", ",".join(WEIGHTS)]
    ours_label = "python -m pipeline run DATA.csv ..."
    ours_command = [python, "-m", "pipeline", "run", str(data), "--label", "label"]
    ours_command += ["--cv", "column:fold", *grid, "--workers", str(WORKERS)]
    ours_command += ["--quiet", "--out", str(ours_json)]
    theirs_label = "python user_gridsearch.py DATA.csv"
    theirs_command = [python, str(script), str(data), str(size.k_max), str(plan.n_jobs)]
    theirs_command.append(str(theirs_json))
    print(
        f"  running ours {plan.repeats}x and GridSearchCV {plan.grid_repeats}x on {size.name} ...",
        file=sys.stderr,
        flush=True,
    )
    mine, grids = time_bracketing(
        (ours_label, ours_command),
        (theirs_label, theirs_command),
        (plan.repeats, plan.grid_repeats),
        plan.warm_up,
        env,
    )
    ours, theirs = {ours_label: mine}, {theirs_label: grids}
    agree, agreement = _agreement(_our_scores(ours_json), json.loads(theirs_json.read_text()))
    print(
        f"\n== {size.name} as whole processes: {size.rows:,} rows {TIMES} {size.features}"
        f" features, folds as a column, k 1..{size.k_max} {TIMES} {len(METRICS)} metrics"
        f" {TIMES} {len(WEIGHTS)} weights = {size.candidates} candidates; ours --workers"
        f" {WORKERS}, GridSearchCV n_jobs={plan.n_jobs}"
    )
    print(table(HEADINGS, [ours[ours_label].row(), theirs[theirs_label].row(ours[ours_label])]))
    print(f"mean accuracies: {agreement}; load {load_average()}")
    times = theirs[theirs_label].median / ours[ours_label].median
    print(f"ratio {size.name}: GridSearchCV script = {ratio(times)} our CLI (whole process)")
    return [
        Target(
            f"{size.name}: every candidate's mean accuracy within {TOLERANCE:g}", agree, agreement
        ),
        Target(
            f"{size.name}: GridSearchCV script >= {S_TARGET:g}{TIMES} our CLI (whole process)",
            times >= S_TARGET,
            ratio(times),
        ),
    ]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each command (5)")
    parser.add_argument(
        "--grid-repeats", type=int, default=1, help="runs of the GridSearchCV script (1)"
    )
    parser.add_argument("--size", choices=list(SIZES), default="S", help="grid size (S)")
    parser.add_argument(
        "--quick", action="store_true", help="1 run of each, no warm-up, a 300-row grid"
    )
    args = parser.parse_args(argv)
    args.size = QUICK if args.quick else SIZES[args.size]
    if args.quick:
        args.repeats = args.grid_repeats = 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if hasattr(sys.stdout, "reconfigure"):  # each table as soon as it is measured
        sys.stdout.reconfigure(line_buffering=True)
    print(header("Whole-process times: start-up and the grid against GridSearchCV", ROOT))
    become_subreaper()  # so the helpers a run leaves behind can be waited for
    env = _environment()
    warm_up = not args.quick
    targets = startup_section(args.repeats, warm_up, env)
    # --quick: GridSearchCV on one process, sparing the smoke test joblib's worker start-up
    plan = Plan(args.size, args.repeats, args.grid_repeats, warm_up, 1 if args.quick else WORKERS)
    with tempfile.TemporaryDirectory(prefix="knn_bench_startup_") as scratch:
        targets += grid_section(plan, env, Path(scratch))
    warmed = ", after one untimed run of each (bytecode compiled, files cached)" if warm_up else ""
    print(
        "\nwhole process: from starting the interpreter to its exit (imports, reading the data,"
        f" starting workers, printing); the median of the runs, taken in turns (ours before,"
        f" between and after the GridSearchCV runs){warmed}"
    )
    targets_section(targets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
