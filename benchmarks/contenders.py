"""The contenders, each run alone in a fresh interpreter: ``python -m benchmarks.contenders``.

A fresh process per contender keeps one contender's memory, caches and
worker pools out of the next one's figures. The child times only the work
(not its imports or loading the data) and writes a JSON report for the parent:
seconds, the CPU it had used before the work began, and the mean accuracy of
every candidate it scored.

Scikit-learn and the project are imported by ``main`` before the clock starts
(an application has its libraries loaded before it tunes), not at the top of
this module: worker processes import it as their main module and need none
of them.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from benchmarks.data import SKLEARN_METRIC, Bundle, candidate_key

Scores = dict[str, float]

HEARTBEAT_SECONDS = 0.010
IDLE_SECONDS = 2.0


@dataclass(frozen=True)
class Task:
    """What one child runs: which contender, on which data, over which grid."""

    contender: str
    bundle: str
    ks: tuple[int, ...]
    k_max: int
    metrics: tuple[str, ...]
    weights: tuple[str, ...]
    workers: int
    out: str

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Task:
        raw = json.loads(text)
        raw["ks"], raw["metrics"], raw["weights"] = (
            tuple(raw["ks"]),
            tuple(raw["metrics"]),
            tuple(raw["weights"]),
        )
        return cls(**raw)


def _scores_from_search(search: Any, names: dict[str, str]) -> Scores:
    """Candidate → mean accuracy from ``cv_results_``, with parameter names mapped to ours."""
    ours_metric = {v: k for k, v in SKLEARN_METRIC.items()}
    results = search.cv_results_
    scores: Scores = {}
    for params, mean in zip(results["params"], results["mean_test_score"], strict=True):
        plain = {names[key]: value for key, value in params.items()}
        key = candidate_key(int(plain["k"]), ours_metric[plain["metric"]], plain["weights"])
        scores[key] = float(mean)
    return scores


def grid_search(task: Task, data: Bundle) -> tuple[Scores, dict[str, Any]]:
    """Contender 1: a plain grid search, one fit and one prediction per candidate and fold."""
    from sklearn.model_selection import GridSearchCV
    from sklearn.neighbors import KNeighborsClassifier

    grid = {
        "n_neighbors": list(task.ks),
        "metric": [SKLEARN_METRIC[m] for m in task.metrics],
        "weights": list(task.weights),
    }
    search = GridSearchCV(
        KNeighborsClassifier(algorithm="brute"),
        grid,
        cv=data.splits(),
        n_jobs=task.workers,
        refit=False,
    )
    search.fit(data.X, data.y)
    names = {"n_neighbors": "k", "metric": "metric", "weights": "weights"}
    return _scores_from_search(search, names), {}


def cached_graph(task: Task, data: Bundle) -> tuple[Scores, dict[str, Any]]:
    """Contender 2: scikit-learn's documented pattern, a cached k_max-neighbour graph.

    The training graph of each (metric, fold) is computed once and read back
    from the pipeline's cache; the test rows' graph is computed again for
    every candidate, as ``Pipeline.score`` does not cache transforms.
    """
    from sklearn.model_selection import GridSearchCV
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsTransformer
    from sklearn.pipeline import Pipeline

    grid = {
        "graph__metric": [SKLEARN_METRIC[m] for m in task.metrics],
        "knn__n_neighbors": list(task.ks),
        "knn__weights": list(task.weights),
    }
    with tempfile.TemporaryDirectory(prefix="knn_graph_cache_") as cache:
        pipe = Pipeline(
            [
                (
                    "graph",
                    KNeighborsTransformer(
                        n_neighbors=task.k_max, mode="distance", algorithm="brute"
                    ),
                ),
                ("knn", KNeighborsClassifier(metric="precomputed")),
            ],
            memory=cache,
        )
        search = GridSearchCV(pipe, grid, cv=data.splits(), n_jobs=task.workers, refit=False)
        search.fit(data.X, data.y)
    names = {"graph__metric": "metric", "knn__n_neighbors": "k", "knn__weights": "weights"}
    return _scores_from_search(search, names), {}


def bundle_dataset(data: Bundle) -> Any:
    """The bundle as the project's Dataset, its folds given as a predefined-fold column."""
    from stages import Dataset

    return Dataset(
        X=data.X,
        y=data.y,
        classes=["0", "1", "2"],
        source="make_classification",
        groups=data.fold.astype(str).astype(object),
    )


def _tuning(task: Task, data: Bundle, *, reuse: bool, pool: Any = None) -> Any:
    from stages import Tuning

    return Tuning(
        bundle_dataset(data),
        k=list(task.ks),
        metrics=list(task.metrics),
        weights=list(task.weights),
        cv="column:fold",
        seed=0,
        workers=None if pool else task.workers,
        pool=pool,
        reuse_neighbours=reuse,
    )


def _scores_from_result(result: Any) -> Scores:
    return {
        candidate_key(r.candidate.k, r.candidate.metric, r.candidate.weights): r.mean_accuracy
        for r in result.candidates
    }


def ours(task: Task, data: Bundle) -> tuple[Scores, dict[str, Any]]:
    """Contender 4: the project as shipped (one neighbour list per fold and metric)."""
    result = asyncio.run(_tuning(task, data, reuse=True).run())
    return _scores_from_result(result), {}


def ours_no_reuse(task: Task, data: Bundle) -> tuple[Scores, dict[str, Any]]:
    """Contender 3: the project computing distances again for every candidate."""
    result = asyncio.run(_tuning(task, data, reuse=False).run())
    return _scores_from_result(result), {}


# Warm pools: an application that has tuned before has its worker processes
# running, their libraries loaded. Both sides get that before the clock starts.


def _import_in_worker(module: str) -> int:
    """Import ``module`` in a pool worker; linger so the next task goes to another worker."""
    importlib.import_module(module)
    time.sleep(0.2)
    return os.getpid()


def _warm_loky(task: Task) -> None:
    """Start joblib's reusable loky workers (GridSearchCV's) with scikit-learn loaded."""
    from joblib import Parallel, delayed

    modules = ("sklearn.model_selection", "sklearn.neighbors") * task.workers
    Parallel(n_jobs=task.workers)(delayed(_import_in_worker)(m) for m in modules)


def grid_search_warm(task: Task, data: Bundle) -> tuple[Scores, dict[str, Any]]:
    """Contender 1 with its workers started and scikit-learn imported before the clock."""
    _warm_loky(task)
    started = time.perf_counter()
    scores, _ = grid_search(task, data)
    return scores, {"seconds": time.perf_counter() - started}


def ours_warm(task: Task, data: Bundle) -> tuple[Scores, dict[str, Any]]:
    """Ours on a pool that was started (workers up, kernels loaded) before the clock."""
    from stages import compute_pool

    with asyncio.Runner() as runner:
        pool = compute_pool(task.workers)
        runner.run(pool.__aenter__())
        try:
            runner.run(pool.run(os.getpid))  # returns once every worker is up
            started = time.perf_counter()
            result = runner.run(_tuning(task, data, reuse=True, pool=pool).run())
            seconds = time.perf_counter() - started
        finally:
            runner.run(pool.aclose())
    return _scores_from_result(result), {"seconds": seconds}


Lags = list[tuple[float, float]]
"""(seconds since the heartbeat started, lateness in seconds) of each wake-up."""


async def _heartbeat(lags: Lags, stop: asyncio.Event) -> None:
    """Sleep 10 ms at a time and record when, and how late, each wake-up was."""
    start = time.perf_counter()
    while not stop.is_set():
        asleep = time.perf_counter()
        await asyncio.sleep(HEARTBEAT_SECONDS)
        woke = time.perf_counter()
        lags.append((woke - start, woke - asleep - HEARTBEAT_SECONDS))


async def _heartbeat_alone(seconds: float) -> Lags:
    """The lateness of an idle loop: what the machine alone adds."""
    lags: Lags = []
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(seconds, stop.set)
    await _heartbeat(lags, stop)
    return lags


async def _tune_beside_heartbeat(task: Task, data: Bundle) -> tuple[Any, Lags]:
    lags: Lags = []
    stop = asyncio.Event()
    beating = asyncio.create_task(_heartbeat(lags, stop))
    try:
        result = await _tuning(task, data, reuse=True).run()
    finally:
        stop.set()
        await beating
    return result, lags


def _lateness(lags: Lags) -> dict[str, float]:
    """Percentiles of lateness, and when the worst wake-up came (start-up, steady, end)."""
    when = np.asarray([w for w, _ in lags])
    lag_ms = 1000 * np.maximum(np.asarray([lag for _, lag in lags]), 0.0)
    return {
        "ticks": int(lag_ms.size),
        "p50_ms": float(np.percentile(lag_ms, 50)),
        "p99_ms": float(np.percentile(lag_ms, 99)),
        "max_ms": float(lag_ms.max()),
        "max_at_s": float(when[int(lag_ms.argmax())]),
        "over_10ms": int(np.count_nonzero(lag_ms > 10.0)),
    }


def ours_with_heartbeat(task: Task, data: Bundle) -> tuple[Scores, dict[str, Any]]:
    """Ours in the same event loop as a 10 ms heartbeat: does the loop stay responsive?

    The heartbeat first runs alone for a moment, which shows how late an idle
    loop's wake-ups are on this machine right now.
    """
    idle = asyncio.run(_heartbeat_alone(IDLE_SECONDS))
    started = time.perf_counter()
    result, lags = asyncio.run(_tune_beside_heartbeat(task, data))
    extra = {"heartbeat": _lateness(lags), "idle": _lateness(idle)}
    return _scores_from_result(result), {**extra, "seconds": time.perf_counter() - started}


Contender = Callable[[Task, Bundle], tuple[Scores, dict[str, Any]]]
SKLEARN_MODULES = ("sklearn.model_selection", "sklearn.neighbors", "sklearn.pipeline")
OUR_MODULES = ("stages.tuning",)

CONTENDERS: dict[str, tuple[tuple[str, ...], Contender]] = {
    "grid": (SKLEARN_MODULES, grid_search),
    "cached": (SKLEARN_MODULES, cached_graph),
    "ours-no-reuse": (OUR_MODULES, ours_no_reuse),
    "ours": (OUR_MODULES, ours),
    "grid-warm": (SKLEARN_MODULES, grid_search_warm),
    "ours-warm": (OUR_MODULES, ours_warm),
    "ours-heartbeat": (OUR_MODULES, ours_with_heartbeat),
}
"""Each contender with the modules it imports before the clock starts."""


def own_cpu_seconds() -> float:
    """User plus system CPU time of this process so far (a contender's own work)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str]) -> int:
    """Run the task given as JSON in ``argv[0]``; write the report to ``task.out``."""
    task = Task.from_json(argv[0])
    modules, contender = CONTENDERS[task.contender]
    for module in modules:  # an application has imported its libraries before it tunes
        importlib.import_module(module)
    data = Bundle.load(task.bundle)
    setup_cpu = own_cpu_seconds()
    started = time.perf_counter()
    scores, extra = contender(task, data)
    seconds = extra.pop("seconds", time.perf_counter() - started)
    report = {"seconds": seconds, "setup_cpu": setup_cpu, "scores": scores, **extra}
    with open(task.out, "w", encoding="utf-8") as out:
        json.dump(report, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
