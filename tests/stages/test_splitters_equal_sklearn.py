"""Our hand-written splitters against scikit-learn's own, imported here.

``stages.partition`` reproduces ``StratifiedKFold``, the stratified
``train_test_split``, ``LeaveOneOut`` and ``PredefinedSplit`` so that a run
need not import scikit-learn. These tests draw many seeds, sizes, class
counts, imbalances and label types, so a change in scikit-learn's splitters
(or a slip in ours) shows up as a difference here.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings, strategies as st
from sklearn.model_selection import (
    LeaveOneOut,
    PredefinedSplit,
    StratifiedKFold,
    train_test_split,
)

from pipeline.errors import InputError
from stages.dataset import Dataset
from stages.partition import (
    make_folds,
    parse_cv,
    stratified_holdout,
    stratified_kfold_test_folds,
)

EXAMPLES = settings(max_examples=150, deadline=None)


@st.composite
def labelled_rows(draw: st.DrawFn, max_rows: int = 500) -> npt.NDArray[Any]:
    """Labels of 2 to ``max_rows`` rows: 1 to 30 classes of uneven sizes (some of one
    row), shuffled or in blocks, as ints (not 0..n-1) or strings."""
    n_classes = draw(st.integers(1, 30))
    sizes = draw(
        st.lists(
            st.one_of(st.integers(1, 4), st.integers(1, 60), st.integers(50, 250)),
            min_size=n_classes,
            max_size=n_classes,
        )
    )
    while sum(sizes) > max_rows:
        sizes[sizes.index(max(sizes))] //= 2
    sizes = [max(size, 1) for size in sizes]
    if sum(sizes) < 2:
        sizes.append(1)
    kind = draw(st.sampled_from(["int", "str", "codes"]))
    if kind == "codes":
        names: list[Any] = list(range(len(sizes)))
    elif kind == "int":
        names = draw(
            st.lists(
                st.integers(-1000, 1000), min_size=len(sizes), max_size=len(sizes), unique=True
            )
        )
    else:
        names = draw(
            st.lists(
                st.text("abcxyz- ", min_size=0, max_size=4),
                min_size=len(sizes),
                max_size=len(sizes),
                unique=True,
            )
        )
    y = np.repeat(np.asarray(names), sizes)
    order = draw(st.sampled_from(["shuffled", "blocks", "reversed"]))
    if order == "shuffled":
        y = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).permutation(y)
    elif order == "reversed":
        y = y[::-1].copy()
    return y


seeds = st.one_of(st.integers(0, 100), st.integers(0, 2**32 - 1))


def sklearn_test_folds(y: npt.NDArray[Any], n_splits: int, seed: int) -> npt.NDArray[np.intp]:
    """The fold that tests each row, from scikit-learn's public ``split``."""
    folds = np.full(y.size, -1, dtype=np.intp)
    splitter = StratifiedKFold(n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the least populated class
        for number, (train, test) in enumerate(splitter.split(np.zeros((y.size, 1)), y)):
            assert (folds[test] == -1).all()
            folds[test] = number
            assert np.array_equal(np.union1d(train, test), np.arange(y.size))
    return folds


def outcome(function: Any, *args: Any) -> tuple[str, Any]:
    """What ``function(*args)`` gives: its result, or the message of its ValueError."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            return "ok", function(*args)
        except ValueError as error:
            return "error", str(error)


# ---------------------------------------------------------------------------- StratifiedKFold


@EXAMPLES
@given(y=labelled_rows(), n_splits=st.integers(2, 12), seed=seeds)
def test_kfold_folds_equal_stratified_kfold(y: npt.NDArray[Any], n_splits: int, seed: int) -> None:
    n_splits = min(n_splits, y.size)
    theirs = outcome(sklearn_test_folds, y, n_splits, seed)
    ours = outcome(stratified_kfold_test_folds, y, n_splits, seed)
    assert ours[0] == theirs[0], (ours, theirs)
    if theirs[0] == "error":
        assert ours[1] == theirs[1]
    else:
        np.testing.assert_array_equal(ours[1], theirs[1])


@pytest.mark.parametrize("seed", range(50))
def test_kfold_equals_stratified_kfold_over_fifty_seeds(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 501))
    n_classes = int(rng.integers(2, min(n, 12) + 1))
    weights = rng.dirichlet(np.full(n_classes, 0.7))
    y = rng.choice(n_classes, size=n, p=weights)
    y[:n_classes] = np.arange(n_classes)  # every class present
    n_splits = int(rng.integers(2, min(n, 10) + 1))
    theirs = outcome(sklearn_test_folds, y, n_splits, seed)
    ours = outcome(stratified_kfold_test_folds, y, n_splits, seed)
    assert ours[0] == theirs[0]
    if theirs[0] == "ok":
        np.testing.assert_array_equal(ours[1], theirs[1])


def test_kfold_refuses_as_scikit_learn_does_when_every_class_is_smaller_than_the_folds() -> None:
    y = np.array([0, 0, 1, 1, 2, 2, 3])
    with pytest.raises(ValueError) as ours:
        stratified_kfold_test_folds(y, 3, 0)
    with pytest.raises(ValueError) as theirs:
        list(StratifiedKFold(3, shuffle=True, random_state=0).split(y, y))
    assert str(ours.value) == str(theirs.value)


def test_kfold_takes_a_class_smaller_than_the_folds_as_scikit_learn_does() -> None:
    y = np.array([0] * 20 + [1] * 2 + [2] * 9)  # class 1 is in 2 of the 5 folds only
    dataset = Dataset(X=np.zeros((y.size, 1)), y=y, classes=["a", "b", "c"], source="small")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is warned: the folds are simply uneven
        folds = make_folds(dataset, parse_cv("kfold:5"), seed=4)
    expected = sklearn_test_folds(y, 5, 4)
    np.testing.assert_array_equal(folds.fold_of_row, expected)
    assert len({int(folds.fold_of_row[row]) for row in (20, 21)}) == 2


# ---------------------------------------------------------------------------- train_test_split


def sklearn_holdout(
    y: npt.NDArray[Any], test_size: float, seed: int
) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    train, test = train_test_split(
        np.arange(y.size), test_size=test_size, stratify=y, random_state=seed
    )
    return train, test


fractions = st.one_of(
    st.sampled_from([0.1, 0.2, 0.25, 0.3, 1 / 3, 0.5, 0.9, 0.99]),
    st.floats(0.001, 0.999, allow_nan=False),
)


@EXAMPLES
@given(y=labelled_rows(), test_size=fractions, seed=seeds)
def test_holdout_equals_stratified_train_test_split(
    y: npt.NDArray[Any], test_size: float, seed: int
) -> None:
    theirs = outcome(sklearn_holdout, y, test_size, seed)
    ours = outcome(stratified_holdout, y, test_size, seed)
    assert ours[0] == theirs[0], (ours, theirs)
    if theirs[0] == "error":
        assert ours[1] == theirs[1]
    else:  # in scikit-learn's order, not only the same sets
        np.testing.assert_array_equal(ours[1][0], theirs[1][0])
        np.testing.assert_array_equal(ours[1][1], theirs[1][1])


@pytest.mark.parametrize("seed", range(50))
def test_holdout_equals_train_test_split_over_fifty_seeds(seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    n = int(rng.integers(10, 501))
    n_classes = int(rng.integers(2, 6))
    y = rng.choice(n_classes, size=n, p=rng.dirichlet(np.ones(n_classes)))
    y[: 2 * n_classes] = np.repeat(np.arange(n_classes), 2)
    test_size = float(rng.uniform(0.05, 0.95))
    theirs = outcome(sklearn_holdout, y, test_size, seed)
    ours = outcome(stratified_holdout, y, test_size, seed)
    assert ours[0] == theirs[0]
    if theirs[0] == "ok":
        np.testing.assert_array_equal(ours[1][0], theirs[1][0])
        np.testing.assert_array_equal(ours[1][1], theirs[1][1])
    else:
        assert ours[1] == theirs[1]


@pytest.mark.parametrize(
    ("y", "test_size"),
    [
        ([0] * 10 + [1] * 10 + [2], 0.3),  # a class of one row
        ([0] * 5 + [1] * 5 + [2] * 5, 0.1),  # 2 test rows for 3 classes
        ([0] * 5 + [1] * 5 + [2] * 5, 0.9),  # 1 training row for 3 classes
        ([0] * 5 + [1] * 5, 0.99),  # no training row at all
    ],
)
def test_holdout_errors_are_scikit_learns_in_the_message(y: list[int], test_size: float) -> None:
    labels = np.asarray(y, dtype=np.intp)
    with pytest.raises(ValueError) as theirs:
        sklearn_holdout(labels, test_size, 0)
    dataset = Dataset(X=np.zeros((labels.size, 1)), y=labels, classes=["a", "b", "c"], source="s")
    with pytest.raises(InputError) as ours:
        make_folds(dataset, parse_cv(f"holdout:{test_size}"), seed=0)
    assert str(ours.value) == f"cv holdout:{test_size}: cannot split s: {theirs.value}"


# ---------------------------------------------------------------------------- make_folds, whole


@settings(max_examples=60, deadline=None)
@given(y=labelled_rows(max_rows=300), seed=seeds, spec=st.sampled_from(["kfold:3", "holdout:0.3"]))
def test_make_folds_equals_scikit_learn_or_gives_its_reason(
    y: npt.NDArray[Any], seed: int, spec: str
) -> None:
    names, codes = np.unique(y, return_inverse=True)
    dataset = Dataset(
        X=np.zeros((y.size, 1)),
        y=codes.astype(np.intp),
        classes=[str(name) for name in names],
        source="drawn",
    )
    cv = parse_cv(spec)
    if cv.kind == "kfold":
        theirs = outcome(sklearn_test_folds, dataset.y, cv.n_splits, seed)
    else:
        theirs = outcome(sklearn_holdout, dataset.y, cv.test_size, seed)
    try:
        folds = make_folds(dataset, cv, seed=seed)
    except InputError as error:
        if names.size < 2:
            assert "a single class" in str(error)
        elif y.size < getattr(cv, "n_splits", 0):
            assert "more folds than" in str(error)
        else:
            assert theirs[0] == "error", error
            assert str(error).startswith(f"cv {spec}: cannot split drawn: ")
            assert theirs[1][:200] in str(error) or "has no training or no test rows" in str(error)
        return
    assert theirs[0] == "ok"
    if cv.kind == "kfold":
        np.testing.assert_array_equal(folds.fold_of_row, theirs[1])
    else:
        train, test = theirs[1]
        np.testing.assert_array_equal(folds.folds[0].train, np.sort(train))
        np.testing.assert_array_equal(folds.folds[0].test, np.sort(test))


# ---------------------------------------------------------------------------- LOO, predefined


@pytest.mark.parametrize("n", [2, 3, 17, 150])
def test_loo_equals_leave_one_out(n: int) -> None:
    y = np.arange(n) % 2
    dataset = Dataset(X=np.zeros((n, 1)), y=y, classes=["a", "b"], source="loo")
    folds = make_folds(dataset, parse_cv("loo"), seed=0)
    splits = list(LeaveOneOut().split(np.zeros((n, 1))))
    assert len(folds.folds) == len(splits)
    for fold, (train, test) in zip(folds.folds, splits, strict=True):
        np.testing.assert_array_equal(fold.train, train)
        np.testing.assert_array_equal(fold.test, test)


@pytest.mark.parametrize("seed", range(10))
def test_column_folds_equal_predefined_split(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 300))
    values = np.array(["b", "a", "10", "9", "z z", "7"])[: int(rng.integers(2, 7))]
    groups = rng.choice(values, size=n).astype(object)
    groups[: values.size] = values
    y = np.arange(n) % 2
    dataset = Dataset(X=np.zeros((n, 1)), y=y, classes=["a", "b"], source="g", groups=groups)
    folds = make_folds(dataset, parse_cv("column:g"), seed=0)
    names, codes = np.unique(groups.astype(str), return_inverse=True)
    splits = list(PredefinedSplit(codes).split())
    assert [f.id for f in folds.folds] == [str(name) for name in names]
    for fold, (train, test) in zip(folds.folds, splits, strict=True):
        np.testing.assert_array_equal(fold.train, train)
        np.testing.assert_array_equal(fold.test, test)
