"""cosine and minkowski:P in the kernel, exact against SciPy and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.metrics.pairwise import cosine_distances
from sklearn.model_selection import StratifiedKFold, cross_validate
from sklearn.neighbors import KNeighborsClassifier

from pipeline.errors import InputError
from stages import Dataset, tune
from stages.kernels import kneighbors, transposed
from stages.metrics import from_sklearn, parse_metric, sklearn_params
from stages.model import KNNModel
from tests.stages.test_model import tie_free


@pytest.mark.parametrize("power", [1.0, 1.5, 3.0, 7.25])
def test_minkowski_distances_are_scipys_to_the_last_bit(power: float) -> None:
    rng = np.random.default_rng(int(power * 4))
    queries, points = rng.normal(size=(37, 9)), rng.normal(size=(700, 9))
    name = parse_metric(f"minkowski:{power}")
    columns, distances = kneighbors(name, queries, transposed(points), 12)
    expected = cdist(queries, points, "minkowski", p=power)
    order = np.argsort(expected, axis=1, kind="stable")[:, :12]
    np.testing.assert_array_equal(columns, order)
    np.testing.assert_array_equal(distances, np.take_along_axis(expected, order, axis=1))


def test_cosine_distances_are_scikit_learns_and_zero_rows_are_at_distance_one() -> None:
    rng = np.random.default_rng(3)
    queries, points = rng.normal(size=(30, 6)), rng.normal(size=(500, 6))
    points[7] = 0.0
    queries[4] = 0.0
    columns, distances = kneighbors("cosine", queries, transposed(points), 10)
    expected = cosine_distances(queries, points)
    order = np.argsort(expected, axis=1, kind="stable")[:, :10]
    np.testing.assert_array_equal(columns[np.arange(30) != 4], order[np.arange(30) != 4])
    np.testing.assert_allclose(distances, np.take_along_axis(expected, order, axis=1), atol=1e-12)
    np.testing.assert_array_equal(distances[4], np.ones(10))  # a zero row: 1 from every row
    assert (distances[np.arange(30) != 4] < 2 + 1e-12).all()


async def test_new_metrics_score_as_scikit_learn_per_fold() -> None:
    X, y = tie_free(180, features=6, seed=11)
    data = Dataset(X=X, y=y.astype(np.intp), classes=["a", "b", "c"], source="m")
    result = await tune(
        data,
        k=[1, 5, 8],
        metrics="cosine,minkowski:3,minkowski:1.5",
        weights="uniform,distance",
        workers=2,
    )
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    for row in result.candidates:
        c = row.candidate
        estimator = KNeighborsClassifier(
            n_neighbors=c.k, weights=c.weights, algorithm="brute", **sklearn_params(c.metric)
        )
        expected = cross_validate(estimator, X, y, cv=folds)["test_score"]
        assert row.fold_accuracy == pytest.approx(list(expected), abs=1e-12), c


def test_the_models_twin_carries_minkowskis_power() -> None:
    X, y = tie_free(120, seed=2)
    model = KNNModel(X, y, np.array([0, 1, 2]), k=4, metric="minkowski:3", weights="distance")
    twin = model.to_sklearn()
    assert twin.metric == "minkowski" and twin.p == 3.0
    queries, _ = tie_free(50, seed=8)
    assert (twin.predict(queries) == model.predict(queries)).all()
    np.testing.assert_allclose(
        twin.predict_proba(queries), model.predict_proba(queries), atol=1e-12
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("minkowski:0.5", "needs a power P >= 1"),
        ("minkowski:x", "needs a power P >= 1"),
        ("minkowski:inf", "needs a power P >= 1"),
        ("minkowski", "unknown metric 'minkowski'"),
        ("cosin", "unknown metric 'cosin'"),
    ],
)
def test_bad_metric_names_are_one_clear_line(text: str, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        parse_metric(text)


def test_names_are_canonical_and_map_to_scikit_learn_and_back() -> None:
    assert parse_metric(" Minkowski:3.0 ") == "minkowski:3"
    assert parse_metric("minkowski:2.5") == "minkowski:2.5"
    assert sklearn_params("sorensen") == {"metric": "braycurtis"}
    assert sklearn_params("minkowski:2.5") == {"metric": "minkowski", "p": 2.5}
    assert from_sklearn("minkowski", 1) == "manhattan"
    assert from_sklearn("minkowski", float("inf")) == "chebyshev"
    assert from_sklearn("minkowski", 4) == "minkowski:4"
    assert from_sklearn("cityblock") == "manhattan" and from_sklearn("braycurtis") == "sorensen"
    assert from_sklearn("mahalanobis") is None and from_sklearn("minkowski", 0.5) is None
