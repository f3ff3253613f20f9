"""Every score per fold equals scikit-learn's metric functions; --scoring picks what ranks."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import GridSearchCV, LeaveOneOut, StratifiedKFold, cross_val_predict
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pipeline.errors import InputError
from stages import Dataset, Tuning, _kernels, tune
from stages.metrics import sklearn_params
from stages.results import TuningResult
from stages.score import CONFUSION_CLASSES, SCORES, scores_from_shares
from tests.stages.test_model import tie_free

METRIC_FUNCTIONS = {
    "accuracy": accuracy_score,
    "balanced_accuracy": balanced_accuracy_score,
    "f1_macro": lambda t, p: f1_score(t, p, average="macro"),
    "f1_weighted": lambda t, p: f1_score(t, p, average="weighted"),
    "precision_macro": lambda t, p: precision_score(t, p, average="macro"),
    "recall_macro": lambda t, p: recall_score(t, p, average="macro"),
}
PROBA_FUNCTIONS = {  # as scikit-learn's scorers call them on predict_proba
    "roc_auc_ovr": lambda t, p: roc_auc_score(
        t, p[:, 1] if p.shape[1] == 2 else p, multi_class="ovr"
    ),
    "neg_log_loss": lambda t, p: -log_loss(t, p, labels=np.arange(p.shape[1])),
}
"""The log loss of a fold that lacks a class is over all the classes the model knows."""


@pytest.fixture(scope="module")
def skewed() -> tuple[np.ndarray, np.ndarray]:
    """Tie-free, with a rare class that large k never predicts (undefined precisions)."""
    X, y = tie_free(200, features=5, seed=21)
    keep = (y != 2) | (np.arange(200) % 5 == 0)
    return X[keep], y[keep]


def assert_every_score_equals_scikit_learns(
    result: TuningResult, X: np.ndarray, y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]]
) -> None:
    """Each candidate's score of each fold is the metric function's on that fold; an AUC
    scikit-learn cannot compute (a class missing from the fold) is NaN."""
    for row in result.candidates:
        c = row.candidate
        knn = KNeighborsClassifier(
            n_neighbors=c.k, weights=c.weights, algorithm="brute", **sklearn_params(c.metric)
        )
        for name in SCORES:
            expected = []
            for train, test in folds:
                knn.fit(X[train], y[train])
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # undefined precision: 0, as we count it
                    if name in PROBA_FUNCTIONS:
                        try:
                            score = PROBA_FUNCTIONS[name](y[test], knn.predict_proba(X[test]))
                        except ValueError:
                            score = np.nan
                    else:
                        score = METRIC_FUNCTIONS[name](y[test], knn.predict(X[test]))
                expected.append(score)
            got = row.fold_scores[name]
            assert got == pytest.approx(expected, abs=1e-12, nan_ok=True), (c, name)
            if np.isfinite(expected).all():
                mean = row.to_dict()[f"mean_{name}"]
                assert mean == pytest.approx(np.mean(expected), abs=1e-12)
                assert row.to_dict()[f"std_{name}"] == pytest.approx(np.std(expected), abs=1e-12)


async def test_every_score_of_every_fold_equals_scikit_learns(skewed) -> None:  # type: ignore[no-untyped-def]
    X, y = skewed
    data = Dataset(X=X, y=y.astype(np.intp), classes=["a", "b", "c"], source="skewed")
    result = await tune(
        data, k=[1, 6, 25], metrics="manhattan,cosine", weights="uniform,distance", workers=2
    )
    folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(X, y))
    assert_every_score_equals_scikit_learns(result, X, y, folds)


@pytest.mark.filterwarnings("ignore:The least populated class")
@pytest.mark.parametrize("rare", [False, True])
async def test_more_classes_than_neighbours_score_as_scikit_learn(rare: bool) -> None:
    """60 classes and k up to 9: each row's shares hold only its neighbours' classes.
    Every fold holds every class (the AUC is defined), or, ``rare``, some lack one."""
    X, _ = tie_free(300, features=4, seed=5)
    y = np.random.default_rng(5).permutation(np.arange(300) % 60)
    if rare:
        y[y == 59] = np.array([59, 59, 0, 1, 2])  # class 59 keeps two rows
    names = [f"c{i:02d}" for i in range(60)]
    data = Dataset(X=X, y=y.astype(np.intp), classes=names, source="many")
    result = await tune(
        data, k=[1, 4, 9], metrics="euclidean,manhattan", weights="uniform,distance", workers=2
    )
    folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(X, y))
    assert_every_score_equals_scikit_learns(result, X, y, folds)
    auc = np.array([r.fold_scores["roc_auc_ovr"] for r in result.candidates])
    assert np.isnan(auc).any() == rare


@pytest.mark.parametrize(
    "scoring", ["balanced_accuracy", "f1_weighted", "recall_macro", "roc_auc_ovr", "neg_log_loss"]
)
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
    with pytest.raises(InputError, match="scoring: unknown 'roc'; choose from accuracy"):
        Tuning("iris", scoring="roc")
    assert "accuracy" in SCORES


def test_share_scores_equal_scikit_learns_with_ties_binary_and_a_missing_class() -> None:
    """Vote shares tie a lot (multiples of 1/k); AUC counts a tie half, as roc_curve does."""
    rng = np.random.default_rng(4)
    for n_classes in (2, 3, 5):
        truth = np.concatenate([np.arange(n_classes), rng.integers(0, n_classes, 60)])
        counts = rng.multinomial(7, np.ones(n_classes) / n_classes, size=(4, truth.size))
        shares = counts / 7.0  # (4 candidates, rows, classes)
        got = scores_from_shares(shares, truth)
        counted = scores_from_shares(shares, truth, np.full(4, 7))
        np.testing.assert_allclose(counted["roc_auc_ovr"], got["roc_auc_ovr"], rtol=0, atol=1e-15)
        for c in range(4):
            for name, function in PROBA_FUNCTIONS.items():
                want = function(truth, shares[c])
                assert got[name][c] == pytest.approx(want, abs=1e-12), (n_classes, name)
    missing = scores_from_shares(shares, np.zeros(truth.size, dtype=np.intp))
    assert np.isnan(missing["roc_auc_ovr"]).all()  # one class only: undefined, as sklearn raises
    assert np.isfinite(missing["neg_log_loss"]).all()


def scored_pairs(values: npt.NDArray[np.float64], positive: npt.NDArray[np.bool_]) -> Any:
    got = np.empty(values.shape[0])
    _kernels.scored_pairs(values, positive.astype(np.intp), got)
    return got


def pairs_by_counting(values: npt.NDArray[np.float64], positive: npt.NDArray[np.bool_]) -> Any:
    """Every (positive, negative) pair counted, NaN after every number and tied with NaN,
    as np.sort orders it and a binary search of the sorted negatives counts it."""
    counted = []
    for row in values:
        negatives, positives = np.sort(row[~positive]), row[positive]
        below = np.searchsorted(negatives, positives, side="left")
        not_above = np.searchsorted(negatives, positives, side="right")
        counted.append(below.sum() + 0.5 * (not_above - below).sum())
    return np.array(counted)


SPECIALS = [0.0, -0.0, np.nan, np.inf, -np.inf, 1.0, -2.5, 1e-300, -1e-300, 5e-324]


def sample_scores(kind: str, rng: np.random.Generator, shape: tuple[int, int]) -> Any:
    if kind == "uniform":
        return rng.random(shape)
    if kind == "few values":
        return rng.integers(0, 4, shape) / 3.0
    if kind == "specials":
        return rng.choice(SPECIALS, shape)
    if kind == "wide":
        return rng.standard_normal(shape) * 10.0 ** rng.integers(-300, 300, shape)
    if kind == "near-equal":  # the same top bits: the sort's second stage orders them
        return 0.5 + rng.integers(-9, 9, shape) * np.finfo(float).eps
    return -rng.random(shape)


@pytest.mark.parametrize(
    "kind", ["uniform", "few values", "specials", "wide", "near-equal", "one sign"]
)
def test_scored_pairs_counts_every_pair_a_tie_half(kind: str) -> None:
    """The compiled radix sorts and merge against counting all pairs: rows of unequal
    sides, ties, both zeros, infinities, NaN, subnormals, values sharing their top bits;
    sides of either sort (8-bit digits up to 4,096 keys, 11-bit beyond)."""
    rng = np.random.default_rng(6)
    for rows in (0, 1, 2, 7, 64, 3_000, 14_000):
        values = sample_scores(kind, rng, (4, rows))
        positive = rng.random(rows) < 0.35
        np.testing.assert_array_equal(
            scored_pairs(values, positive), pairs_by_counting(values, positive)
        )


def test_scored_pairs_with_all_rows_on_one_side() -> None:
    values = np.random.default_rng(7).random((3, 20))
    assert (scored_pairs(values, np.zeros(20, dtype=bool)) == 0).all()
    assert (scored_pairs(values, np.ones(20, dtype=bool)) == 0).all()


def test_scored_pairs_refuses_mismatched_shapes_and_types() -> None:
    rows = np.zeros((3, 4))
    with pytest.raises(ValueError, match="shapes"):
        _kernels.scored_pairs(rows, np.zeros(5, dtype=np.intp), np.empty(3))
    with pytest.raises(ValueError, match="shapes"):
        _kernels.scored_pairs(rows, np.zeros(4, dtype=np.intp), np.empty(4))
    with pytest.raises(TypeError, match="float64"):
        _kernels.scored_pairs(rows.astype(np.float32), np.zeros(4, dtype=np.intp), np.empty(3))


def test_tally_codes_counts_hits_predictions_and_confusion_as_bincount_does() -> None:
    rng = np.random.default_rng(9)
    classes, series, rows = 4, 6, 50
    codes = rng.integers(0, classes, (series, rows)).astype(np.intp)
    truth = rng.integers(0, classes, rows).astype(np.intp)
    hits = np.ones((series, classes), dtype=np.int64)  # added to, not overwritten
    predicted = np.zeros((series, classes), dtype=np.int64)
    confusion = np.zeros((series, classes, classes), dtype=np.int64)
    _kernels.tally_codes(codes, truth, classes, hits, predicted, confusion)
    for s in range(series):
        hit = codes[s] == truth
        np.testing.assert_array_equal(hits[s], 1 + np.bincount(truth[hit], minlength=classes))
        np.testing.assert_array_equal(predicted[s], np.bincount(codes[s], minlength=classes))
        want = confusion_matrix(truth, codes[s], labels=range(classes))
        np.testing.assert_array_equal(confusion[s], want)
    only = np.zeros((series, classes), dtype=np.int64)
    none2, none3 = np.zeros((0, 0), dtype=np.int64), np.zeros((0, 0, 0), dtype=np.int64)
    _kernels.tally_codes(codes, truth, classes, none2, only, none3)
    np.testing.assert_array_equal(only, predicted)


def test_count_shares_histograms_the_counts_behind_uniform_shares() -> None:
    rng = np.random.default_rng(10)
    ks = np.array([1, 4, 7], dtype=np.intp)
    rows, width = 40, 3
    counts = np.stack([rng.multinomial(k, np.ones(width) / width, size=rows) for k in ks])
    shares = counts / ks[:, None, None]
    truth = rng.integers(0, width, rows).astype(np.intp)
    columns = np.array([0, 2], dtype=np.intp)
    histograms = np.zeros((3, 2, 2, 8), dtype=np.int64)
    _kernels.count_shares(shares, ks, truth, columns, histograms)
    for i in range(3):
        for j, c in enumerate(columns):
            for positive in (0, 1):
                rows_of = (truth == c) == bool(positive)
                want = np.bincount(counts[i, rows_of, c], minlength=8)
                np.testing.assert_array_equal(histograms[i, j, positive], want)


def test_the_tally_kernels_refuse_what_they_cannot_count() -> None:
    codes = np.zeros((2, 5), dtype=np.intp)
    truth = np.zeros(5, dtype=np.intp)
    counts = np.zeros((2, 3), dtype=np.int64)
    none3 = np.zeros((0, 0, 0), dtype=np.int64)
    with pytest.raises(ValueError, match="shapes"):
        _kernels.tally_codes(codes, truth, 4, counts, counts, none3)
    with pytest.raises(ValueError, match="shapes"):
        _kernels.tally_codes(codes, truth[:4], 3, counts, counts, none3)
    with pytest.raises(ValueError, match="predicted code is out of range"):
        _kernels.tally_codes(codes + 3, truth, 3, counts, counts, none3)
    with pytest.raises(ValueError, match="true code is out of range"):
        _kernels.tally_codes(codes, truth - 1, 3, counts, counts, none3)
    with pytest.raises(TypeError, match="intp"):
        _kernels.tally_codes(codes.astype(np.int32), truth, 3, counts, counts, none3)
    shares = np.full((1, 5, 3), 0.5)
    ks = np.array([2], dtype=np.intp)
    histograms = np.zeros((1, 1, 2, 3), dtype=np.int64)
    with pytest.raises(ValueError, match="column is out of range"):
        _kernels.count_shares(shares, ks, truth, np.array([3], dtype=np.intp), histograms)
    with pytest.raises(ValueError, match="not a count in range"):
        _kernels.count_shares(shares * 4, ks, truth, np.array([0], dtype=np.intp), histograms)
    with pytest.raises(ValueError, match="shapes"):
        _kernels.count_shares(shares, ks, truth[:3], np.array([0], dtype=np.intp), histograms)


async def test_leave_one_out_pools_every_score_and_ranks_by_the_pooled_one() -> None:
    """Per-fold F1 or AUC of one row means nothing: cross_val_predict, then the metric."""
    X, y = tie_free(60, features=4, seed=8)
    data = Dataset(X=X, y=y.astype(np.intp), classes=["a", "b", "c"], source="small")
    result = await tune(
        data, k=[1, 4, 9], weights="uniform,distance", cv="loo", scoring="f1_macro", workers=2
    )
    entries = [row.to_dict() for row in result.candidates]
    for row, entry in zip(result.candidates, entries, strict=True):
        c = row.candidate
        knn = KNeighborsClassifier(
            n_neighbors=c.k, weights=c.weights, algorithm="brute", **sklearn_params(c.metric)
        )
        predicted = cross_val_predict(knn, X, y, cv=LeaveOneOut())
        proba = cross_val_predict(knn, X, y, cv=LeaveOneOut(), method="predict_proba")
        for name in SCORES:
            if name in PROBA_FUNCTIONS:
                want = PROBA_FUNCTIONS[name](y, proba)
            else:
                want = METRIC_FUNCTIONS[name](y, predicted)
            assert entry[f"pooled_{name}"] == pytest.approx(want, abs=1e-12), (c, name)
        assert entry["confusion_matrix"] == confusion_matrix(y, predicted).tolist()
        assert entry["mean_roc_auc_ovr"] is None  # each one-row fold's AUC is undefined
        assert row.mean_score == entry["pooled_f1_macro"]
    pooled = [e["pooled_f1_macro"] for e in entries]
    assert pooled == sorted(pooled, reverse=True)
    assert entries[0]["rank"] == 1


@pytest.mark.parametrize("scale", [None, "standard"])
async def test_each_candidates_confusion_matrix_is_scikit_learns_summed_over_folds(
    skewed: tuple[np.ndarray, np.ndarray], scale: str | None
) -> None:
    """Rows the true class, columns the predicted one, in the data set's class order,
    including the rare class that large k never predicts."""
    X, y = skewed
    data = Dataset(X=X, y=y.astype(np.intp), classes=["a", "b", "c"], source="skewed")
    result = await tune(
        data,
        k=[1, 6, 25],
        metrics="manhattan,cosine",
        weights="uniform,distance",
        scale=scale,
        workers=2,
    )
    folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(X, y))
    for row in result.candidates:
        c = row.candidate
        knn = KNeighborsClassifier(
            n_neighbors=c.k, weights=c.weights, algorithm="brute", **sklearn_params(c.metric)
        )
        model = knn if scale is None else make_pipeline(StandardScaler(), knn)
        want = sum(
            confusion_matrix(
                y[test], model.fit(X[train], y[train]).predict(X[test]), labels=[0, 1, 2]
            )
            for train, test in folds
        )
        assert row.to_dict()["confusion_matrix"] == want.tolist(), c
    assert any(m[2][2] == 0 for m in (r.confusion for r in result.candidates) if m), (
        "a candidate that never predicts the rare class"
    )


async def test_too_many_classes_for_confusion_matrices_give_none() -> None:
    X, _ = tie_free(CONFUSION_CLASSES * 3 + 3, features=4, seed=2)
    y = np.arange(X.shape[0]) % (CONFUSION_CLASSES + 1)
    names = [f"c{i}" for i in range(CONFUSION_CLASSES + 1)]
    data = Dataset(X=X, y=y.astype(np.intp), classes=names, source="many")
    result = await tune(data, k=[1, 2], metrics="euclidean", cv="kfold:3", workers=1)
    assert all(row.to_dict()["confusion_matrix"] is None for row in result.candidates)
