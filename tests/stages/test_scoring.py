"""Every score per fold equals scikit-learn's metric functions; --scoring picks what ranks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    precision_score,
    recall_score,
)
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier

from pipeline.errors import InputError
from stages import Dataset, Tuning, tune
from stages.metrics import sklearn_params
from stages.score import SCORES
from tests.stages.test_model import tie_free

METRIC_FUNCTIONS = {
    "accuracy": accuracy_score,
    "balanced_accuracy": balanced_accuracy_score,
    "f1_macro": lambda t, p: f1_score(t, p, average="macro"),
    "f1_weighted": lambda t, p: f1_score(t, p, average="weighted"),
    "precision_macro": lambda t, p: precision_score(t, p, average="macro"),
    "recall_macro": lambda t, p: recall_score(t, p, average="macro"),
}


@pytest.fixture(scope="module")
def skewed() -> tuple[np.ndarray, np.ndarray]:
    """Tie-free, with a rare class that large k never predicts (undefined precisions)."""
    X, y = tie_free(200, features=5, seed=21)
    keep = (y != 2) | (np.arange(200) % 5 == 0)
    return X[keep], y[keep]


async def test_every_score_of_every_fold_equals_scikit_learns(skewed) -> None:  # type: ignore[no-untyped-def]
    X, y = skewed
    data = Dataset(X=X, y=y.astype(np.intp), classes=["a", "b", "c"], source="skewed")
    result = await tune(
        data, k=[1, 6, 25], metrics="manhattan,cosine", weights="uniform,distance", workers=2
    )
    folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(X, y))
    for row in result.candidates:
        c = row.candidate
        knn = KNeighborsClassifier(
            n_neighbors=c.k, weights=c.weights, algorithm="brute", **sklearn_params(c.metric)
        )
        for name, function in METRIC_FUNCTIONS.items():
            expected = []
            for train, test in folds:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # undefined precision: 0, as we count it
                    expected.append(function(y[test], knn.fit(X[train], y[train]).predict(X[test])))
            assert row.fold_scores[name] == pytest.approx(expected, abs=1e-12), (c, name)
            assert row.to_dict()[f"mean_{name}"] == pytest.approx(np.mean(expected), abs=1e-12)
            assert row.to_dict()[f"std_{name}"] == pytest.approx(np.std(expected), abs=1e-12)


@pytest.mark.parametrize("scoring", ["balanced_accuracy", "f1_weighted", "recall_macro"])
async def test_scoring_ranks_as_grid_search_with_that_scorer(skewed, scoring) -> None:  # type: ignore[no-untyped-def]
    X, y = skewed
    data = Dataset(X=X, y=y.astype(np.intp), classes=["a", "b", "c"], source="skewed")
    result = await tune(data, k=[1, 3, 9, 25], metrics="euclidean", scoring=scoring, workers=1)
    assert result.to_dict()["scoring"] == scoring
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search = GridSearchCV(
            KNeighborsClassifier(algorithm="brute"),
            {"n_neighbors": [1, 3, 9, 25]},
            scoring=scoring,
            cv=StratifiedKFold(5, shuffle=True, random_state=0),
        ).fit(X, y)
    means = dict(
        zip(
            [p["n_neighbors"] for p in search.cv_results_["params"]],
            search.cv_results_["mean_test_score"],
            strict=True,
        )
    )
    assert [r.candidate.k for r in result.candidates] == sorted(
        means, key=lambda k: (-round(means[k], 12), k)
    )
    assert result.best is not None and result.best.mean_score == pytest.approx(
        search.best_score_, abs=1e-12
    )
    assert result.best.candidate.k == search.best_params_["n_neighbors"]


def test_an_unknown_scoring_is_refused() -> None:
    with pytest.raises(InputError, match="--scoring: unknown 'roc'; choose from accuracy"):
        Tuning("iris", scoring="roc")
    assert "accuracy" in SCORES
