"""Cross-validation folds, built on scikit-learn's splitters.

``kfold:5 --seed 0`` is exactly ``StratifiedKFold(5, shuffle=True,
random_state=0)``, ``holdout:F`` is a stratified ``train_test_split``, ``loo``
is ``LeaveOneOut`` and ``column:NAME`` is ``PredefinedSplit`` over the sorted
distinct values of that column, so anyone can check our folds against theirs.
Every named kind tests each row at most once and trains on the complement of
the fold, which lets the planner describe a fold by one integer per row and
merge tiny folds. Splits given as ``(train, test)`` index pairs (any
scikit-learn splitter, as ``KNNSearchCV`` takes them) may overlap and leave
rows out; their folds carry explicit training rows.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from sklearn.model_selection import LeaveOneOut, PredefinedSplit, StratifiedKFold, train_test_split

from pipeline.errors import InputError

from .dataset import Dataset

__all__ = ["CvSpec", "Fold", "Folds", "make_folds", "parse_cv"]

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
                    f"cv: split {number} is not a (train, test) pair of index arrays"
                ) from None
            for name, array in zip(("train", "test"), arrays, strict=True):
                if array.ndim != 1 or (array.size and array.dtype.kind not in "iu"):
                    raise InputError(
                        f"cv: the {name} part of split {number} is not a 1-D array of row indices"
                    )
            pairs.append(tuple(a.astype(np.intp) for a in arrays))
        if not pairs:
            raise InputError("cv: no splits given; give at least one (train, test) pair")
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
            raise InputError(f"--cv: {spec[:40]!r} needs a whole number of folds; e.g. kfold:5")
        n = int(arg)
        if n < 2:
            raise InputError(f"--cv: {spec!r} needs at least 2 folds; e.g. kfold:5")
        return CvSpec("kfold", n_splits=n)
    if kind == "holdout" and sep:
        try:
            fraction = float(arg)
        except ValueError:
            fraction = float("nan")
        if not 0.0 < fraction < 1.0:
            raise InputError(
                f"--cv: {spec!r} needs a test fraction between 0 and 1; e.g. holdout:0.2"
            )
        return CvSpec("holdout", test_size=fraction)
    if kind == "column" and sep and arg.strip():
        return CvSpec("column", column=arg.strip())
    raise InputError(f"--cv: {spec!r} is not a cross-validation scheme; {_EXAMPLE}")


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
    if len(dataset.classes) < 2 or np.unique(dataset.y).size < 2:
        raise InputError(
            f"{dataset.source}: the labels hold a single class ({dataset.classes[0]!r}); "
            "a classifier needs at least two"
        )
    n = dataset.rows
    rows = np.arange(n)
    splits: list[tuple[str, Any, Any]]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore", UserWarning
            )  # "least populated class" is reported below
            if cv.kind == "kfold":
                if cv.n_splits > n:
                    raise InputError(
                        f"--cv kfold:{cv.n_splits}: more folds than the {n} rows; use fewer folds"
                    )
                splitter = StratifiedKFold(cv.n_splits, shuffle=True, random_state=seed)
                splits = [
                    (str(i), tr, te)
                    for i, (tr, te) in enumerate(splitter.split(dataset.X, dataset.y))
                ]
            elif cv.kind == "holdout":
                train, test = train_test_split(
                    rows, test_size=cv.test_size, stratify=dataset.y, random_state=seed
                )
                splits = [("0", train, test)]
            elif cv.kind == "loo":
                splits = [(str(i), tr, te) for i, (tr, te) in enumerate(LeaveOneOut().split(rows))]
            elif cv.kind == "splits":
                splits = _given_splits(cv, n)
            else:
                splits = _column_splits(dataset, cv.column, PredefinedSplit)
    except ValueError as error:
        reason = str(error)
        if len(reason) > 300:  # scikit-learn lists every class that is too small
            reason = reason[:300].rsplit(" ", 1)[0] + " ..."
        raise InputError(f"--cv {cv}: cannot split {dataset.source}: {reason}") from None
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
            f"--cv {cv}: fold {empty[0]!r} has no training or no test rows; use fewer folds"
        )
    disjoint = cv.kind != "splits" or (
        bool((tested <= 1).all()) and all(f.train.size + f.test.size == n for f in folds)
    )
    return Folds(kind=cv.kind, seed=seed, folds=folds, fold_of_row=fold_of_row, disjoint=disjoint)


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


def _column_splits(dataset: Dataset, column: str, splitter: Any) -> list[tuple[str, Any, Any]]:
    if dataset.groups is None:
        raise InputError(f"--cv column:{column}: the data set has no such column")
    values = np.asarray([str(v) for v in dataset.groups], dtype=object)
    lowered = {v.lower() for v in values}
    if lowered <= {"train", "test"}:
        if lowered != {"train", "test"}:
            raise InputError(
                f"--cv column:{column}: the column holds only {lowered.pop()!r}; "
                "mark some rows 'train' and some 'test'"
            )
        is_test = np.array([v.lower() == "test" for v in values])
        return [("test", np.flatnonzero(~is_test), np.flatnonzero(is_test))]
    names, codes = np.unique(values.astype(str), return_inverse=True)
    if names.size < 2:
        raise InputError(
            f"--cv column:{column}: the column holds one value; it needs at least two folds"
        )
    return [(str(names[i]), tr, te) for i, (tr, te) in enumerate(splitter(test_fold=codes).split())]
