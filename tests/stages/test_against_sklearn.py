"""The tuning against scikit-learn, the oracle.

For data sets without distance ties, every candidate's accuracy on every fold
must equal what ``KNeighborsClassifier(algorithm="brute")`` scores when fitted
on the same training rows and scored on the same test rows. The folds are
rebuilt here from scikit-learn's splitters (not read from the code under test),
so a wrong split shows up as a wrong score too.
"""

from __future__ import annotations

import functools
import itertools
import json
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from scipy.spatial.distance import cdist
from scipy.stats import rankdata
from sklearn.datasets import make_classification
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score
from sklearn.model_selection import (
    GridSearchCV,
    LeaveOneOut,
    StratifiedKFold,
    cross_validate,
    train_test_split,
)
from sklearn.neighbors import KNeighborsClassifier
from threadpoolctl import threadpool_limits

from stages.dataset import Dataset
from stages.results import TuningResult
from stages.tuning import Tuning, tune

METRICS = ("euclidean", "manhattan", "chebyshev", "sorensen")
SKLEARN_METRIC = {
    "euclidean": "euclidean",
    "manhattan": "manhattan",
    "chebyshev": "chebyshev",
    "sorensen": "braycurtis",
}
SCIPY_METRIC = {
    "euclidean": "euclidean",
    "manhattan": "cityblock",
    "chebyshev": "chebyshev",
    "sorensen": "braycurtis",
}
WEIGHTS = ("uniform", "distance")
KS = (1, 2, 3, 7, 15)

Split = tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]
Key = tuple[int, str, str]


@pytest.fixture(autouse=True)
def one_blas_thread() -> Iterator[None]:
    """scikit-learn's brute-force kernels start thread pools per call: on 2 cores that is slow."""
    with threadpool_limits(1):
        yield


# ---------------------------------------------------------------------------- data


def features_labels(n: int, seed: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.intp]]:
    """Non-negative continuous features (so sorensen is a metric), 3 classes, no distance ties."""
    X, y = make_classification(
        n_samples=n,
        n_features=4,
        n_informative=3,
        n_redundant=0,
        n_classes=3,
        n_clusters_per_class=1,
        class_sep=0.7,
        flip_y=0.05,
        random_state=seed,
    )
    X = np.abs(X).astype(np.float64)
    assert_no_near_ties(X)
    return X, y.astype(np.intp)


def assert_no_near_ties(X: npt.NDArray[np.float64]) -> None:
    """Precondition: no two distances from one row are (nearly) equal under any metric.

    scikit-learn computes euclidean distances through a matrix product, so
    near-equal distances could come out in another order there; the data sets
    of these tests keep every gap well above rounding.
    """
    for metric in SCIPY_METRIC.values():
        d = np.sort(cdist(X, X, metric=metric), axis=1)[:, 1:]  # drop the self-distance
        gaps = np.diff(d, axis=1)
        assert (gaps > 1e-9 * d[:, 1:]).all(), f"test data has near-tied {metric} distances"


def dataset(X: npt.NDArray[np.float64], y: npt.NDArray[np.intp], groups: Any = None) -> Dataset:
    return Dataset(
        X=X.astype(float),
        y=y.astype(np.intp),
        classes=[str(c) for c in range(3)],
        source="synthetic",
        groups=groups,
    )


# ---------------------------------------------------------------------------- folds (oracle)


def kfold_splits(X: Any, y: Any, n_splits: int, seed: int) -> list[Split]:
    return list(StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(X, y))


def holdout_splits(y: Any, test_size: float, seed: int) -> list[Split]:
    train, test = train_test_split(
        np.arange(y.size), test_size=test_size, stratify=y, random_state=seed
    )
    return [(np.sort(train), np.sort(test))]


def loo_splits(n: int) -> list[Split]:
    return list(LeaveOneOut().split(np.arange(n)))


def column_splits(groups: Sequence[str]) -> tuple[list[str], list[Split]]:
    values = np.asarray(groups, dtype=object)
    lowered = {str(v).lower() for v in values}
    if lowered == {"train", "test"}:
        is_test = np.array([str(v).lower() == "test" for v in values])
        return ["test"], [(np.flatnonzero(~is_test), np.flatnonzero(is_test))]
    ids = sorted({str(v) for v in values})
    splits = []
    for name in ids:
        is_test = np.array([str(v) == name for v in values])
        splits.append((np.flatnonzero(~is_test), np.flatnonzero(is_test)))
    return ids, splits


# ---------------------------------------------------------------------------- sklearn scores


def sklearn_fold_scores(
    X: Any, y: Any, splits: list[Split], k: int, metric: str, weights: str
) -> tuple[list[float], list[float], list[float]]:
    """Accuracy, balanced accuracy and macro F1 of each fold, as scikit-learn scores them."""
    return sklearn_scores_every_k(X, y, splits, [k], metric, weights)[k]


def sklearn_scores_every_k(
    X: Any, y: Any, splits: list[Split], ks: Sequence[int], metric: str, weights: str
) -> dict[int, tuple[list[float], list[float], list[float]]]:
    """:func:`sklearn_fold_scores` for several k.

    A brute-force model's ``fit`` only stores the training rows, and
    ``predict`` reads ``n_neighbors`` when it runs, so one fitted model per
    fold serves every k (``fit`` is half of scikit-learn's time here).
    """
    scores: dict[int, tuple[list[float], list[float], list[float]]] = {k: ([], [], []) for k in ks}
    for train, test in splits:
        model = KNeighborsClassifier(
            n_neighbors=ks[0], algorithm="brute", metric=SKLEARN_METRIC[metric], weights=weights
        ).fit(X[train], y[train])
        truth = np.asarray(y[test], dtype=np.int64).tobytes()
        for k in ks:
            predicted = model.set_params(n_neighbors=k).predict(X[test])
            fold = sklearn_scores(truth, np.asarray(predicted, np.int64).tobytes())
            for kept, value in zip(scores[k], fold, strict=True):
                kept.append(value)  # accuracy == model.score(X[test], y[test])
    return scores


@functools.cache
def sklearn_scores(truth: bytes, predicted: bytes) -> tuple[float, float, float]:
    """scikit-learn's scores of one fold's predictions (cached: its metrics are slow)."""
    y_true = np.frombuffer(truth, dtype=np.int64)
    y_pred = np.frombuffer(predicted, dtype=np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one-row folds: recall/F1 of absent classes
        return (
            float(accuracy_score(y_true, y_pred)),
            float(balanced_accuracy_score(y_true, y_pred)),
            float(f1_score(y_true, y_pred, average="macro")),
        )


async def run_threads(data: Dataset, cv: str, **options: Any) -> TuningResult:
    options.setdefault("k", list(KS))
    options.setdefault("metrics", list(METRICS))
    options.setdefault("weights", list(WEIGHTS))
    with ThreadPoolExecutor(2) as executor:
        return await Tuning(data, cv=cv, executor=executor, **options).run()


def by_key(result: TuningResult) -> dict[Key, Any]:
    found = {(c.candidate.k, c.candidate.metric, c.candidate.weights): c for c in result.candidates}
    assert len(found) == len(result.candidates), "a candidate appears twice on the leaderboard"
    return found


def compare_with_sklearn(
    result: TuningResult,
    X: Any,
    y: Any,
    splits: list[Split],
    *,
    ks: Sequence[int] = KS,
    metrics: Sequence[str] = METRICS,
    weights: Sequence[str] = WEIGHTS,
) -> None:
    """Assert every candidate's fold accuracies and mean scores equal scikit-learn's."""
    assert result.complete
    ours = by_key(result)
    assert set(ours) == {(k, m, w) for k in ks for m in metrics for w in weights}
    assert [(f["train_rows"], f["test_rows"]) for f in result.cv["folds"]] == [
        (tr.size, te.size) for tr, te in splits
    ]
    wrong = []
    expected = {
        (k, metric, weighting): fold_scores
        for metric in metrics
        for weighting in weights
        for k, fold_scores in sklearn_scores_every_k(X, y, splits, ks, metric, weighting).items()
    }
    for (k, metric, weighting), got in sorted(ours.items()):
        accuracy, balanced, f1 = expected[(k, metric, weighting)]
        if got.fold_accuracy != accuracy:
            folds = [
                i
                for i, (a, b) in enumerate(zip(got.fold_accuracy, accuracy, strict=False))
                if a != b
            ]
            wrong.append(
                f"k={k} {metric} {weighting}: folds {folds} ours {got.fold_accuracy} "
                f"sklearn {accuracy}"
            )
            continue
        assert got.folds_done == len(splits)
        assert got.mean_accuracy == pytest.approx(np.mean(accuracy), abs=1e-12)
        assert got.std_accuracy == pytest.approx(np.std(accuracy), abs=1e-12)
        assert got.mean_balanced_accuracy == pytest.approx(np.mean(balanced), abs=1e-12), (
            f"balanced accuracy of k={k} {metric} {weighting}"
        )
        assert got.mean_f1_macro == pytest.approx(np.mean(f1), abs=1e-12), (
            f"macro F1 of k={k} {metric} {weighting}"
        )
    assert not wrong, f"{len(wrong)} candidates differ from scikit-learn:\n" + "\n".join(wrong)


# ---------------------------------------------------------------------------- cv kinds


@pytest.mark.parametrize(
    ("n", "n_splits", "seed"),
    [
        (150, 5, 0),  # 30 test rows a fold: units per fold
        (97, 5, 3),  # uneven folds
        (100, 10, 7),  # 10 test rows a fold: units span folds (masked training rows)
    ],
)
async def test_kfold_matches_sklearn(n: int, n_splits: int, seed: int) -> None:
    X, y = features_labels(n, seed)
    result = await run_threads(dataset(X, y), f"kfold:{n_splits}", seed=seed)
    splits = kfold_splits(X, y, n_splits, seed)
    assert result.cv["kind"] == "kfold"
    assert [f["id"] for f in result.cv["folds"]] == [str(i) for i in range(n_splits)]
    compare_with_sklearn(result, X, y, splits)


@pytest.mark.parametrize(
    ("n", "test_size", "seed"),
    [
        (120, 0.25, 1),  # 30 test rows
        (100, 0.1, 5),  # 10 test rows: one masked block, most rows train only
    ],
)
async def test_holdout_matches_sklearn(n: int, test_size: float, seed: int) -> None:
    X, y = features_labels(n, seed)
    result = await run_threads(dataset(X, y), f"holdout:{test_size}", seed=seed)
    assert [f["id"] for f in result.cv["folds"]] == ["0"]
    compare_with_sklearn(result, X, y, holdout_splits(y, test_size, seed))


@pytest.mark.parametrize(
    ("cv", "n", "ks"),
    [
        ("kfold:10", 97, (40, 87)),  # units span folds; k up to the smallest training fold
        ("holdout:0.25", 120, (1, 89, 90)),  # k == every training row: a full sort
    ],
)
async def test_large_k_matches_sklearn(cv: str, n: int, ks: tuple[int, ...]) -> None:
    X, y = features_labels(n, 17)
    result = await run_threads(dataset(X, y), cv, seed=17, k=list(ks))
    splits = kfold_splits(X, y, 10, 17) if cv.startswith("kfold") else holdout_splits(y, 0.25, 17)
    assert min(tr.size for tr, _ in splits) == max(ks)
    compare_with_sklearn(result, X, y, splits, ks=ks)


async def test_loo_matches_sklearn() -> None:
    X, y = features_labels(40, 11)
    result = await run_threads(dataset(X, y), "loo", k=[1, 2, 3, 7, 15])
    assert [f["id"] for f in result.cv["folds"]] == [str(i) for i in range(40)]
    compare_with_sklearn(result, X, y, loo_splits(40))


async def test_column_matches_sklearn_with_sorted_fold_ids() -> None:
    X, y = features_labels(120, 2)
    rng = np.random.default_rng(2)
    groups = rng.choice(np.array(["delta", "alpha", "charlie", "bravo"], dtype=object), size=120)
    result = await run_threads(dataset(X, y, groups), "column:site")
    ids, splits = column_splits(list(groups))
    assert ids == ["alpha", "bravo", "charlie", "delta"]
    assert [f["id"] for f in result.cv["folds"]] == ids
    compare_with_sklearn(result, X, y, splits)


async def test_column_with_many_small_groups_matches_sklearn() -> None:
    """12 groups of 6 rows: units span folds; ids sort as strings ("g10" before "g2")."""
    X, y = features_labels(72, 4)
    groups = np.array([f"g{i % 12}" for i in range(72)], dtype=object)
    np.random.default_rng(4).shuffle(groups)
    result = await run_threads(dataset(X, y, groups), "column:g", k=[1, 2, 7, 15])
    ids, splits = column_splits(list(groups))
    assert ids[:4] == ["g0", "g1", "g10", "g11"]
    assert [f["id"] for f in result.cv["folds"]] == ids
    compare_with_sklearn(result, X, y, splits, ks=(1, 2, 7, 15))


@pytest.mark.parametrize("test_rows", [25, 10])
async def test_train_test_column_matches_sklearn(test_rows: int) -> None:
    X, y = features_labels(100, 6)
    rng = np.random.default_rng(6)
    groups = np.array(["Train"] * 100, dtype=object)
    test = rng.choice(100, size=test_rows, replace=False)
    groups[test] = rng.choice(["TEST", "test", "Test"], size=test_rows)
    groups[rng.choice(np.setdiff1d(np.arange(100), test), size=20, replace=False)] = "train"
    result = await run_threads(dataset(X, y, groups), "column:split")
    ids, splits = column_splits(list(groups))
    assert ids == ["test"]
    assert result.cv["folds"] == [
        {"id": "test", "train_rows": 100 - test_rows, "test_rows": test_rows}
    ]
    assert np.array_equal(splits[0][1], np.sort(test))
    compare_with_sklearn(result, X, y, splits)


async def test_default_process_pool_matches_sklearn() -> None:
    """One whole run on the default process pool (shared memory, forkserver workers)."""
    X, y = features_labels(150, 8)
    result = await Tuning(
        dataset(X, y),
        k=list(KS),
        metrics=list(METRICS),
        weights=list(WEIGHTS),
        cv="kfold:5",
        seed=8,
        workers=2,
    ).run()
    compare_with_sklearn(result, X, y, kfold_splits(X, y, 5, 8))
    # The results JSON carries the same numbers, one line per candidate.
    text = result.to_json()
    document = json.loads(text)
    assert document == json.loads(json.dumps(result.to_dict()))
    lines = [line.strip().rstrip(",") for line in text.splitlines()]
    assert [json.loads(line) for line in lines if line.startswith('{"rank"')] == document[
        "candidates"
    ]
    assert document["cv"]["folds"] == result.cv["folds"]
    for entry, candidate in zip(document["candidates"], result.candidates, strict=True):
        assert entry["params"] == candidate.candidate.params()
        assert entry["fold_accuracy"] == candidate.fold_accuracy
        assert entry["rank"] == candidate.rank


async def test_tune_function_matches_sklearn() -> None:
    X, y = features_labels(90, 9)
    with ThreadPoolExecutor(2) as executor:
        result = await tune(
            dataset(X, y),
            k="1-3,7",
            metrics="manhattan,sorensen",
            weights="distance",
            cv="kfold:3",
            seed=9,
            executor=executor,
        )
    compare_with_sklearn(
        result,
        X,
        y,
        kfold_splits(X, y, 3, 9),
        ks=(1, 2, 3, 7),
        metrics=("manhattan", "sorensen"),
        weights=("distance",),
    )


# ---------------------------------------------------------------------------- exact matches


async def test_exact_duplicates_in_the_test_set_match_sklearn() -> None:
    """A test row equal to a training row (distance 0): with weights="distance" it wins outright."""
    X, y = features_labels(120, 10)
    groups = np.array(["train"] * 120, dtype=object)
    rng = np.random.default_rng(10)
    test = rng.choice(120, size=30, replace=False)
    groups[test] = "test"
    train = np.setdiff1d(np.arange(120), test)
    # Half the test rows become exact copies (features and label) of distinct
    # training rows, preferring rows that their own 7 nearest training
    # neighbours outvote, so that only the exact-match rule predicts them right.
    d = cdist(X[train], X[train])
    np.fill_diagonal(d, np.inf)
    nearest7 = np.argsort(d, axis=1)[:, :7]
    outvoted = [
        int(train[i])
        for i in range(train.size)
        if np.bincount(y[train[nearest7[i]]], minlength=3).argmax() != y[train[i]]
    ]
    others = [int(r) for r in rng.permutation(train) if int(r) not in outvoted]
    sources = (outvoted + others)[:15]
    assert len(outvoted) >= 5, "the data set should have some outvoted rows"
    for row, source in zip(test[:15], sources, strict=True):
        X[row] = X[source]
        y[row] = y[source]
    result = await run_threads(dataset(X, y, groups), "column:split")
    _, splits = column_splits(list(groups))
    compare_with_sklearn(result, X, y, splits)
    # Every duplicate is predicted as its twin's class, for every k, under "distance".
    found = by_key(result)
    for k in KS:
        for metric in METRICS:
            assert found[(k, metric, "distance")].fold_accuracy[0] >= 15 / 30 - 1e-12, (k, metric)


async def test_exact_matches_of_two_classes_tie_to_the_smaller_class() -> None:
    """Two training rows identical to a test row, of classes 2 and 1: a tie, class 1 wins."""
    rng = np.random.default_rng(12)
    X = rng.uniform(1.0, 2.0, size=(40, 3))
    y = np.arange(40) % 3
    X[[5, 6]] = [50.0, 50.0, 50.0]  # far from every other row
    y[5], y[6] = 2, 1
    X[39] = [50.0, 50.0, 50.0]
    y[39] = 2  # the truth is 2: a correct prediction would be a wrong tie-break
    groups = np.array(["train"] * 39 + ["test"], dtype=object)
    result = await run_threads(
        dataset(X, y, groups), "column:split", k=[2, 3, 5], weights=["distance", "uniform"]
    )
    found = by_key(result)
    for metric in METRICS:
        for k in (2, 3, 5):
            # distance: only the two exact matches vote, 1 each: tie -> class 1 (wrong)
            assert found[(k, metric, "distance")].fold_accuracy == [0.0], (k, metric)
        # uniform k=2: one vote each, tie -> class 1 (wrong)
        assert found[(2, metric, "uniform")].fold_accuracy == [0.0], metric
    # scikit-learn agrees where it computes exact zeros (not through a matrix product)
    for metric in ("manhattan", "chebyshev", "sorensen"):
        for k in (2, 3, 5):
            accuracy, _, _ = sklearn_fold_scores(
                X, y, [(np.arange(39), np.array([39]))], k, metric, "distance"
            )
            assert found[(k, metric, "distance")].fold_accuracy == accuracy


# ---------------------------------------------------------------------------- GridSearchCV


async def test_grid_search_scores_and_ranks_match() -> None:
    X, y = features_labels(150, 13)
    seed = 13
    result = await run_threads(dataset(X, y), "kfold:5", seed=seed)
    splits = kfold_splits(X, y, 5, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search = GridSearchCV(
            KNeighborsClassifier(algorithm="brute"),
            {
                "n_neighbors": list(KS),
                "metric": [SKLEARN_METRIC[m] for m in METRICS],
                "weights": list(WEIGHTS),
            },
            cv=splits,
        ).fit(X, y)
    metric_of = {v: k for k, v in SKLEARN_METRIC.items()}
    ours = by_key(result)
    cv = search.cv_results_
    # scikit-learn ranks its float means, so equal means that differ in the last bit get
    # different ranks there; ours compare the true means (see stages.rank).
    exact_rank = rankdata(-np.round(cv["mean_test_score"], 12), method="min")
    assert len(cv["params"]) == len(ours)
    for i, params in enumerate(cv["params"]):
        got = ours[(params["n_neighbors"], metric_of[params["metric"]], params["weights"])]
        assert got.mean_accuracy == pytest.approx(cv["mean_test_score"][i], abs=1e-12), params
        assert got.std_accuracy == pytest.approx(cv["std_test_score"][i], abs=1e-12), params
        assert got.fold_accuracy == [cv[f"split{f}_test_score"][i] for f in range(5)], params
        assert got.rank == exact_rank[i], params
    assert result.best is not None
    assert result.best.mean_accuracy == pytest.approx(search.best_score_, abs=1e-12)

    # cross_validate over the same splits, for one candidate
    best = result.best.candidate
    scores = cross_validate(
        KNeighborsClassifier(
            best.k, algorithm="brute", metric=SKLEARN_METRIC[best.metric], weights=best.weights
        ),
        X,
        y,
        cv=splits,
    )["test_score"]
    assert result.best.fold_accuracy == list(scores)
    assert result.best.mean_accuracy == pytest.approx(scores.mean(), abs=1e-12)


async def test_score_method_matches_fold_accuracy() -> None:
    """The literal oracle: ``KNeighborsClassifier(...).fit(...).score(...)`` on each fold."""
    X, y = features_labels(80, 14)
    result = await run_threads(dataset(X, y), "kfold:4", seed=14, k=[2, 7])
    ours = by_key(result)
    splits = kfold_splits(X, y, 4, 14)
    for (k, metric, weighting), got in ours.items():
        expected = [
            KNeighborsClassifier(
                n_neighbors=k, algorithm="brute", metric=SKLEARN_METRIC[metric], weights=weighting
            )
            .fit(X[train], y[train])
            .score(X[test], y[test])
            for train, test in splits
        ]
        assert got.fold_accuracy == pytest.approx(expected, abs=1e-12), (k, metric, weighting)


# ---------------------------------------------------------------------------- ranking


async def test_ranking_rule() -> None:
    """Mean accuracy desc, then k asc, then metrics and weights in the order given."""
    X, y = features_labels(90, 15)
    metrics = ["sorensen", "euclidean", "chebyshev", "manhattan"]
    weights = ["distance", "uniform"]
    ks = [1, 2, 3, 4, 7]
    result = await run_threads(
        dataset(X, y), "kfold:3", seed=15, k=ks, metrics=metrics, weights=weights
    )
    splits = kfold_splits(X, y, 3, 15)
    rows = result.candidates
    assert len(rows) == len(ks) * len(metrics) * len(weights)

    # The expected order, from scikit-learn's fold scores alone.
    sk_mean = {}
    for metric in metrics:
        for weighting in weights:
            every_k = sklearn_scores_every_k(X, y, splits, ks, metric, weighting)
            for k, (accuracy, _, _) in every_k.items():
                # the true mean: equal fold hits are equal means, whatever the float sum's last bit
                sk_mean[(k, metric, weighting)] = round(float(np.mean(accuracy)), 12)
    expected = sorted(
        sk_mean,
        key=lambda c: (-sk_mean[c], c[0], metrics.index(c[1]), weights.index(c[2])),
    )
    got = [(r.candidate.k, r.candidate.metric, r.candidate.weights) for r in rows]
    assert got == expected

    means = np.array([r.mean_accuracy for r in rows])
    ranks = [r.rank for r in rows]
    assert ranks == list(rankdata(-np.round(means, 12), method="min").astype(int))
    assert ranks == list(rankdata(-np.array([sk_mean[c] for c in expected]), method="min"))
    assert ranks[0] == 1
    # The data must exercise ties: k=1 gives equal scores for both weightings, and
    # competition ranking then skips ranks.
    assert len(set(means.tolist())) < len(means), "no tied means: the tie rules go untested"
    assert any(b - a > 1 for a, b in itertools.pairwise(ranks))
    for r in rows:
        if r.candidate.k == 1 and r.candidate.weights == "distance":
            twin = next(
                s
                for s in rows
                if (s.candidate.k, s.candidate.metric, s.candidate.weights)
                == (1, r.candidate.metric, "uniform")
            )
            assert twin.mean_accuracy == r.mean_accuracy
            assert twin.rank == r.rank
            assert rows.index(r) < rows.index(twin), "weights order as given: distance first"
    # Rank order is consistent with the position order.
    assert ranks == sorted(ranks)
    assert result.to_dict()["best"] == rows[0].candidate.params()


# ---------------------------------------------------------------------------- zero rows


async def test_sorensen_with_all_zero_rows_matches_sklearn() -> None:
    """Count-like data with all-zero rows: two zero rows are identical, at distance 0.

    Bray-Curtis is 0/0 between two all-zero rows. scikit-learn's ``braycurtis``
    defines that as 0 (identical rows); SciPy's ``cdist`` returns NaN, which
    sorts after every real distance, so a zero row would never find its twins.
    """
    rng = np.random.default_rng(16)
    X = rng.uniform(0.5, 3.0, size=(80, 3))
    y = rng.integers(1, 3, size=80)
    zero_rows = [3, 17, 25, 41, 58, 66, 71, 77]
    X[zero_rows] = 0.0
    y[zero_rows] = 0
    groups = np.array(["train"] * 80, dtype=object)
    test = [2, 9, 17, 30, 41, 45, 50, 63, 71, 79]  # three zero rows among them
    groups[test] = "test"
    _, splits = column_splits(list(groups))
    assert (X[splits[0][0]].sum(axis=1) == 0).sum() == 5  # five zero training rows
    ks = (1, 2, 3, 5)
    result = await run_threads(
        dataset(X, y, groups), "column:split", k=list(ks), metrics=["sorensen", "manhattan"]
    )
    # manhattan has no 0/0: the zero rows find their twins there.
    compare_with_sklearn(result, X, y, splits, ks=ks, metrics=("sorensen", "manhattan"))
