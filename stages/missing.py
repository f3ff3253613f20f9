"""Missing feature values: refuse them, drop their rows, or impute per training fold.

Imputation is fitted on each fold's training rows only, never on the rows it
is tested on (what ``SimpleImputer`` inside a cross-validated pipeline does),
so the scores carry no leak from the test rows.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import numpy.typing as npt

from pipeline.errors import InputError, OptionError, option_name

from .dataset import Dataset

__all__ = ["MISSING_POLICIES", "drop_incomplete_rows", "fill", "fit_fill_values", "parse_missing"]

MISSING_POLICIES = ("error", "drop", "mean", "median")
log = logging.getLogger(__name__)


def parse_missing(spec: str) -> str:
    policy = spec.strip().lower()
    if policy not in MISSING_POLICIES:
        raise OptionError(
            "missing", f"unknown policy {spec!r}; choose from {', '.join(MISSING_POLICIES)}"
        )
    return policy


def drop_incomplete_rows(dataset: Dataset) -> Dataset:
    """The data set without the rows that miss a feature value (says how many went)."""
    complete = ~np.isnan(dataset.X).any(axis=1)
    dropped = int(dataset.rows - complete.sum())
    if dropped == 0:
        return dataset
    if not complete.any():
        raise InputError(
            f"{dataset.source}: every row misses a value, so `missing` drop leaves nothing; "
            "use `missing` mean or median"
        )
    log.warning(
        "%s drop: dropped %d of %d rows of %s that miss a value",
        option_name("missing"),
        dropped,
        dataset.rows,
        dataset.source,
    )
    groups = dataset.groups[complete] if dataset.groups is not None else None
    return dataclasses.replace(dataset, X=dataset.X[complete], y=dataset.y[complete], groups=groups)


def fit_fill_values(train: npt.NDArray[np.float64], strategy: str) -> npt.NDArray[np.float64]:
    """Per-column mean or median of the training rows, ignoring missing values."""
    present = ~np.isnan(train)
    empty = np.flatnonzero(~present.any(axis=0))
    if empty.size:
        raise InputError(
            f"feature {int(empty[0])} (0-based) has no value in a training fold, so it cannot "
            "be imputed; drop the column or use `missing` drop"
        )
    if strategy == "mean":
        return np.asarray(np.nanmean(train, axis=0), dtype=np.float64)
    if strategy == "median":
        return np.asarray(np.nanmedian(train, axis=0), dtype=np.float64)
    raise ValueError(f"unknown imputation strategy {strategy!r}")


def fill(X: npt.NDArray[np.float64], values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """A copy of ``X`` with each missing value replaced by its column's fill value."""
    missing = np.isnan(X)
    if not missing.any():
        return X
    filled = X.copy()
    filled[missing] = np.broadcast_to(values, X.shape)[missing]
    return filled
