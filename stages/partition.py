"""Cross-validation folds, equal to scikit-learn's splitters.

``kfold:5 --seed 0`` is exactly ``StratifiedKFold(5, shuffle=True,
random_state=0)``, ``holdout:F`` is a stratified ``train_test_split``, ``loo``
is ``LeaveOneOut`` and ``column:NAME`` is ``PredefinedSplit`` over the sorted
distinct values of that column, so anyone can check our folds against theirs.
The splitters are scikit-learn's, written out (see the comment above them)
with the same ``np.random.RandomState`` calls in the same order and the same
errors.
Every named kind tests each row at most once and trains on the complement of
the fold, which lets the planner describe a fold by one integer per row and
merge tiny folds. Splits given as ``(train, test)`` index pairs (any
scikit-learn splitter, as ``KNNSearchCV`` takes them) may overlap and leave
rows out; their folds carry explicit training rows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from pipeline.errors import InputError

from .dataset import Dataset

__all__ = [
    "CvSpec",
    "Fold",
    "Folds",
    "make_folds",
    "parse_cv",
    "stratified_holdout",
    "stratified_kfold_test_folds",
]

CvKind = Literal["kfold", "holdout", "loo", "column", "splits"]
_EXAMPLE = "use kfold:5, holdout:0.2, loo or column:NAME"


@dataclass(frozen=True)
class CvSpec:
    """A parsed ``--cv`` value, or ``(train, test)`` index pairs (kind ``splits``)."""

    kind: CvKind
    n_splits: int = 0
    test_size: float = 0.0
    column: str = ""
    splits: tuple[tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]], ...] = ()

    def __str__(self) -> str:
        return {
            "kfold": f"kfold:{self.n_splits}",
            "holdout": f"holdout:{self.test_size}",
            "loo": "loo",
            "column": f"column:{self.column}",
            "splits": f"splits:{len(self.splits)}",
        }[self.kind]

    @classmethod
    def from_splits(cls, splits: Iterable[tuple[Sequence[int], Sequence[int]]]) -> CvSpec:
        """Predefined ``(train, test)`` row-index pairs, as a scikit-learn splitter yields."""
        pairs = []
        for number, pair in enumerate(splits):
            try:
                train, test = pair
                arrays = (np.asarray(train), np.asarray(test))
            except (TypeError, ValueError):
                raise InputError(
                    f"`cv`: split {number} is not a (train, test) pair of index arrays"
                ) from None
            for name, array in zip(("train", "test"), arrays, strict=True):
                if array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
                    raise InputError(
                        f"`cv`: the {name} part of split {number} is not a 1-D array of row indices"
                    )
            pairs.append(tuple(a.astype(np.intp) for a in arrays))
        if not pairs:
            raise InputError("`cv`: no splits given; give at least one (train, test) pair")
        return cls("splits", n_splits=len(pairs), splits=tuple(pairs))  # type: ignore[arg-type]


def parse_cv(spec: str) -> CvSpec:
    """Parse ``kfold:N``, ``holdout:F``, ``loo`` or ``column:NAME``."""
    text = spec.strip()
    if text.lower() == "loo":
        return CvSpec("loo")
    kind, sep, arg = text.partition(":")
    kind = kind.lower()
    if kind == "kfold" and sep:
        if not re.fullmatch(r"\d{1,9}", arg.strip()):
            raise InputError(f"`cv`: {spec[:40]!r} needs a whole number of folds; e.g. kfold:5")
        n = int(arg)
        if n < 2:
            raise InputError(f"`cv`: {spec!r} needs at least 2 folds; e.g. kfold:5")
        return CvSpec("kfold", n_splits=n)
    if kind == "holdout" and sep:
        try:
            fraction = float(arg)
        except ValueError:
            fraction = float("nan")
        if not 0.0 < fraction < 1.0:
            raise InputError(
                f"`cv`: {spec!r} needs a test fraction between 0 and 1; e.g. holdout:0.2"
            )
        return CvSpec("holdout", test_size=fraction)
    if kind == "column" and sep and arg.strip():
        return CvSpec("column", column=arg.strip())
    raise InputError(f"`cv`: {spec!r} is not a cross-validation scheme; {_EXAMPLE}")


@dataclass(frozen=True)
class Fold:
    """Row indices (sorted) of one fold's training and test sets."""

    id: str
    train: npt.NDArray[np.intp]
    test: npt.NDArray[np.intp]


@dataclass(frozen=True)
class Folds:
    """All folds, plus ``fold_of_row``: the fold that tests each row (-1: training only).

    ``disjoint`` folds test each row at most once and train on all other rows
    (every named kind); only then does ``fold_of_row`` say everything about a fold.
    """

    kind: CvKind
    seed: int
    folds: list[Fold]
    fold_of_row: npt.NDArray[np.int32]
    disjoint: bool = True

    def describe(self) -> dict[str, Any]:
        """The ``cv`` block of the results JSON."""
        return {
            "kind": self.kind,
            "seed": self.seed,
            "folds": [
                {"id": f.id, "train_rows": int(f.train.size), "test_rows": int(f.test.size)}
                for f in self.folds
            ],
        }

    @property
    def smallest_train(self) -> int:
        return min(int(f.train.size) for f in self.folds)

    @property
    def single_rows(self) -> bool:
        """Every fold tests one row (leave-one-out): per-fold F1 or AUC mean nothing, so
        scores are also taken over all out-of-fold predictions at once (``pooled_``)."""
        return len(self.folds) > 1 and all(f.test.size == 1 for f in self.folds)


def make_folds(dataset: Dataset, cv: CvSpec, seed: int = 0) -> Folds:
    """Split ``dataset`` as ``cv`` says; raise :class:`InputError` when it cannot be done."""
    if len(dataset.classes) < 2 or _at_most_one_value(dataset.y):
        raise InputError(
            f"{dataset.source}: the labels hold a single class ({dataset.classes[0]!r}); "
            "a classifier needs at least two"
        )
    n = dataset.rows
    splits: list[tuple[str, Any, Any]]
    try:
        if cv.kind == "kfold":
            if cv.n_splits > n:
                raise InputError(
                    f"`cv` kfold:{cv.n_splits}: more folds than the {n} rows; use fewer folds"
                )
            # a class smaller than n_splits (scikit-learn warns) is missing from some folds
            test_folds = stratified_kfold_test_folds(dataset.y, cv.n_splits, seed)
            splits = [
                (str(i), np.flatnonzero(test_folds != i), np.flatnonzero(test_folds == i))
                for i in range(cv.n_splits)
            ]
        elif cv.kind == "holdout":
            train, test = stratified_holdout(dataset.y, cv.test_size, seed)
            splits = [("0", train, test)]
        elif cv.kind == "loo":
            splits = _leave_one_out(n)
        elif cv.kind == "splits":
            splits = _given_splits(cv, n)
        else:
            splits = _column_splits(dataset, cv.column)
    except ValueError as error:
        reason = str(error)
        if len(reason) > 300:  # scikit-learn lists every class that is too small
            reason = reason[:300].rsplit(" ", 1)[0] + " ..."
        raise InputError(f"`cv` {cv}: cannot split {dataset.source}: {reason}") from None
    folds = [
        Fold(fid, np.sort(tr).astype(np.intp), np.sort(te).astype(np.intp))
        for fid, tr, te in splits
    ]
    fold_of_row = np.full(n, -1, dtype=np.int32)
    tested = np.zeros(n, dtype=np.intp)
    for number, fold in enumerate(folds):
        fold_of_row[fold.test] = number
        tested[fold.test] += 1
    empty = [f.id for f in folds if f.train.size == 0 or f.test.size == 0]
    if empty:
        raise InputError(
            f"`cv` {cv}: fold {empty[0]!r} has no training or no test rows; use fewer folds"
        )
    disjoint = cv.kind != "splits" or (
        bool((tested <= 1).all()) and all(f.train.size + f.test.size == n for f in folds)
    )
    return Folds(kind=cv.kind, seed=seed, folds=folds, fold_of_row=fold_of_row, disjoint=disjoint)


def _at_most_one_value(y: npt.NDArray[np.intp]) -> bool:
    """``np.unique(y).size < 2``, without the import of ``numpy.ma`` that makes."""
    return y.size == 0 or bool((y == y[0]).all())


def _given_splits(cv: CvSpec, n: int) -> list[tuple[str, Any, Any]]:
    splits = []
    for number, (train, test) in enumerate(cv.splits):
        for name, rows in (("train", train), ("test", test)):
            if rows.size and (rows.min() < 0 or rows.max() >= n):
                raise ValueError(f"the {name} rows of split {number} are not all in 0..{n - 1}")
            if np.unique(rows).size != rows.size:
                raise ValueError(f"the {name} rows of split {number} name a row twice")
        if np.intersect1d(train, test).size:
            raise ValueError(f"split {number} tests rows it also trains on")
        splits.append((str(number), train, test))
    return splits


def _column_splits(dataset: Dataset, column: str) -> list[tuple[str, Any, Any]]:
    if dataset.groups is None:
        raise InputError(f"`cv` column:{column}: the data set has no such column")
    values = np.asarray([str(v) for v in dataset.groups], dtype=object)
    lowered = {v.lower() for v in values}
    if lowered <= {"train", "test"}:
        if lowered != {"train", "test"}:
            raise InputError(
                f"`cv` column:{column}: the column holds only {lowered.pop()!r}; "
                "mark some rows 'train' and some 'test'"
            )
        is_test = np.array([v.lower() == "test" for v in values])
        return [("test", np.flatnonzero(~is_test), np.flatnonzero(is_test))]
    names, codes = np.unique(values.astype(str), return_inverse=True)
    if names.size < 2:
        raise InputError(
            f"`cv` column:{column}: the column holds one value; it needs at least two folds"
        )
    # PredefinedSplit(codes): one test fold per code, in order, trained on every other row
    return [
        (str(name), np.flatnonzero(codes != i), np.flatnonzero(codes == i))
        for i, name in enumerate(names)
    ]


# ---------------------------------------------------------------------------- the splitters
# scikit-learn's splitters, by hand: importing scikit-learn costs about a second of
# start-up, more than the whole Iris tuning. Each follows scikit-learn's code
# (sklearn/model_selection/_split.py) step by step, with its errors' wording;
# tests/stages/test_splitters_equal_sklearn.py holds them equal to it.


def stratified_kfold_test_folds(y: npt.ArrayLike, n_splits: int, seed: int) -> npt.NDArray[np.intc]:
    """The fold that tests each row: ``StratifiedKFold(n_splits, shuffle=True,
    random_state=seed)``'s ``_make_test_folds(X, y)``.

    Classes are numbered in order of first appearance; each fold's share of a
    class is dealt round-robin over the sorted class numbers, and each class's
    fold numbers are then shuffled, class by class, by one ``RandomState(seed)``.
    """
    labels = np.asarray(y).ravel()
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    _, appearance = np.unique(first, return_inverse=True)
    encoded = appearance[inverse.ravel()]
    n_classes = first.size
    counts = np.bincount(encoded, minlength=n_classes)
    if np.all(n_splits > counts):
        raise ValueError(
            f"n_splits={n_splits} cannot be greater than the number of members in each class."
        )
    order = np.sort(encoded)
    allocation = np.asarray(
        [np.bincount(order[i::n_splits], minlength=n_classes) for i in range(n_splits)]
    )
    rng = np.random.RandomState(seed)
    test_folds = np.empty(labels.size, dtype=np.intc)
    # the rows of each class in row order: test_folds[encoded == k], without n_classes passes
    rows_of_class = np.split(np.argsort(encoded, kind="stable"), np.cumsum(counts)[:-1])
    for k in range(n_classes):
        folds_for_class = np.arange(n_splits).repeat(allocation[:, k])
        rng.shuffle(folds_for_class)
        test_folds[rows_of_class[k]] = folds_for_class
    return test_folds


def stratified_holdout(
    y: npt.ArrayLike, test_size: float, seed: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """``train_test_split(rows, test_size=test_size, stratify=y, random_state=seed)``:
    the training and test rows, in scikit-learn's (shuffled) order.

    That is the first split of ``StratifiedShuffleSplit``: each class's share
    of the training and the test rows by ``_approximate_mode``, then a
    permutation of each class's rows, then of each set.
    """
    labels = np.asarray(y).ravel()
    n = labels.size
    n_test = math.ceil(test_size * n)
    n_train = n - n_test
    if n_train == 0:
        raise ValueError(
            f"With n_samples={n}, test_size={test_size} and train_size=None, the "
            "resulting train set will be empty. Adjust any of the "
            "aforementioned parameters."
        )
    classes, class_of_row, class_counts = np.unique(labels, return_inverse=True, return_counts=True)
    n_classes = classes.shape[0]
    if np.min(class_counts) < 2:
        too_few_classes = classes[class_counts < 2].tolist()
        raise ValueError(
            "The least populated classes in y have only 1 member, which is too few. "
            "The minimum number of groups for any class cannot be less than 2. "
            f"Classes with too few members are: {too_few_classes}"
        )
    if n_train < n_classes:
        raise ValueError(
            f"The train_size = {n_train} should be greater or equal to the number of "
            f"classes = {n_classes}"
        )
    if n_test < n_classes:
        raise ValueError(
            f"The test_size = {n_test} should be greater or equal to the number of "
            f"classes = {n_classes}"
        )
    class_indices = np.split(
        np.argsort(class_of_row.ravel(), kind="stable"), np.cumsum(class_counts)[:-1]
    )
    rng = np.random.RandomState(seed)
    n_i = _approximate_mode(class_counts, n_train, rng)
    t_i = _approximate_mode(class_counts - n_i, n_test, rng)
    train: list[npt.NDArray[np.intp]] = []
    test: list[npt.NDArray[np.intp]] = []
    for i in range(n_classes):
        permutation = rng.permutation(class_counts[i])
        shuffled = class_indices[i].take(permutation, mode="clip")
        train.append(shuffled[: n_i[i]])
        test.append(shuffled[n_i[i] : n_i[i] + t_i[i]])
    return (
        rng.permutation(np.concatenate(train)).astype(np.intp),
        rng.permutation(np.concatenate(test)).astype(np.intp),
    )


def _approximate_mode(
    class_counts: npt.NDArray[np.intp], n_draws: int, rng: np.random.RandomState
) -> npt.NDArray[np.intp]:
    """scikit-learn's ``_approximate_mode``: ``n_draws`` rows shared out over the
    classes in proportion, the rounding's leftovers to the largest remainders, ties
    broken by ``rng.choice`` (the same draws, in the same order)."""
    continuous = class_counts / class_counts.sum() * n_draws
    floored: npt.NDArray[np.float64] = np.floor(continuous)
    need_to_add = int(n_draws - floored.sum())
    if need_to_add > 0:
        remainder = continuous - floored
        values = np.sort(np.unique(remainder))[::-1]
        for value in values:
            (inds,) = np.where(remainder == value)
            add_now = min(len(inds), need_to_add)
            inds = rng.choice(inds, size=add_now, replace=False)
            floored[inds] += 1
            need_to_add -= add_now
            if need_to_add == 0:
                break
    return floored.astype(np.intp)


def _leave_one_out(n: int) -> list[tuple[str, Any, Any]]:
    """``LeaveOneOut().split``: row ``i`` tested alone, trained on every other row."""
    if n <= 1:
        raise ValueError(f"Cannot perform LeaveOneOut with n_samples={n}.")
    rows = np.arange(n)
    return [(str(i), np.delete(rows, i), rows[i : i + 1]) for i in range(n)]
