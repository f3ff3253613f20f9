"""Folds against scikit-learn's splitters, and the parsing of ``--cv``."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from sklearn.model_selection import LeaveOneOut, StratifiedKFold, train_test_split

from pipeline.errors import InputError
from stages.dataset import Dataset
from stages.partition import CvSpec, Folds, make_folds, parse_cv


def data(n: int = 60, seed: int = 0, groups: Any = None, n_classes: int = 3) -> Dataset:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = rng.permutation(np.arange(n) % n_classes)
    return Dataset(
        X=X.astype(float),
        y=y.astype(np.intp),
        classes=[str(c) for c in range(n_classes)],
        source="synthetic",
        groups=groups,
    )


def assert_folds_equal(
    folds: Folds, ids: list[str], splits: list[tuple[npt.NDArray[Any], npt.NDArray[Any]]]
) -> None:
    assert [f.id for f in folds.folds] == ids
    assert len(folds.folds) == len(splits)
    for fold, (train, test) in zip(folds.folds, splits, strict=True):
        assert np.array_equal(fold.train, np.sort(train)), fold.id
        assert np.array_equal(fold.test, np.sort(test)), fold.id
        assert np.all(np.diff(fold.train) > 0) and np.all(np.diff(fold.test) > 0)


def assert_fold_of_row_consistent(folds: Folds, n: int) -> None:
    fold_of_row = folds.fold_of_row
    assert fold_of_row.shape == (n,)
    tested = np.zeros(n, dtype=int)
    for number, fold in enumerate(folds.folds):
        assert (fold_of_row[fold.test] == number).all()
        tested[fold.test] += 1
        # training rows are the complement of the fold's test rows
        assert np.array_equal(np.union1d(fold.train, fold.test), np.arange(n))
        assert np.intersect1d(fold.train, fold.test).size == 0
        assert np.array_equal(fold.train, np.flatnonzero(fold_of_row != number)), fold.id
    assert tested.max() <= 1
    assert ((fold_of_row == -1) == (tested == 0)).all()


def assert_describe(folds: Folds, kind: str, seed: int) -> None:
    assert folds.describe() == {
        "kind": kind,
        "seed": seed,
        "folds": [
            {"id": f.id, "train_rows": int(f.train.size), "test_rows": int(f.test.size)}
            for f in folds.folds
        ],
    }


# ---------------------------------------------------------------------------- make_folds


@pytest.mark.parametrize("seed", [0, 1, 7, 42])
@pytest.mark.parametrize(("n", "n_splits"), [(60, 5), (47, 3), (90, 10), (31, 2)])
def test_kfold_is_stratified_kfold(seed: int, n: int, n_splits: int) -> None:
    dataset = data(n, seed)
    folds = make_folds(dataset, parse_cv(f"kfold:{n_splits}"), seed=seed)
    splits = list(
        StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(dataset.X, dataset.y)
    )
    assert folds.kind == "kfold"
    assert folds.seed == seed
    assert_folds_equal(folds, [str(i) for i in range(n_splits)], splits)
    assert_fold_of_row_consistent(folds, n)
    assert (folds.fold_of_row >= 0).all()
    assert_describe(folds, "kfold", seed)
    assert folds.smallest_train == min(tr.size for tr, _ in splits)


def test_kfold_seed_changes_the_folds() -> None:
    dataset = data(60, 0)
    a = make_folds(dataset, parse_cv("kfold:5"), seed=0)
    b = make_folds(dataset, parse_cv("kfold:5"), seed=1)
    assert any(not np.array_equal(x.test, y.test) for x, y in zip(a.folds, b.folds, strict=True))


@pytest.mark.parametrize("seed", [0, 3, 11])
@pytest.mark.parametrize(("n", "test_size"), [(60, 0.25), (100, 0.1), (45, 0.5), (80, 0.33)])
def test_holdout_is_stratified_train_test_split(seed: int, n: int, test_size: float) -> None:
    dataset = data(n, seed)
    folds = make_folds(dataset, parse_cv(f"holdout:{test_size}"), seed=seed)
    train, test = train_test_split(
        np.arange(n), test_size=test_size, stratify=dataset.y, random_state=seed
    )
    assert folds.kind == "holdout"
    assert_folds_equal(folds, ["0"], [(train, test)])
    assert_fold_of_row_consistent(folds, n)
    assert np.array_equal(np.flatnonzero(folds.fold_of_row == -1), np.sort(train))
    assert_describe(folds, "holdout", seed)


@pytest.mark.parametrize("n", [6, 25])
def test_loo_is_leave_one_out(n: int) -> None:
    dataset = data(n, 2)
    folds = make_folds(dataset, parse_cv("loo"), seed=5)
    splits = list(LeaveOneOut().split(np.arange(n)))
    assert folds.kind == "loo"
    assert_folds_equal(folds, [str(i) for i in range(n)], splits)
    assert_fold_of_row_consistent(folds, n)
    assert folds.fold_of_row.tolist() == list(range(n))
    assert folds.smallest_train == n - 1


def test_column_folds_are_the_sorted_distinct_values() -> None:
    rng = np.random.default_rng(3)
    names = np.array(["north", "east", "south", "west", "10", "9"], dtype=object)
    groups = rng.choice(names, size=72)
    groups[:6] = names  # every value present
    dataset = data(72, 3, groups=groups)
    folds = make_folds(dataset, parse_cv("column:region"), seed=0)
    ids = sorted(str(v) for v in set(groups))
    assert ids == ["10", "9", "east", "north", "south", "west"]
    splits = [(np.flatnonzero(groups != name), np.flatnonzero(groups == name)) for name in ids]
    assert folds.kind == "column"
    assert_folds_equal(folds, ids, splits)
    assert_fold_of_row_consistent(folds, 72)
    assert (folds.fold_of_row >= 0).all()
    assert_describe(folds, "column", 0)


def test_column_folds_match_predefined_split() -> None:
    from sklearn.model_selection import PredefinedSplit

    groups = np.array(list("bacabccabacb") * 4, dtype=object)
    dataset = data(groups.size, 4, groups=groups)
    folds = make_folds(dataset, parse_cv("column:g"), seed=0)
    codes = np.searchsorted(np.array(["a", "b", "c"]), groups.astype(str))
    splits = list(PredefinedSplit(codes).split())
    assert_folds_equal(folds, ["a", "b", "c"], splits)


@pytest.mark.parametrize(
    ("train_word", "test_word"),
    [("train", "test"), ("Train", "Test"), ("TRAIN", "TEST"), ("train", "TeSt")],
)
def test_train_test_column_gives_one_fold_named_test(train_word: str, test_word: str) -> None:
    rng = np.random.default_rng(5)
    is_test = rng.random(50) < 0.3
    groups = np.where(is_test, test_word, train_word).astype(object)
    groups[0] = train_word.lower()  # mixed case within one column too
    groups[1] = test_word.upper()
    is_test[0], is_test[1] = False, True
    dataset = data(50, 5, groups=groups)
    folds = make_folds(dataset, parse_cv("column:split"), seed=9)
    assert_folds_equal(folds, ["test"], [(np.flatnonzero(~is_test), np.flatnonzero(is_test))])
    assert_fold_of_row_consistent(folds, 50)
    assert np.array_equal(folds.fold_of_row == 0, is_test)
    assert folds.describe()["folds"] == [
        {"id": "test", "train_rows": int((~is_test).sum()), "test_rows": int(is_test.sum())}
    ]


def test_a_column_with_train_test_and_more_values_is_an_ordinary_column() -> None:
    groups = np.array(["train", "test", "valid"] * 10, dtype=object)
    folds = make_folds(data(30, 6, groups=groups), parse_cv("column:split"), seed=0)
    assert [f.id for f in folds.folds] == ["test", "train", "valid"]
    assert [f.test.size for f in folds.folds] == [10, 10, 10]


def test_numeric_column_values_become_string_ids() -> None:
    groups = np.array([2, 1, 3] * 10, dtype=object)
    folds = make_folds(data(30, 7, groups=groups), parse_cv("column:fold"), seed=0)
    assert [f.id for f in folds.folds] == ["1", "2", "3"]
    assert folds.folds[0].test.tolist() == list(range(1, 30, 3))


# ---------------------------------------------------------------------------- make_folds errors


def test_single_class_data_set_is_refused() -> None:
    dataset = Dataset(
        X=np.zeros((10, 2)), y=np.zeros(10, dtype=np.intp), classes=["only"], source="one"
    )
    with pytest.raises(InputError):
        make_folds(dataset, parse_cv("kfold:2"))


def test_labels_of_one_class_are_refused_even_with_more_class_names() -> None:
    dataset = Dataset(
        X=np.zeros((10, 2)), y=np.ones(10, dtype=np.intp), classes=["a", "b"], source="one"
    )
    for spec in ("kfold:2", "holdout:0.3", "loo"):
        with pytest.raises(InputError):
            make_folds(dataset, parse_cv(spec))


def test_more_folds_than_rows_is_refused() -> None:
    with pytest.raises(InputError):
        make_folds(data(8, 0), parse_cv("kfold:9"))


def test_holdout_too_small_to_stratify_is_refused() -> None:
    with pytest.raises(InputError):
        make_folds(data(12, 0), parse_cv("holdout:0.1"))  # 2 test rows for 3 classes


def test_column_without_groups_is_refused() -> None:
    with pytest.raises(InputError):
        make_folds(data(20, 0), parse_cv("column:site"))


@pytest.mark.parametrize(
    "values",
    [["a"] * 12, ["train"] * 12, ["TEST"] * 12],
)
def test_column_with_one_value_is_refused(values: list[str]) -> None:
    groups = np.array(values, dtype=object)
    with pytest.raises(InputError):
        make_folds(data(12, 0, groups=groups), parse_cv("column:site"))


# ---------------------------------------------------------------------------- parse_cv


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("kfold:5", CvSpec("kfold", n_splits=5)),
        ("kfold:2", CvSpec("kfold", n_splits=2)),
        ("KFold:10", CvSpec("kfold", n_splits=10)),
        (" kfold:3 ", CvSpec("kfold", n_splits=3)),
        ("holdout:0.25", CvSpec("holdout", test_size=0.25)),
        ("holdout:0.5", CvSpec("holdout", test_size=0.5)),
        ("Holdout:.2", CvSpec("holdout", test_size=0.2)),
        ("loo", CvSpec("loo")),
        ("LOO", CvSpec("loo")),
        ("column:fold", CvSpec("column", column="fold")),
        ("column:My Column", CvSpec("column", column="My Column")),
    ],
)
def test_parse_cv_accepts_good_specs(spec: str, expected: CvSpec) -> None:
    assert parse_cv(spec) == expected


@pytest.mark.parametrize(
    "spec",
    [
        "kfold:1",
        "kfold:0",
        "kfold:x",
        "kfold:",
        "kfold",
        "kfold:-3",
        "kfold:2.5",
        "holdout:0",
        "holdout:1",
        "holdout:1.5",
        "holdout:-0.2",
        "holdout:x",
        "holdout:nan",
        "holdout:",
        "holdout",
        "bogus",
        "",
        "column:",
        "column:   ",
        "column",
        "loo:3",
    ],
)
def test_parse_cv_refuses_bad_specs(spec: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_cv(spec)
    assert str(caught.value).startswith("cv: ")  # the parameter, as a library caller wrote it
    assert caught.value.named(lambda name: f"--{name}").startswith("--cv: ")


def test_parse_cv_round_trips_through_str() -> None:
    for spec in ("kfold:7", "holdout:0.3", "loo", "column:site"):
        assert str(parse_cv(spec)) == spec
        assert parse_cv(str(parse_cv(spec))) == parse_cv(spec)
