"""Benchmark classifying new samples with a model against scikit-learn, in one run.

    python benchmarks/predict.py                    # 200,000 samples, 20,000 x 32 model
    python benchmarks/predict.py --repeats 5        # best of 5 runs of each, not 3
    python benchmarks/predict.py --quick            # small sizes, one run each (a smoke test)

Two comparisons per metric, every contender in a fresh interpreter:

- in-process: ``KNNModel.predict(X, n_jobs=2)`` against
  ``KNeighborsClassifier(algorithm="brute", n_jobs=2).fit(...).predict(X)``,
  timed around ``predict`` only;
- whole process: ``python -m pipeline predict MODEL SAMPLES.npy --out FILE``
  against the script a scikit-learn user writes (benchmarks/sklearn_predict.py),
  each timed from start to exit.

Each contender runs ``--repeats`` times, the contenders taking turns, and its
fastest run counts: one sample on a shared machine can be off by half. Then
the peak memory of each at fewer samples, to see whether it grows with
them. Other processes may share the CPUs, so compare ratios within a run.
See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the ``benchmarks`` package importable
    sys.path.insert(0, str(ROOT))

from benchmarks.data import METRICS, SEED, SKLEARN_METRIC  # noqa: E402
from benchmarks.measure import Memory, become_subreaper, run_measured  # noqa: E402
from benchmarks.predict_contenders import CLASSES, PredictTask  # noqa: E402
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
from benchmarks.sections import Target, targets_section  # noqa: E402

SPEED_TARGET = 2.0
FLAT_SLACK_MIB = 16.0
"""Peak PSS may grow this much from the smaller to the larger run and still count as flat."""
CLASSIFIED = re.compile(r"classified \d+ rows.* in ([0-9.]+) s")
CONTENDERS = {
    "ours": "ours, KNNModel.predict (threads)",
    "sklearn": "KNeighborsClassifier.predict",
    "ours-cli": "ours, python -m pipeline predict",
    "sklearn-script": "scikit-learn script (fit, predict, savetxt)",
}


@dataclass(frozen=True)
class Sizes:
    """Training rows and features of the model, samples to classify, samples of the memory run."""

    train: int
    features: int
    samples: int
    memory_samples: int


@dataclass(frozen=True)
class Figures:
    """One contender's run: seconds that count, CPU of its process tree, memory, predictions."""

    seconds: float
    cpu: float
    memory: Memory
    predictions: npt.NDArray[np.int64]
    pipeline_seconds: float | None = None
    load: str = ""


@dataclass
class Files:
    """The data written once, in a scratch directory, and read by every contender."""

    scratch: Path
    sizes: Sizes
    k: int

    def __post_init__(self) -> None:
        from sklearn.datasets import make_classification

        s = self.sizes
        X, y = make_classification(
            n_samples=s.train + s.samples,
            n_features=s.features,
            n_informative=s.features // 2,
            n_classes=len(CLASSES),
            random_state=SEED,
        )
        X = np.abs(X).astype(np.float64)  # non-negative, so sorensen is a metric
        self.X_train, self.y_train = X[: s.train], y[: s.train].astype(np.intp)
        np.savez(self.train, X=self.X_train, y=self.y_train)
        for n in {s.samples, s.memory_samples}:
            np.save(self.samples(n), X[s.train : s.train + n])
        self.model_mib = self.X_train.nbytes / 2**20

    @property
    def train(self) -> Path:
        return self.scratch / "train.npz"

    def samples(self, n: int) -> Path:
        return self.scratch / f"samples_{n}.npy"

    def samples_mib(self, n: int) -> float:
        return n * self.sizes.features * 8 / 2**20

    def model(self, metric: str) -> Path:
        """The model file of ``metric`` (what ``run --save-model`` would have written)."""
        from stages.model import KNNModel

        path = self.scratch / f"{metric}.knn"
        if not path.exists():
            model = KNNModel(
                self.X_train, self.y_train, np.asarray(CLASSES), k=self.k, metric=metric
            )
            model.save(path)
        return path


def _progress(text: str) -> None:
    print(f"  running {text} ...", file=sys.stderr, flush=True)


def _in_process(files: Files, contender: str, metric: str, n: int, workers: int) -> Figures:
    """``predict`` timed inside a fresh interpreter; CPU and memory of its whole tree."""
    out = files.scratch / f"report_{contender}.json"
    predictions = files.scratch / f"predictions_{contender}.npy"
    task = PredictTask(
        contender=contender,
        train=str(files.train),
        samples=str(files.samples(n)),
        metric=metric,
        k=files.k,
        workers=workers,
        predictions=str(predictions),
        out=str(out),
    )
    run = run_measured([sys.executable, "-m", "benchmarks.predict_contenders", task.to_json()])
    report = json.loads(out.read_text(encoding="utf-8"))
    return Figures(
        report["seconds"],
        run.cpu - report["setup_cpu"],
        run.memory,
        np.load(predictions).astype(np.int64),
        load=load_average(),
    )


def _read_csv(path: Path) -> npt.NDArray[np.int64]:
    """The prediction column of a ``row,prediction`` CSV, checking the rows are in order."""
    rows = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.int64, ndmin=2)
    if not np.array_equal(rows[:, 0], np.arange(rows.shape[0])):
        raise RuntimeError(f"{path}: rows are not 0, 1, 2, ... in order")
    return rows[:, 1]


def _whole_process(files: Files, contender: str, metric: str, n: int, workers: int) -> Figures:
    """A command a user runs, timed from its start to its exit."""
    out = files.scratch / f"predictions_{contender}.csv"
    if contender == "ours-cli":
        command = [
            sys.executable,
            "-m",
            "pipeline",
            "predict",
            str(files.model(metric)),
            str(files.samples(n)),
            "--out",
            str(out),
            "--quiet",
            "--workers",
            str(workers),
        ]
    else:
        command = [
            sys.executable,
            str(ROOT / "benchmarks" / "sklearn_predict.py"),
            str(files.train),
            str(files.samples(n)),
            str(out),
            "--metric",
            SKLEARN_METRIC[metric],
            "--k",
            str(files.k),
            "--n-jobs",
            str(workers),
        ]
    run = run_measured(command)
    found = CLASSIFIED.search(run.stderr)
    return Figures(
        run.wall,
        run.cpu,
        run.memory,
        _read_csv(out),
        pipeline_seconds=float(found.group(1)) if found else None,
        load=load_average(),
    )


def measure(files: Files, contender: str, metric: str, n: int, workers: int) -> Figures:
    _progress(f"{CONTENDERS[contender]}, {metric}, {n:,} samples")
    if contender in ("ours", "sklearn"):
        return _in_process(files, contender, metric, n, workers)
    return _whole_process(files, contender, metric, n, workers)


def _agree(a: Figures, b: Figures) -> str:
    same = int(np.count_nonzero(a.predictions == b.predictions))
    return f"{same:,}/{b.predictions.size:,}" + ("" if same == b.predictions.size else " DIFFER")


PAIRS = (("in-process", "ours", "sklearn"), ("whole process", "ours-cli", "sklearn-script"))


def speed_section(
    files: Files, metrics: list[str], workers: int, repeats: int = 1
) -> tuple[dict[tuple[str, str], Figures], list[Target]]:
    """Every metric, both comparisons at the full sample count, each contender's fastest
    of ``repeats`` runs taken in turns; ratio tables and targets."""
    n = files.sizes.samples
    results: dict[tuple[str, str], Figures] = {}
    for metric in metrics:
        runs: dict[str, list[Figures]] = {contender: [] for contender in CONTENDERS}
        for _ in range(repeats):  # in turns, so a busy moment hits all alike
            for contender in CONTENDERS:
                runs[contender].append(measure(files, contender, metric, n, workers))
        for contender, figures in runs.items():
            results[contender, metric] = min(figures, key=lambda f: f.seconds)
    targets: list[Target] = []
    for label, ours, theirs in PAIRS:
        rows = []
        for metric in metrics:
            us, them = results[ours, metric], results[theirs, metric]
            speed = them.seconds / us.seconds
            rows.append(
                [
                    metric,
                    seconds(us.seconds),
                    "" if us.pipeline_seconds is None else seconds(us.pipeline_seconds),
                    seconds(them.seconds),
                    ratio(speed),
                    seconds(us.cpu),
                    seconds(them.cpu),
                    ratio(them.cpu / us.cpu),
                    mib(us.memory.pss_all),
                    mib(them.memory.pss_all),
                    _agree(us, them),
                    f"{us.load}/{them.load}",
                ]
            )
            targets.append(
                Target(
                    f"predict {label}, {metric}: ≥ {SPEED_TARGET:g}{TIMES} faster than sklearn",
                    speed >= SPEED_TARGET,
                    ratio(speed),
                )
            )
        timed = "predict only" if ours == "ours" else "start to exit"
        print(
            f"\n== {label}: {n:,} samples against a {files.sizes.train:,} {TIMES}"
            f" {files.sizes.features} model, k={files.k}, uniform, {workers} workers ({timed},"
            f" best of {repeats})"
        )
        headers = [
            "metric",
            "ours s",
            "of which pipeline s",
            "sklearn s",
            f"sklearn/ours {TIMES}",
            "ours CPU s",
            "sklearn CPU s",
            f"CPU {TIMES}",
            "ours PSS MiB",
            "sklearn PSS MiB",
            "equal predictions",
            "load ours/sklearn",
        ]
        if ours == "ours":  # in-process: no pipeline of its own to report
            headers, rows = headers[:2] + headers[3:], [r[:2] + r[3:] for r in rows]
        print(table(headers, rows))
    print("\n== ratios (sklearn seconds / ours)")
    for metric in metrics:
        speeds = [results[t, metric].seconds / results[o, metric].seconds for _, o, t in PAIRS]
        print(f"ratio {metric}: in-process {ratio(speeds[0])}, whole process {ratio(speeds[1])}")
    print(
        "in-process: the clock runs around predict only, in a fresh interpreter that has loaded"
        " the data and built its classifier; whole process: from the command's start to its exit"
        " (interpreter, imports, reading files, fit or model load, predict, writing the CSV);"
        " 'of which pipeline' is the time the CLI reports for its prediction run; CPU: user+sys of"
        " the process and all its descendants; PSS: peak sum over the process tree"
    )
    return results, targets


def memory_section(
    files: Files, metric: str, workers: int, full: dict[tuple[str, str], Figures]
) -> list[Target]:
    """Peak PSS at fewer samples beside the full run's: does memory grow with the samples?"""
    small, large = files.sizes.memory_samples, files.sizes.samples
    extra = files.samples_mib(large) - files.samples_mib(small)
    rows, targets = [], []
    for contender, name in CONTENDERS.items():
        at_small = measure(files, contender, metric, small, workers).memory.pss_all
        at_large = full[contender, metric].memory.pss_all
        growth = at_large - at_small
        held = contender in ("ours", "sklearn")  # the caller holds the samples in memory
        beyond = growth - extra if held else growth
        flat = beyond <= FLAT_SLACK_MIB
        rows.append(
            [
                name,
                mib(at_small),
                mib(at_large),
                mib(growth),
                "yes (array in memory)" if held else "no (.npy file)",
                mib(beyond),
                "flat" if flat else "GROWS",
            ]
        )
        if contender.startswith("ours"):
            targets.append(
                Target(
                    f"{name}: peak memory flat in the samples ({small:,} → {large:,})",
                    flat,
                    f"{mib(at_small)} → {mib(at_large)} MiB PSS"
                    + (f", {mib(beyond)} MiB beyond the samples held" if held else ""),
                )
            )
    print(
        f"\n== memory: peak PSS of the process tree, {metric}, {small:,} and {large:,} samples"
        f" ({files.samples_mib(small):.1f} and {files.samples_mib(large):.1f} MiB of samples;"
        f" model {files.model_mib:.1f} MiB)"
    )
    print(
        table(
            [
                "contender",
                f"PSS MiB at {small:,}",
                f"PSS MiB at {large:,}",
                "growth MiB",
                "samples held by the caller",
                "growth beyond them MiB",
                f"flat (≤ {FLAT_SLACK_MIB:g} MiB)",
            ],
            rows,
        )
    )
    print(
        "in-process contenders are handed the samples as an array, so their peak includes"
        f" {extra:.1f} MiB more samples at {large:,}; the commands read a .npy file"
    )
    return targets


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200_000, help="samples to classify")
    parser.add_argument(
        "--memory-samples", type=int, default=50_000, help="samples of the smaller memory run"
    )
    parser.add_argument("--train", type=int, default=20_000, help="training rows of the model")
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument(
        "--metrics", default=",".join(METRICS), help="comma-separated (default: all four)"
    )
    parser.add_argument("--workers", type=int, default=2, help="threads, processes or n_jobs")
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs of each contender, fastest counts (3)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="1,000 x 8 model, 4,000 samples, one run each"
    )
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats: give 1 or more")
    if args.quick:
        args.train, args.features, args.samples, args.memory_samples = 1_000, 8, 4_000, 1_000
        args.repeats = 1
    args.metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    unknown = [m for m in args.metrics if m not in METRICS]
    if unknown:
        parser.error(f"--metrics: unknown {', '.join(unknown)}; choose from {', '.join(METRICS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if hasattr(sys.stdout, "reconfigure"):  # each table as soon as it is measured
        sys.stdout.reconfigure(line_buffering=True)
    become_subreaper()
    started_at = revision(ROOT)
    print(header("knn-pipeline prediction against scikit-learn", ROOT), flush=True)
    sizes = Sizes(args.train, args.features, args.samples, args.memory_samples)
    with tempfile.TemporaryDirectory(prefix="knn_bench_predict_") as scratch:
        files = Files(Path(scratch), sizes, args.k)
        full, targets = speed_section(files, args.metrics, args.workers, args.repeats)
        targets += memory_section(files, args.metrics[0], args.workers, full)
    targets_section(targets)
    if (now := revision(ROOT)) != started_at:  # others may commit while a long run goes on
        print(f"code changed during the run; at the end: {now}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
