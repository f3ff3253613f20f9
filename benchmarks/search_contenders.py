"""The grid-search contenders, each alone in a fresh interpreter.

    python -m benchmarks.search_contenders '<task as JSON>'

Both are called as a scikit-learn user calls them: the same ``param_grid``
(scikit-learn's parameter and metric names), ``cv=StratifiedKFold(5,
shuffle=True, random_state=0)`` and ``n_jobs``, then ``.fit(X, y)``. The child
imports its library and loads the data before the clock starts; the clock runs
around ``fit`` only (the parent also times the whole process). It writes a JSON
report: seconds, the CPU used before the work began, every candidate's
``mean_test_score`` and ``best_params_``.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from benchmarks.contenders import own_cpu_seconds
from benchmarks.data import FOLDS, SEED, SKLEARN_METRIC, Bundle

Scores = dict[str, float]


@dataclass(frozen=True)
class SearchTask:
    """What one child runs: which contender, on which data, over which grid."""

    contender: str
    bundle: str
    ks: tuple[int, ...]
    metrics: tuple[str, ...]
    weights: tuple[str, ...]
    workers: int
    out: str

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SearchTask:
        raw = json.loads(text)
        for name in ("ks", "metrics", "weights"):
            raw[name] = tuple(raw[name])
        return cls(**raw)

    def param_grid(self) -> dict[str, list[Any]]:
        return {
            "n_neighbors": list(self.ks),
            "metric": [SKLEARN_METRIC[m] for m in self.metrics],
            "weights": list(self.weights),
        }


def params_key(params: dict[str, Any]) -> str:
    """One name per candidate, whichever contender scored it."""
    return f"k={int(params['n_neighbors'])} {params['metric']} {params['weights']}"


def _cv() -> Any:
    from sklearn.model_selection import StratifiedKFold

    return StratifiedKFold(FOLDS, shuffle=True, random_state=SEED)


def grid_search(task: SearchTask) -> Any:
    """``GridSearchCV(KNeighborsClassifier(algorithm="brute"))``: a fit per candidate and fold."""
    from sklearn.model_selection import GridSearchCV
    from sklearn.neighbors import KNeighborsClassifier

    return GridSearchCV(
        KNeighborsClassifier(algorithm="brute"),
        task.param_grid(),
        cv=_cv(),
        n_jobs=task.workers,
    )


def ours(task: SearchTask) -> Any:
    """``KNNSearchCV``: the same call with one import changed."""
    from stages import KNNSearchCV

    return KNNSearchCV(param_grid=task.param_grid(), cv=_cv(), n_jobs=task.workers)


CONTENDERS = {
    "grid": (("sklearn.model_selection", "sklearn.neighbors"), grid_search),
    "ours": (("stages.search_cv",), ours),
}
"""Each contender with the modules it imports before the clock starts."""


def main(argv: list[str]) -> int:
    """Run the task given as JSON in ``argv[0]``; write the report to ``task.out``."""
    task = SearchTask.from_json(argv[0])
    modules, build = CONTENDERS[task.contender]
    for module in modules:  # an application has imported its libraries before it tunes
        importlib.import_module(module)
    data = Bundle.load(task.bundle)
    search = build(task)
    setup_cpu = own_cpu_seconds()
    started = time.perf_counter()
    search.fit(data.X, data.y)
    seconds = time.perf_counter() - started
    results = search.cv_results_
    scores: Scores = {
        params_key(p): float(s)
        for p, s in zip(results["params"], results["mean_test_score"], strict=True)
    }
    report = {
        "seconds": seconds,
        "setup_cpu": setup_cpu,
        "scores": scores,
        "order": [params_key(p) for p in results["params"]],
        "best": params_key(search.best_params_),
    }
    with open(task.out, "w", encoding="utf-8") as out:
        json.dump(report, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
