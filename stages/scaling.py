"""Feature scaling fitted on training rows only: scikit-learn's three scalers, by hand.

Scaling is searched like a metric (``--scale none,standard,minmax,robust``):
each fold fits its scaler on its own training rows and applies it to its test
rows, as ``make_pipeline(scaler, KNeighborsClassifier())`` does inside a
cross-validation, so no test row leaks into training.

Written here rather than calling scikit-learn's scalers because pool workers
do not import scikit-learn (a second of start-up each); the arithmetic
follows theirs: ``StandardScaler`` ``(x - mean) / std``, ``MinMaxScaler``
``x * scale + min`` with ``scale = 1 / (max - min)``, ``RobustScaler``
``(x - median) / (q75 - q25)``; a column whose std, range or IQR is 0 is
divided by 1 (their ``_handle_zeros_in_scale``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline.errors import InputError

__all__ = ["SCALES", "FittedScale", "fit_scale", "sklearn_scaler"]

SCALES = ("none", "standard", "minmax", "robust")
"""Scalings the search can try; ``none`` leaves the features as they are."""

_SKLEARN = {"standard": "StandardScaler", "minmax": "MinMaxScaler", "robust": "RobustScaler"}


@dataclass(frozen=True)
class FittedScale:
    """A fitted scaler: ``(x - first) / second``, or for ``minmax`` ``x * first + second``."""

    kind: str
    first: npt.NDArray[np.float64]
    second: npt.NDArray[np.float64]

    def apply(self, X: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        if self.kind == "minmax":
            return np.asarray(X * self.first + self.second, dtype=np.float64)
        return np.asarray((X - self.first) / self.second, dtype=np.float64)


def _nonzero(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """scikit-learn's ``_handle_zeros_in_scale``: a scale that is (nearly) 0 becomes 1."""
    values = values.copy()
    values[values < 10 * np.finfo(values.dtype).eps] = 1.0
    return values


def fit_scale(
    kind: str, X: npt.NDArray[np.float64], keep: slice | None = None
) -> FittedScale | None:
    """The scaler ``kind`` fitted on the rows of ``X`` (None for ``none``); the columns of
    ``keep`` (one-hot ones) pass through unchanged, as a ``ColumnTransformer`` scales only
    the numeric columns."""
    fitted = _fit(kind, X)
    if fitted is not None and keep is not None:
        first, second = fitted.first.copy(), fitted.second.copy()
        # x * 1 + 0 for minmax, (x - 0) / 1 otherwise: the same number, to the bit
        first[keep], second[keep] = (1.0, 0.0) if kind == "minmax" else (0.0, 1.0)
        fitted = FittedScale(kind, first, second)
    return fitted


def _fit(kind: str, X: npt.NDArray[np.float64]) -> FittedScale | None:
    if kind == "none":
        return None
    if kind == "standard":
        mean = X.mean(axis=0)
        variance = ((X - mean) ** 2).mean(axis=0)
        # scikit-learn's _is_constant_feature: a variance within rounding of 0 is 0
        eps = np.finfo(np.float64).eps
        constant = variance <= X.shape[0] * eps * variance + (X.shape[0] * mean * eps) ** 2
        scale = _nonzero(np.sqrt(variance))
        scale[constant] = 1.0
        return FittedScale(kind, mean, scale)
    if kind == "minmax":
        low, high = X.min(axis=0), X.max(axis=0)
        scale = 1.0 / _nonzero(high - low)
        return FittedScale(kind, scale, -low * scale)
    if kind == "robust":
        q25, median, q75 = np.percentile(X, [25.0, 50.0, 75.0], axis=0)
        return FittedScale(kind, median, _nonzero(q75 - q25))
    raise ValueError(f"unknown scaling {kind!r}")


def sklearn_scaler(kind: str) -> Any:
    """A new, unfitted scikit-learn scaler of ``kind`` (None for ``none``)."""
    if kind == "none":
        return None
    if kind not in _SKLEARN:
        raise InputError(f"scale: unknown {kind!r}; choose from {', '.join(SCALES)}")
    from sklearn import preprocessing

    return getattr(preprocessing, _SKLEARN[kind])()
