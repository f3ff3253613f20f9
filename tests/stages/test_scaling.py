"""Scaling fitted on each training fold, against scikit-learn's pipelines on the same folds."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import LeaveOneOut, StratifiedKFold, cross_validate
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

from stages import Dataset, tune
from stages.model import KNNModel
from stages.scaling import fit_scale
from stages.search_space import SKLEARN_METRIC
from tests.stages.test_model import tie_free

SCALERS = {"standard": StandardScaler, "minmax": MinMaxScaler, "robust": RobustScaler}


@pytest.fixture(scope="module")
def unscaled() -> tuple[np.ndarray, np.ndarray]:
    """Tie-free features on very different scales, and one constant column."""
    X, y = tie_free(210, features=5, seed=4)
    X = X * np.array([1.0, 1000.0, 0.001, 50.0, 7.0])
    return np.column_stack([X, np.full(len(X), 3.0)]), y


@pytest.mark.parametrize("kind", sorted(SCALERS))
def test_fitted_scalers_equal_scikit_learns(unscaled, kind) -> None:  # type: ignore[no-untyped-def]
    X, _ = unscaled
    ours = fit_scale(kind, X[:150])
    assert ours is not None
    theirs = SCALERS[kind]().fit(X[:150])
    np.testing.assert_allclose(
        ours.apply(X[150:]), theirs.transform(X[150:]), rtol=1e-12, atol=1e-12
    )


async def test_every_scaling_scores_as_a_scikit_learn_pipeline_per_fold(unscaled) -> None:  # type: ignore[no-untyped-def]
    X, y = unscaled
    data = Dataset(X=X, y=y.astype(np.intp), classes=["a", "b", "c"], source="scaled")
    result = await tune(
        data,
        k=[1, 4, 9],
        metrics="euclidean,manhattan,chebyshev",
        weights="uniform,distance",
        scale="none,standard,minmax,robust",
        workers=2,
    )
    assert len(result.candidates) == 3 * 3 * 2 * 4
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    for row in result.candidates:
        c = row.candidate
        knn = KNeighborsClassifier(
            n_neighbors=c.k, metric=SKLEARN_METRIC[c.metric], weights=c.weights, algorithm="brute"
        )
        estimator = knn if c.scale == "none" else make_pipeline(SCALERS[str(c.scale)](), knn)
        expected = cross_validate(estimator, X, y, cv=folds)["test_score"]
        assert row.fold_accuracy == pytest.approx(list(expected), abs=1e-12), c
        assert row.candidate.params()["scale"] == c.scale


async def test_the_scaled_model_and_its_scikit_learn_twin_agree(unscaled, tmp_path) -> None:  # type: ignore[no-untyped-def]
    X, y = unscaled
    data = Dataset(X=X, y=y.astype(np.intp), classes=["a", "b", "c"], source="scaled")
    result = await tune(data, k=[5], metrics="manhattan", scale="robust", workers=1)
    model = result.model()
    assert model.scale == "robust" and model.params()["scale"] == "robust"
    queries, _ = tie_free(40, features=5, seed=9)
    queries = np.column_stack(
        [queries * np.array([1.0, 1000.0, 0.001, 50.0, 7.0]), np.full(40, 3.0)]
    )
    twin = model.to_sklearn()
    assert isinstance(twin, Pipeline) and isinstance(twin[0], RobustScaler)
    assert (twin.predict(queries) == model.predict(queries)).all()
    np.testing.assert_allclose(
        twin.predict_proba(queries), model.predict_proba(queries), atol=1e-12
    )
    model.save(tmp_path / "m.knn")
    loaded = KNNModel.load(tmp_path / "m.knn")
    assert loaded.scale == "robust"
    np.testing.assert_array_equal(loaded.predict_proba(queries), model.predict_proba(queries))


async def test_scaling_is_fitted_per_fold_under_leave_one_out(unscaled) -> None:  # type: ignore[no-untyped-def]
    X, y = unscaled
    X, y = X[:40], y[:40]
    data = Dataset(X=X, y=y.astype(np.intp), classes=["a", "b", "c"], source="loo")
    result = await tune(data, k=[3], metrics="euclidean", scale="standard", cv="loo", workers=2)
    expected = cross_validate(
        make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=3, algorithm="brute")),
        X,
        y,
        cv=LeaveOneOut(),
    )["test_score"]
    assert result.candidates[0].mean_accuracy == pytest.approx(expected.mean(), abs=1e-12)


def test_a_nearly_constant_column_is_left_unscaled_as_scikit_learn_does() -> None:
    rng = np.random.default_rng(0)
    X = np.column_stack([1e12 + rng.random(50) * 1e-3, rng.random(50)])
    ours = fit_scale("standard", X)
    assert ours is not None
    np.testing.assert_allclose(ours.apply(X), StandardScaler().fit(X).transform(X), atol=1e-12)
