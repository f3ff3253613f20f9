"""The k-NN tuning job: load, partition, plan, neighbours, score, rank; and its model.

The entry points are :func:`tune` and :class:`Tuning`, whose result's
``model()`` is a :class:`KNNModel`, and :func:`predict` / :class:`Prediction`
to classify many samples on the pool; the stage functions in
:mod:`stages.flow` can be wired by hand into a :class:`pipeline.Pipeline`.

Names are imported on first use, so a pool worker that only needs the kernels
(``stages.neighbours``) does not import scikit-learn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .dataset import Dataset
    from .load import load_dataset
    from .model import KNNModel, ModelFileError
    from .partition import CvSpec, make_folds, parse_cv
    from .predicting import Prediction, PredictionSummary, predict
    from .rank import RankedCandidate
    from .results import TuningResult
    from .search_cv import KNNSearchCV
    from .search_space import Candidate, SearchSpace
    from .tuning import Tuning, compute_pool, tune

_EXPORTS = {
    "Candidate": "search_space",
    "CvSpec": "partition",
    "Dataset": "dataset",
    "KNNModel": "model",
    "KNNSearchCV": "search_cv",
    "ModelFileError": "model",
    "Prediction": "predicting",
    "PredictionSummary": "predicting",
    "predict": "predicting",
    "RankedCandidate": "rank",
    "SearchSpace": "search_space",
    "Tuning": "tuning",
    "TuningResult": "results",
    "compute_pool": "tuning",
    "load_dataset": "load",
    "make_folds": "partition",
    "parse_cv": "partition",
    "tune": "tuning",
}

__all__ = [
    "Candidate",
    "CvSpec",
    "Dataset",
    "KNNModel",
    "KNNSearchCV",
    "ModelFileError",
    "Prediction",
    "PredictionSummary",
    "RankedCandidate",
    "SearchSpace",
    "Tuning",
    "TuningResult",
    "compute_pool",
    "load_dataset",
    "make_folds",
    "parse_cv",
    "predict",
    "tune",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'stages' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return __all__
