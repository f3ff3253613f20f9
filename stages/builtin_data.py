"""The built-in data sets (``iris``, ``wine``, ``breast_cancer``, ``digits``), read from
the files scikit-learn ships, without importing scikit-learn.

``sklearn.datasets.load_iris()`` and the others cost the second that
importing scikit-learn takes, more than the whole Iris tuning; the files they
read are in scikit-learn's installed package, found by
:func:`importlib.util.find_spec` (which does not run ``sklearn/__init__``).
They are parsed as scikit-learn's loaders parse them, and the names those
loaders hard-code are copied here as data; ``tests/stages/test_builtin_data.py``
holds arrays and names equal to the loaders'. Should a later scikit-learn
keep its files elsewhere, its loader is imported and called instead.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from pipeline.errors import InputError

__all__ = ["BUILTIN_DATASETS", "Builtin", "read_builtin"]

BUILTIN_DATASETS: dict[str, str] = {
    "iris": "load_iris",
    "wine": "load_wine",
    "breast_cancer": "load_breast_cancer",
    "digits": "load_digits",
}
"""Data sets bundled with scikit-learn (no download needed), by their loader in
``sklearn.datasets``."""

_FILES = {
    "iris": "iris.csv",
    "wine": "wine_data.csv",
    "breast_cancer": "breast_cancer.csv",
    "digits": "digits.csv.gz",
}

# The feature names scikit-learn's loaders hard-code (sklearn/datasets/_base.py).
_FEATURE_NAMES: dict[str, list[str]] = {
    "iris": [
        "sepal length (cm)",
        "sepal width (cm)",
        "petal length (cm)",
        "petal width (cm)",
    ],
    "wine": [
        "alcohol",
        "malic_acid",
        "ash",
        "alcalinity_of_ash",
        "magnesium",
        "total_phenols",
        "flavanoids",
        "nonflavanoid_phenols",
        "proanthocyanins",
        "color_intensity",
        "hue",
        "od280/od315_of_diluted_wines",
        "proline",
    ],
    "breast_cancer": [
        "mean radius",
        "mean texture",
        "mean perimeter",
        "mean area",
        "mean smoothness",
        "mean compactness",
        "mean concavity",
        "mean concave points",
        "mean symmetry",
        "mean fractal dimension",
        "radius error",
        "texture error",
        "perimeter error",
        "area error",
        "smoothness error",
        "compactness error",
        "concavity error",
        "concave points error",
        "symmetry error",
        "fractal dimension error",
        "worst radius",
        "worst texture",
        "worst perimeter",
        "worst area",
        "worst smoothness",
        "worst compactness",
        "worst concavity",
        "worst concave points",
        "worst symmetry",
        "worst fractal dimension",
    ],
    "digits": [f"pixel_{row}_{column}" for row in range(8) for column in range(8)],
}


@dataclass(frozen=True)
class Builtin:
    """One built-in data set as scikit-learn's loader gives it."""

    data: npt.NDArray[np.float64]
    target: npt.NDArray[np.intp]
    feature_names: list[str]
    target_names: list[str]


def read_builtin(name: str) -> Builtin:
    """Read the built-in data set ``name`` (a key of :data:`BUILTIN_DATASETS`)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(
            f"{name}: the built-in data sets come with scikit-learn, which is not installed; "
            "pip install scikit-learn, or give a CSV/.npy/.npz file"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    path = folder / _FILES[name]
    if not path.is_file():
        return _from_sklearn(name)
    if name == "digits":
        return _read_digits(path)
    return _read_csv(name, path)


def _read_csv(name: str, path: Path) -> Builtin:
    """As ``sklearn.datasets.load_csv_data``: a first line of ``n_samples, n_features,
    target names...``, then rows of features and an integer target."""
    text = path.read_text(encoding="utf-8")
    header = next(csv.reader(io.StringIO(text)))
    n_samples, n_features = int(header[0]), int(header[1])
    table = np.loadtxt(io.StringIO(text), delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
    if table.shape != (n_samples, n_features + 1):
        raise InputError(
            f"{name}: scikit-learn's {path} holds {table.shape[0]} x {table.shape[1]} values, "
            f"not the {n_samples} x {n_features + 1} its first line says; reinstall scikit-learn"
        )
    return Builtin(
        data=np.ascontiguousarray(table[:, :-1]),
        target=table[:, -1].astype(np.intp),
        feature_names=list(_FEATURE_NAMES[name]),
        target_names=[str(t) for t in header[2:]],
    )


def _read_digits(path: Path) -> Builtin:
    """As ``sklearn.datasets.load_digits``: 64 pixels and the digit on each line."""
    with gzip.open(path, mode="rt", encoding="utf-8") as handle:
        table = np.loadtxt(handle, delimiter=",", ndmin=2)
    return Builtin(
        data=np.ascontiguousarray(table[:, :-1]),
        target=table[:, -1].astype(np.intp),
        feature_names=list(_FEATURE_NAMES["digits"]),
        target_names=[str(t) for t in range(10)],
    )


def _from_sklearn(name: str) -> Builtin:
    """scikit-learn's own loader: the slow way, for a layout this module does not know."""
    from sklearn import datasets

    bunch = getattr(datasets, BUILTIN_DATASETS[name])()
    return Builtin(
        data=np.asarray(bunch.data, dtype=np.float64),
        target=np.asarray(bunch.target, dtype=np.intp),
        feature_names=[str(f) for f in bunch.feature_names],
        target_names=[str(t) for t in bunch.target_names],
    )
