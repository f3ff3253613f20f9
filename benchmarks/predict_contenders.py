"""The in-process prediction contenders, each alone in a fresh interpreter.

    python -m benchmarks.predict_contenders '<task as JSON>'

The child imports its library, loads the training rows and the samples, and
builds its classifier before the clock starts (an application has done all of
that before it predicts); the clock runs around ``predict`` only. It writes
the predictions as ``.npy`` (for the agreement check) and a JSON report:
seconds, and the CPU it had used before the work began.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from benchmarks.contenders import own_cpu_seconds
from benchmarks.data import SKLEARN_METRIC

CLASSES = (0, 1, 2)


@dataclass(frozen=True)
class PredictTask:
    """What one child runs: which contender, which files, which metric."""

    contender: str
    train: str
    samples: str
    metric: str
    k: int
    workers: int
    predictions: str
    out: str

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> PredictTask:
        return cls(**json.loads(text))


Predictor = Callable[[npt.NDArray[np.float64]], npt.NDArray[Any]]


def ours(task: PredictTask, X: npt.NDArray[np.float64], y: npt.NDArray[np.intp]) -> Predictor:
    """``KNNModel.predict`` on ``workers`` threads (the kernel releases the GIL)."""
    from stages.model import KNNModel

    model = KNNModel(X, y, np.asarray(CLASSES), k=task.k, metric=task.metric)
    return lambda samples: model.predict(samples, n_jobs=task.workers)


def sklearn(task: PredictTask, X: npt.NDArray[np.float64], y: npt.NDArray[np.intp]) -> Predictor:
    """``KNeighborsClassifier(algorithm="brute", n_jobs=workers)``, fitted before the clock."""
    from sklearn.neighbors import KNeighborsClassifier

    estimator = KNeighborsClassifier(
        n_neighbors=task.k,
        metric=SKLEARN_METRIC[task.metric],
        algorithm="brute",
        n_jobs=task.workers,
    ).fit(X, y)
    return estimator.predict  # type: ignore[no-any-return]


CONTENDERS: dict[str, tuple[str, Callable[..., Predictor]]] = {
    "ours": ("stages.model", ours),
    "sklearn": ("sklearn.neighbors", sklearn),
}
"""Each contender with the module it imports before the clock starts."""


def main(argv: list[str]) -> int:
    """Run the task given as JSON in ``argv[0]``; write predictions and the report."""
    task = PredictTask.from_json(argv[0])
    module, build = CONTENDERS[task.contender]
    importlib.import_module(module)
    with np.load(task.train) as data:
        X, y = data["X"], data["y"]
    samples = np.load(task.samples)
    predict = build(task, X, y)
    setup_cpu = own_cpu_seconds()
    started = time.perf_counter()
    predictions = predict(samples)
    seconds = time.perf_counter() - started
    np.save(task.predictions, np.asarray(predictions))
    with open(task.out, "w", encoding="utf-8") as out:
        json.dump({"seconds": seconds, "setup_cpu": setup_cpu}, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
