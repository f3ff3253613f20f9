"""The benchmark data, its folds and the grid, written once and read by every contender.

Every contender loads the same ``.npz`` bundle (features, labels, fold of each
row), so all of them see the same rows and the same predefined folds: those of
``StratifiedKFold(5, shuffle=True, random_state=0)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

METRICS = ("euclidean", "manhattan", "chebyshev", "sorensen")
WEIGHTS = ("uniform", "distance")
SKLEARN_METRIC = {
    "euclidean": "euclidean",
    "manhattan": "manhattan",
    "chebyshev": "chebyshev",
    "sorensen": "braycurtis",
}
FOLDS = 5
SEED = 0

Split = tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]


@dataclass(frozen=True)
class Size:
    """One benchmark size: data shape, grid and how the slow contenders are cut down.

    ``subsets`` maps a contender to the ``k`` values it runs instead of the full
    grid: one subset is scaled by the ratio of candidates, two are extrapolated
    by a straight line through both (for costs with a fixed part, like a cache).
    """

    name: str
    rows: int
    features: int
    k_max: int
    subsets: dict[str, tuple[tuple[int, ...], ...]] = field(default_factory=dict)
    scaling_rows: tuple[int, ...] = (5_000, 10_000, 20_000, 40_000)
    scaling_features: int = 32
    scaling_k_max: int = 50

    @property
    def ks(self) -> tuple[int, ...]:
        return tuple(range(1, self.k_max + 1))

    @property
    def candidates(self) -> int:
        return len(METRICS) * len(WEIGHTS) * self.k_max

    def with_k_max(self, k_max: int) -> Size:
        """The same data with a smaller (or larger) grid; subsets keep only their valid ``k``."""
        subsets = {
            name: kept
            for name, runs in self.subsets.items()
            if (kept := tuple(t for ks in runs if (t := tuple(k for k in ks if k <= k_max))))
        }
        return replace(self, k_max=k_max, subsets=subsets)


SIZES = {
    "XS": Size(
        "XS",
        1_000,
        8,
        10,
        scaling_rows=(500, 1_000, 2_000, 4_000),
        scaling_features=8,
        scaling_k_max=10,
    ),
    "S": Size("S", 5_000, 16, 20),
    "M": Size(
        "M",
        20_000,
        32,
        50,
        subsets={
            "grid": ((1, 25, 50),),
            "grid-warm": ((1, 25, 50),),
            "cached": ((25,), (1, 25, 50)),
            "ours-no-reuse": ((25,),),
        },
    ),
}


@dataclass(frozen=True)
class Bundle:
    """Features, labels and the test fold of every row."""

    X: npt.NDArray[np.float64]
    y: npt.NDArray[np.intp]
    fold: npt.NDArray[np.intp]

    @property
    def mebibytes(self) -> float:
        """Size of the features and labels, the floor of any run's memory."""
        return (self.X.nbytes + self.y.nbytes) / 2**20

    def splits(self) -> list[Split]:
        """(train, test) row indices per fold, in fold order, as scikit-learn's ``cv=``."""
        return [
            (np.flatnonzero(self.fold != f), np.flatnonzero(self.fold == f))
            for f in range(int(self.fold.max()) + 1)
        ]

    def save(self, path: Path) -> Path:
        np.savez(path, X=self.X, y=self.y, fold=self.fold)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Bundle:
        with np.load(path) as data:
            return cls(X=data["X"], y=data["y"], fold=data["fold"])


def make_bundle(rows: int, features: int) -> Bundle:
    """Three-class data made non-negative (so sorensen is a metric), with stratified folds."""
    from sklearn.datasets import make_classification
    from sklearn.model_selection import StratifiedKFold

    X, y = make_classification(
        n_samples=rows,
        n_features=features,
        n_informative=features // 2,
        n_classes=3,
        random_state=SEED,
    )
    X = np.abs(X).astype(np.float64)
    y = y.astype(np.intp)
    fold = np.full(rows, -1, dtype=np.intp)
    splitter = StratifiedKFold(FOLDS, shuffle=True, random_state=SEED)
    for number, (_train, test) in enumerate(splitter.split(X, y)):
        fold[test] = number
    return Bundle(X=X, y=y, fold=fold)


def candidate_key(k: int, metric: str, weights: str) -> str:
    """One name per candidate, shared by every contender's results."""
    return f"k={k} {metric} {weights}"
