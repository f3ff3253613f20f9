"""Data sets already in memory: ``(X, y)`` array-likes and pandas DataFrames.

pandas is optional: it is never imported here; a DataFrame is recognised by
its type's module and read through its own methods.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, TypeGuard

import numpy as np

from pipeline.errors import InputError

from .dataset import Dataset
from .encoding import Encoding, TextColumn
from .load import dataset_from_arrays

log = logging.getLogger(__name__)

__all__ = ["dataset_from_frame", "dataset_from_pair", "is_frame", "is_pair"]


def is_frame(value: Any) -> bool:
    """A pandas DataFrame, recognised without importing pandas."""
    kind = type(value)
    return kind.__name__ == "DataFrame" and kind.__module__.split(".")[0] == "pandas"


def is_pair(value: Any) -> TypeGuard[tuple[Any, Any]]:
    return isinstance(value, tuple) and len(value) == 2


def dataset_from_pair(pair: tuple[Any, Any], source: str = "<arrays>") -> Dataset:
    """``(X, y)``: features as a 2-D array-like, labels of any type (sorted unique: the classes)."""
    X, y = pair
    if is_frame(X):
        features, encoding = _frame_features(X, source)
        return _named(dataset_from_arrays(features, _labels(y), source), X, encoding=encoding)
    return dataset_from_arrays(X, _labels(y), source)


def dataset_from_frame(
    frame: Any,
    label: str | int | None,
    source: str = "<DataFrame>",
    drop: Sequence[str | int] = (),
    keep: Sequence[str | int] = (),
    categorical: str = "onehot",
) -> Dataset:
    """A DataFrame whose column ``label`` (name or 0-based position; default the last) holds
    the labels and every other column (but ``drop``, or only ``keep``) a feature: numbers,
    or text (string, object or category columns), one-hot encoded unless ``categorical``
    is ``error``."""
    columns = [str(c) for c in frame.columns]
    if len(columns) < 2:
        raise InputError(f"{source}: needs feature columns and a label column; it has {columns}")
    if label is None:
        at = len(columns) - 1
    elif isinstance(label, str) and label in columns:
        at = columns.index(label)
    elif isinstance(label, int) and -len(columns) <= label < len(columns):
        at = label % len(columns)
    else:
        raise InputError(
            f"{source}: label {label!r} is not a column ({', '.join(map(repr, columns))}); "
            "give a column name or a 0-based position"
        )
    chosen = {
        _position(c, columns, source, "`features`" if keep else "`drop`") for c in keep or drop
    }
    if keep:
        if at in chosen:
            raise InputError(f"{source}: `features` names the label column {columns[at]!r}")
        features = frame.iloc[:, sorted(chosen)]
    else:
        features = frame.iloc[:, [i for i in range(len(columns)) if i != at and i not in chosen]]
    labels = frame.iloc[:, at]
    X, encoding = _frame_features(features, source, categorical)
    dataset = dataset_from_arrays(X, _labels(labels), source)
    return _named(dataset, features, label_name=columns[at], encoding=encoding)


def _position(column: str | int, columns: list[str], source: str, option: str) -> int:
    if isinstance(column, str) and column in columns:
        return columns.index(column)
    if isinstance(column, int) and 0 <= column < len(columns):
        return column
    raise InputError(
        f"{source}: {option} {column!r} is not a column ({', '.join(map(repr, columns))})"
    )


def _frame_features(
    frame: Any, source: str, categorical: str = "onehot"
) -> tuple[np.ndarray[Any, Any], Encoding | None]:
    """The features as floats, text columns one-hot encoded (see :mod:`stages.encoding`)."""
    text = [str(name) for name, dtype in frame.dtypes.items() if dtype.kind not in "biuf"]
    if text and categorical == "error":
        name = text[0]
        raise InputError(
            f"{source}: column {name!r} holds {frame[name].dtype} values, not numbers; "
            "convert it to numbers or leave it out (without categorical='error' it is "
            "one-hot encoded)"
        )
    columns = [str(c) for c in frame.columns]
    numeric = frame[[c for c in frame.columns if str(c) not in text]]
    numbers = np.asarray(numeric.to_numpy(dtype=np.float64, na_value=np.nan))
    if not text:
        return numbers, None
    cells = []
    for name in text:
        values = frame[name]
        if values.isna().any():
            row = int(np.flatnonzero(values.isna().to_numpy())[0])
            raise InputError(
                f"{source}: row {row} of text column {name!r} is missing; give every row a "
                "category, or leave the column out"
            )
        cells.append([str(v).strip() for v in values.tolist()])
    encoding = Encoding(
        tuple(columns),
        tuple(TextColumn(n, tuple(sorted(set(c)))) for n, c in zip(text, cells, strict=True)),
    )
    log.warning("%s: %s", source, encoding.notice())
    return encoding.encode(numbers, cells), encoding


def _labels(y: Any) -> list[Any]:
    values = np.asarray(getattr(y, "to_numpy", lambda: y)())
    if values.ndim != 1:
        raise InputError(f"y: labels must be one value per row, got shape {values.shape}")
    return list(values.tolist())


def _named(
    dataset: Dataset,
    frame: Any,
    label_name: str | None = None,
    encoding: Encoding | None = None,
) -> Dataset:
    from dataclasses import replace

    names = encoding.feature_names if encoding else [str(c) for c in frame.columns]
    return replace(dataset, feature_names=names, label_name=label_name, encoding=encoding)
