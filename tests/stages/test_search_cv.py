"""KNNSearchCV against scikit-learn's GridSearchCV on the same folds, and as an estimator.

The oracle is ``GridSearchCV(KNeighborsClassifier(algorithm="brute"), ...)``
run here on the same data and splits. The data have no near-tied distances,
so every score must be scikit-learn's; the folds come from scikit-learn's
splitters, handed to both.
"""

from __future__ import annotations

import asyncio
import pickle
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from scipy.spatial.distance import cdist
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import (
    GridSearchCV,
    GroupKFold,
    KFold,
    RepeatedStratifiedKFold,
    StratifiedKFold,
)
from sklearn.neighbors import KNeighborsClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks
from threadpoolctl import threadpool_limits

from pipeline.compute import default_workers
from stages import KNNSearchCV
from tests.leaks import wait_until_gone

TIMES = ("mean_fit_time", "std_fit_time", "mean_score_time", "std_score_time")
GRID: dict[str, list[Any]] = {
    "n_neighbors": [1, 2, 3, 6, 11],
    "metric": ["euclidean", "manhattan", "chebyshev"],
    "weights": ["uniform", "distance"],
}


@pytest.fixture(autouse=True)
def one_blas_thread() -> Iterator[None]:
    """scikit-learn's brute-force kernels start thread pools per call: on 2 cores that is slow."""
    with threadpool_limits(1):
        yield


def assert_no_near_ties(X: npt.NDArray[np.float64]) -> None:
    """Precondition: no two distances from one row are (nearly) equal under any metric."""
    for metric, options in [
        ("euclidean", {}),
        ("cityblock", {}),
        ("chebyshev", {}),
        ("braycurtis", {}),
        ("cosine", {}),
        ("minkowski", {"p": 3}),
    ]:
        d = np.sort(cdist(X, X, metric=metric, **options), axis=1)[:, 1:]
        assert (np.diff(d, axis=1) > 1e-9 * d[:, 1:]).all(), f"near-tied {metric} distances"


@pytest.fixture(scope="module")
def data() -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Continuous features, two classes, no distance ties (non-negative, for braycurtis)."""
    X, y = make_classification(n_samples=300, n_features=6, random_state=0)
    X = np.abs(X)
    assert_no_near_ties(X)
    return X, y


def grid_search(param_grid: Any, X: Any, y: Any, groups: Any = None, **options: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # e.g. "least populated class"
        return GridSearchCV(KNeighborsClassifier(algorithm="brute"), param_grid, **options).fit(
            X, y, groups=groups
        )


def knn_search(param_grid: Any, X: Any, y: Any, groups: Any = None, **options: Any) -> Any:
    options.setdefault("n_jobs", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return KNNSearchCV(param_grid, **options).fit(X, y, groups=groups)


def assert_same_results(ours: Any, theirs: Any) -> None:
    """Every cv_results_ cell but the times, and the best_* attributes, are scikit-learn's."""
    assert list(ours.cv_results_) == list(theirs.cv_results_)
    for key, expected in theirs.cv_results_.items():
        got = ours.cv_results_[key]
        if key in TIMES:
            assert got.shape == expected.shape and (got >= 0).all(), key
        elif key == "params":
            assert got == expected
        elif isinstance(expected, np.ma.MaskedArray):
            assert isinstance(got, np.ma.MaskedArray), key
            assert got.dtype == expected.dtype, key
            np.testing.assert_array_equal(got.mask, expected.mask, err_msg=key)
            assert got.data[~got.mask].tolist() == expected.data[~expected.mask].tolist(), key
        elif key.startswith("rank_"):
            assert got.dtype == np.int32, key
            np.testing.assert_array_equal(got, expected, err_msg=key)
        else:
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12, err_msg=key)
    assert ours.n_splits_ == theirs.n_splits_
    assert ours.multimetric_ == theirs.multimetric_
    if hasattr(theirs, "best_index_"):
        assert ours.best_index_ == theirs.best_index_
        assert ours.best_params_ == theirs.best_params_
    if hasattr(theirs, "best_score_"):
        assert ours.best_score_ == pytest.approx(theirs.best_score_, abs=1e-12)


def assert_same_predictions(ours: Any, theirs: Any, X: Any) -> None:
    np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(ours.predict(X), ours.best_estimator_.predict(X))


def new_samples(X: npt.NDArray[np.float64], n: int = 60) -> npt.NDArray[np.float64]:
    """Samples the models never saw, in the training data's range."""
    rng = np.random.default_rng(7)
    return np.asarray(rng.uniform(X.min(axis=0), X.max(axis=0), size=(n, X.shape[1])))


# ---------------------------------------------------------------------------- against GridSearchCV


@pytest.mark.parametrize(
    "cv",
    [
        None,
        3,
        StratifiedKFold(4, shuffle=True, random_state=1),
        RepeatedStratifiedKFold(n_splits=3, n_repeats=2, random_state=0),
        KFold(5, shuffle=True, random_state=2),
    ],
    ids=["default", "int", "stratified-shuffled", "repeated-overlapping", "kfold"],
)
def test_scores_equal_grid_search_cv(data: Any, cv: Any) -> None:
    X, y = data
    ours, theirs = knn_search(GRID, X, y, cv=cv), grid_search(GRID, X, y, cv=cv)
    assert ours.n_splits_ == (5 if cv is None else theirs.n_splits_)
    assert_same_results(ours, theirs)
    assert_same_predictions(ours, theirs, new_samples(X))


def test_cv_as_a_list_of_splits(data: Any) -> None:
    """Splits given by hand, here leaving rows out of both sides, as any iterable may."""
    X, y = data
    rng = np.random.default_rng(3)
    splits = []
    for _ in range(3):
        rows = rng.permutation(len(y))
        splits.append((rows[:150], rows[150:250]))
    ours, theirs = knn_search(GRID, X, y, cv=splits), grid_search(GRID, X, y, cv=splits)
    assert ours.n_splits_ == 3
    assert_same_results(ours, theirs)


def test_with_two_threads(data: Any) -> None:
    """n_jobs=2 runs two threads and starts no process; the results are the same."""
    X, y = data
    before = {t.name for t in threading.enumerate()}
    ours = knn_search(GRID, X, y, cv=4, n_jobs=2)
    assert wait_until_gone() == []
    assert {t.name for t in threading.enumerate()} == before  # the threads are gone too
    assert_same_results(ours, grid_search(GRID, X, y, cv=4))


def test_grid_as_a_list_of_dicts_with_different_keys(data: Any) -> None:
    X, y = data
    grid = [
        {"n_neighbors": [1, 5], "weights": ["distance"]},
        {"metric": ["manhattan", "chebyshev"]},
        {"n_neighbors": [3, 7], "metric": ["minkowski"], "p": [1, 2, np.inf]},
    ]
    ours, theirs = knn_search(grid, X, y), grid_search(grid, X, y)
    assert_same_results(ours, theirs)
    masked = ours.cv_results_["param_p"]
    assert masked.mask.tolist() == [True] * 4 + [False] * 6


def test_scikit_learn_metric_names(data: Any) -> None:
    """braycurtis (our sorensen), cosine, l1, cityblock, l2 and minkowski with p."""
    X, y = data
    grid = [
        {"n_neighbors": [1, 4, 9], "metric": ["braycurtis", "cosine", "l1", "cityblock", "l2"]},
        {"n_neighbors": [2, 5], "metric": ["minkowski"], "p": [1, 2.0, 3, 1.5, float("inf")]},
        {"p": np.array([1, 3])},  # the default metric is minkowski; numpy values work too
        {"metric": ["euclidean"], "p": [0.5]},  # p only matters to minkowski, as in scikit-learn
    ]
    ours, theirs = knn_search(grid, X, y), grid_search(grid, X, y)
    assert_same_results(ours, theirs)
    assert_same_predictions(ours, theirs, new_samples(X))


def test_our_metric_names_too(data: Any) -> None:
    X, y = data
    ours = knn_search({"n_neighbors": [1, 4], "metric": ["sorensen", "infinity"]}, X, y)
    theirs = grid_search({"n_neighbors": [1, 4], "metric": ["braycurtis", "chebyshev"]}, X, y)
    for key in ("mean_test_score", "std_test_score", "rank_test_score"):
        np.testing.assert_allclose(ours.cv_results_[key], theirs.cv_results_[key], atol=1e-12)
    assert ours.best_estimator_.metric in ("braycurtis", "chebyshev")


def test_best_index_is_the_first_of_rank_one() -> None:
    """Candidates with equal mean scores share rank 1; best_index_ is the first in grid order."""
    X, y = make_classification(
        n_samples=60, n_features=2, n_informative=2, n_redundant=0, class_sep=4, random_state=1
    )
    grid = {"n_neighbors": [7, 1, 3], "weights": ["distance", "uniform"]}
    ours, theirs = knn_search(grid, X, y), grid_search(grid, X, y)
    ranks = ours.cv_results_["rank_test_score"]
    assert (ranks == 1).sum() > 1  # the classes separate well: several candidates score the best
    assert_same_results(ours, theirs)
    assert ours.best_index_ == np.flatnonzero(ranks == 1)[0]


def test_dataframe_input(data: Any) -> None:
    X, y = data
    columns = [f"f{i}" for i in range(X.shape[1])]
    frame, labels = pd.DataFrame(X, columns=columns), pd.Series(y, name="label")
    ours, theirs = knn_search(GRID, frame, labels), grid_search(GRID, frame, labels)
    assert_same_results(ours, theirs)
    assert ours.feature_names_in_.tolist() == columns
    assert ours.n_features_in_ == X.shape[1]
    samples = pd.DataFrame(new_samples(X), columns=columns)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # neither warns about feature names
        assert_same_predictions(ours, theirs, samples)
        ours.best_estimator_.predict(samples)
    with pytest.raises(ValueError, match="feature names should match"):
        ours.predict(samples.rename(columns={"f0": "other"}))


def test_arrays_without_names_set_no_feature_names(data: Any) -> None:
    X, y = data
    search = knn_search({"n_neighbors": [1]}, pd.DataFrame(X, columns=list("abcdef")), y)
    search.fit(X.tolist(), y.tolist())  # plain lists, and a refit forgets the old names
    assert not hasattr(search, "feature_names_in_")
    assert search.n_features_in_ == X.shape[1]


@pytest.mark.parametrize(
    "values",
    [
        np.array(["setosa", "versicolor"]),
        np.array(["no", "yes"], dtype=object),
        np.array([-7, 40]),
        np.array([0.0, 2.0]),
        np.array([False, True]),
    ],
    ids=["str", "object", "int", "float", "bool"],
)
def test_labels_of_any_type(data: Any, values: npt.NDArray[Any]) -> None:
    X, y = data
    labels = values[y]
    ours = knn_search({"n_neighbors": [1, 5]}, X, labels)
    theirs = grid_search({"n_neighbors": [1, 5]}, X, labels)
    assert_same_results(ours, theirs)
    assert ours.classes_.dtype == theirs.classes_.dtype
    predicted = ours.predict(new_samples(X))
    assert predicted.dtype == theirs.predict(X).dtype
    assert set(predicted.tolist()) <= set(values.tolist())
    assert_same_predictions(ours, theirs, new_samples(X))
    assert ours.score(X, labels) == pytest.approx(theirs.score(X, labels), abs=1e-12)


def test_three_classes_and_groups(data: Any) -> None:
    """groups go to the splitter (GroupKFold), as GridSearchCV passes them."""
    X, _ = data
    y = np.arange(len(X)) % 3
    groups = np.arange(len(X)) // 10
    cv = GroupKFold(4)
    ours = knn_search(GRID, X, y, groups=groups, cv=cv)
    theirs = grid_search(GRID, X, y, groups=groups, cv=cv)
    assert_same_results(ours, theirs)
    assert_same_predictions(ours, theirs, new_samples(X))
    with pytest.raises(ValueError, match="groups"):
        knn_search(GRID, X, y, cv=cv)  # the splitter's own refusal


def test_multimetric_scoring(data: Any) -> None:
    X, y = data
    ours = knn_search(GRID, X, y, scoring=["accuracy"], refit="accuracy")
    theirs = grid_search(GRID, X, y, scoring=["accuracy"], refit="accuracy")
    assert "mean_test_accuracy" in ours.cv_results_ and "mean_test_score" not in ours.cv_results_
    assert_same_results(ours, theirs)
    assert ours.multimetric_ and list(ours.scorer_) == ["accuracy"]
    named = knn_search(GRID, X, y, scoring={"acc": "accuracy"}, refit=False)
    assert "rank_test_acc" in named.cv_results_ and not hasattr(named, "best_index_")
    assert_same_results(named, grid_search(GRID, X, y, scoring={"acc": "accuracy"}, refit=False))


def test_every_confusion_matrix_score_equals_grid_search_cv(data: Any) -> None:
    X, y = data
    scoring = {
        "bal": "balanced_accuracy",
        "f1m": "f1_macro",
        "f1w": "f1_weighted",
        "prec": "precision_macro",
        "rec": "recall_macro",
    }
    ours = knn_search(GRID, X, y, scoring=scoring, refit="f1w")
    theirs = grid_search(GRID, X, y, scoring=scoring, refit="f1w")
    assert_same_results(ours, theirs)
    assert ours.score(X, y) == pytest.approx(theirs.score(X, y), abs=1e-12)
    single = knn_search(GRID, X, y, scoring="balanced_accuracy")
    assert_same_results(single, grid_search(GRID, X, y, scoring="balanced_accuracy"))


def test_vote_share_scores_equal_grid_search_cv(data: Any) -> None:
    """roc_auc_ovr and neg_log_loss score predict_proba: the vote shares."""
    X, y = data
    scoring = {"auc": "roc_auc_ovr", "loss": "neg_log_loss", "acc": "accuracy"}
    ours = knn_search(GRID, X, y, scoring=scoring, refit="loss")
    theirs = grid_search(GRID, X, y, scoring=scoring, refit="loss")
    assert_same_results(ours, theirs)
    # On rows it never saw (on its own training rows scikit-learn's matrix-product
    # distances are about 1e-8 where ours are exactly 0, so its shares are not quite 1).
    X_new = new_samples(X)
    y_new = ours.predict(X_new)
    assert ours.score(X_new, y_new) == pytest.approx(theirs.score(X_new, y_new), abs=1e-12)
    single = knn_search(GRID, X, y, scoring="roc_auc_ovr")
    assert_same_results(single, grid_search(GRID, X, y, scoring="roc_auc_ovr"))


def test_multimetric_needs_refit_to_name_a_scorer(data: Any) -> None:
    X, y = data
    with pytest.raises(ValueError, match="refit must be set to a scorer key") as ours:
        knn_search(GRID, X, y, scoring=["accuracy"])
    with pytest.raises(ValueError) as theirs:
        grid_search(GRID, X, y, scoring=["accuracy"])
    assert str(ours.value) == str(theirs.value)


def test_single_scorer_by_name(data: Any) -> None:
    X, y = data
    ours = knn_search(GRID, X, y, scoring="accuracy")
    assert_same_results(ours, grid_search(GRID, X, y, scoring="accuracy"))
    assert not ours.multimetric_ and callable(ours.scorer_)


def test_refit_callable_chooses_best_index(data: Any) -> None:
    X, y = data

    def simplest_within_a_point(results: dict[str, Any]) -> int:
        means = results["mean_test_score"]
        return int(np.flatnonzero(means >= means.max() - 0.01)[0])

    ours = knn_search(GRID, X, y, refit=simplest_within_a_point)
    theirs = grid_search(GRID, X, y, refit=simplest_within_a_point)
    assert not hasattr(ours, "best_score_")
    assert_same_results(ours, theirs)
    assert_same_predictions(ours, theirs, new_samples(X))


def test_refit_false_has_no_model(data: Any) -> None:
    X, y = data
    ours = knn_search(GRID, X, y, refit=False)
    assert_same_results(ours, grid_search(GRID, X, y, refit=False))
    assert not hasattr(ours, "best_estimator_") and not hasattr(ours, "refit_time_")
    for method in ("predict", "predict_proba", "kneighbors"):
        assert not hasattr(ours, method)  # as GridSearchCV: the message and its cause
        with pytest.raises(AttributeError, match=f"has no attribute '{method}'") as missing:
            getattr(ours, method)
        assert "initialized with `refit=False`" in str(missing.value.__cause__)
    with pytest.raises(AttributeError, match="refit=False"):
        ours.score(X, y)


def test_kneighbors_equals_scikit_learn(data: Any) -> None:
    X, y = data
    ours = knn_search({"n_neighbors": [4], "metric": ["manhattan"]}, X, y)
    theirs = ours.best_estimator_
    samples = new_samples(X)
    for args in [(samples,), (samples, 7), (None,), (None, 2)]:
        distances, indices = ours.kneighbors(*args)
        expected_distances, expected_indices = theirs.kneighbors(*args)
        np.testing.assert_array_equal(indices, expected_indices)
        np.testing.assert_allclose(distances, expected_distances, rtol=1e-12)
    np.testing.assert_array_equal(
        ours.kneighbors(samples, return_distance=False), theirs.kneighbors(samples)[1]
    )


def test_best_estimator_is_a_fitted_brute_force_classifier(data: Any) -> None:
    X, y = data
    ours = knn_search(GRID, X, y)
    best = ours.best_estimator_
    assert isinstance(best, KNeighborsClassifier) and best.algorithm == "brute"
    assert best.n_neighbors == ours.best_params_["n_neighbors"]
    assert best.weights == ours.best_params_["weights"]
    assert ours.model_.params() == {
        "k": ours.best_params_["n_neighbors"],
        "metric": ours.best_params_["metric"],
        "weights": ours.best_params_["weights"],
    }
    assert ours.refit_time_ >= 0
    assert ours.score(X, y) == pytest.approx(float(np.mean(best.predict(X) == y)))


def test_verbose_prints_the_summary(data: Any, capsys: pytest.CaptureFixture[str]) -> None:
    X, y = data
    knn_search(GRID, X, y, cv=3, verbose=1)
    assert "Fitting 3 folds for each of 30 candidates, totalling 90 fits" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("n_jobs", "workers"), [(None, "all"), (-1, "all"), (-2, "all but one"), (1, 1), (3, 3)]
)
def test_n_jobs_is_the_number_of_workers(n_jobs: int | None, workers: Any) -> None:
    cpus = default_workers()
    expected = {"all": cpus, "all but one": max(1, cpus - 1)}.get(workers, workers)
    assert KNNSearchCV(GRID, n_jobs=n_jobs)._workers() == expected


# ---------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("param_grid", "message"),
    [
        ({"leaf_size": [30]}, "param_grid: 'leaf_size' cannot be searched; KNNSearchCV searches"),
        ([{"n_neighbors": [1]}, {"algorithm": ["kd_tree"]}], "'algorithm' cannot be searched"),
        ({"metric": ["mahalanobis"]}, "metric='mahalanobis' cannot be searched"),
        ({"metric": [len]}, "metric=<built-in function len> cannot be searched"),
        ({"p": [0.5]}, "p=0.5 with metric='minkowski' cannot be searched"),
        ({"metric": ["minkowski"], "p": [None]}, "p=None with metric='minkowski'"),
        ({"metric": ["euclidean"], "p": [-1]}, "p=-1 cannot be searched"),
        ({"weights": [np.sqrt]}, "weights=<ufunc 'sqrt'> cannot be searched"),
        ({"weights": ["gaussian"]}, "weights='gaussian' cannot be searched"),
        ({"n_neighbors": [0]}, "n_neighbors=0 cannot be searched"),
        ({"n_neighbors": [2.5]}, r"n_neighbors=2\.5 cannot be searched"),
        ({"n_neighbors": [3.0]}, r"n_neighbors=3\.0 cannot be searched"),
        ({"n_neighbors": [1, 400]}, r"n_neighbors=400 is larger than the smallest training"),
    ],
)
def test_refuses_what_it_cannot_search(data: Any, param_grid: Any, message: str) -> None:
    X, y = data
    search = KNNSearchCV(param_grid, n_jobs=1)
    with pytest.raises(ValueError, match=message):
        search.fit(X, y)
    assert not hasattr(search, "cv_results_")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"scoring": "f1"}, "scoring: 'f1' is not supported"),
        ({"scoring": ["accuracy", "roc_auc"]}, "scoring: 'roc_auc' is not supported"),
        ({"scoring": {"brier": "neg_brier_score"}}, "scoring: 'neg_brier_score' is not supported"),
        ({"scoring": []}, "scoring: an empty list"),
        ({"return_train_score": True}, "return_train_score=True is not supported"),
        ({"error_score": "ignore"}, "error_score: 'ignore'"),
        ({"n_jobs": 0}, "n_jobs: 0 is not a number of workers"),
    ],
)
def test_refuses_options_it_does_not_support(
    data: Any, options: dict[str, Any], message: str
) -> None:
    X, y = data
    with pytest.raises(ValueError, match=message):
        KNNSearchCV({"n_neighbors": [1]}, **options).fit(X, y)


@pytest.mark.parametrize(
    ("splits", "message"),
    [
        ([(np.arange(0, 200), np.arange(150, 300))], "split 0 tests rows it also trains on"),
        ([(np.r_[0:200, 5], np.arange(200, 300))], "the train rows of split 0 name a row twice"),
        (
            [(np.arange(0, 200), np.arange(200, 301))],
            r"test rows of split 0 are not all in 0\.\.299",
        ),
        ([(np.arange(0, 300), np.array([], dtype=int))], "split 0 has no test rows"),
        ([(np.arange(0, 200), np.linspace(0, 1, 3))], "is not an array of row indices"),
    ],
)
def test_refuses_splits_it_cannot_use(data: Any, splits: Any, message: str) -> None:
    X, y = data
    with pytest.raises(ValueError, match=message):
        KNNSearchCV({"n_neighbors": [1]}, cv=splits, n_jobs=1).fit(X, y)


def test_refuses_bad_data_with_scikit_learns_messages(data: Any) -> None:
    X, y = data
    search = KNNSearchCV({"n_neighbors": [1]}, n_jobs=1)
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        search.fit(bad, y)
    with pytest.raises(ValueError, match="Unknown label type"):
        search.fit(X, np.linspace(0, 1, len(y)))
    with pytest.raises(ValueError, match="one class"):
        search.fit(X, np.zeros(len(y)))
    with pytest.raises(ValueError, match="Cannot have number of splits"):
        search.fit(X[:4], [0, 1, 0, 1])
    with pytest.raises(NotFittedError):
        search.predict(X)
    assert not hasattr(search, "n_features_in_")  # a failed fit leaves nothing half-fitted
    search.fit(X, y)
    with pytest.raises(ValueError, match="X has 5 features, but KNNSearchCV is expecting 6"):
        search.predict(X[:, :5])
    with pytest.raises(ValueError, match="'leaf_size' cannot be searched"):
        search.set_params(param_grid={"leaf_size": [30]}).fit(X, y)
    assert not hasattr(search, "best_estimator_") and not hasattr(search, "classes_")


# ---------------------------------------------------------------------------- estimator protocol


def test_clone_get_params_set_params(data: Any) -> None:
    X, y = data
    search = KNNSearchCV(GRID, cv=3, n_jobs=1, scoring="accuracy")
    params = search.get_params()
    assert params == {
        "param_grid": GRID,
        "scoring": "accuracy",
        "n_jobs": 1,
        "refit": True,
        "cv": 3,
        "verbose": 0,
        "pre_dispatch": "2*n_jobs",
        "error_score": params["error_score"],
        "return_train_score": False,
    }
    assert np.isnan(params["error_score"])
    # every keyword GridSearchCV takes but its estimator is taken here too
    from sklearn.model_selection import GridSearchCV

    theirs = set(GridSearchCV(KNeighborsClassifier(), GRID).get_params(deep=False)) - {"estimator"}
    assert theirs == set(params)
    search.fit(X, y)
    twin = clone(search)
    assert twin.get_params() == search.get_params() and not hasattr(twin, "cv_results_")
    twin.set_params(cv=4, param_grid={"n_neighbors": [2]})
    twin.fit(X, y)
    assert twin.n_splits_ == 4 and twin.best_params_ == {"n_neighbors": 2}
    assert search.n_splits_ == 3  # the original is untouched


def test_pickles(data: Any) -> None:
    X, y = data
    search = knn_search(GRID, X, y)
    copy = pickle.loads(pickle.dumps(search))
    samples = new_samples(X)
    np.testing.assert_array_equal(copy.predict(samples), search.predict(samples))
    np.testing.assert_array_equal(copy.predict_proba(samples), search.predict_proba(samples))
    np.testing.assert_array_equal(
        copy.cv_results_["mean_test_score"], search.cv_results_["mean_test_score"]
    )
    assert pickle.loads(pickle.dumps(KNNSearchCV(GRID))).get_params()["param_grid"] == GRID


async def test_fit_inside_a_running_event_loop(data: Any) -> None:
    """A notebook cell runs in an event loop: fit runs the search on a loop of its own."""
    X, y = data
    ours = knn_search(GRID, X, y, cv=3)
    assert_same_results(ours, grid_search(GRID, X, y, cv=3))
    assert_same_predictions(ours, ours.best_estimator_, new_samples(X))


def _expected_failed_checks(estimator: Any) -> dict[str, str]:
    """None: every check applies to KNNSearchCV and passes."""
    return {}


@parametrize_with_checks(
    [
        KNNSearchCV(param_grid={"n_neighbors": [1, 3]}, n_jobs=1),
        KNNSearchCV(
            param_grid=[
                {"n_neighbors": [1, 2], "weights": ["uniform", "distance"]},
                {"metric": ["manhattan", "minkowski"], "p": [1, 2], "n_neighbors": [3]},
            ],
            scoring=["accuracy"],
            refit="accuracy",
            cv=3,
            n_jobs=1,
        ),
    ],
    expected_failed_checks=_expected_failed_checks,
    xfail_strict=True,
)
def test_scikit_learn_estimator_checks(estimator: Any, check: Any) -> None:
    check(estimator)


async def test_ctrl_c_while_fitting_inside_a_running_loop_stops_the_search() -> None:
    """The caller's Ctrl-C must cancel the search on the helper thread's loop, not wait.

    A notebook's kernel turns SIGINT into KeyboardInterrupt, as Python's default handler
    does (asyncio's runner, which runs this test, would only cancel its task).
    """
    import signal

    from stages.search_cv import _run_sync

    cancelled = threading.Event()

    async def long_search() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    interrupt = threading.Timer(
        0.5, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT)
    )
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    interrupt.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            _run_sync(long_search)
    finally:
        interrupt.cancel()
        signal.signal(signal.SIGINT, previous)
    assert cancelled.is_set()
