"""The labelled data set every stage works on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline.errors import InputError

from .encoding import Encoding

__all__ = ["Dataset"]


@dataclass(frozen=True)
class Dataset:
    """Features as one float64 matrix, labels as integer codes into ``classes``.

    ``groups`` holds the values of a predefined-fold column, when one was read;
    ``label_name`` is the label column's header name, when the file had one;
    ``other_columns`` names the file's columns that are neither features nor the
    label (left out with ``--drop``, or the fold column). ``encoding`` says how
    text feature columns were one-hot encoded into ``X`` (None: all numeric).
    """

    X: npt.NDArray[np.float64]
    y: npt.NDArray[np.intp]
    classes: list[str]
    source: str
    feature_names: list[str] = field(default_factory=list)
    groups: npt.NDArray[Any] | None = None
    label_name: str | None = None
    other_columns: list[str] = field(default_factory=list)
    encoding: Encoding | None = None

    def __post_init__(self) -> None:
        if np.ndim(self.X) != 2 or np.ndim(self.y) != 1 or len(self.y) != len(self.X):
            raise InputError(
                f"{self.source}: a Dataset needs 2-D X and 1-D y of as many rows, "
                f"got X {np.shape(self.X)} and y {np.shape(self.y)}"
            )
        if len(self.y) and not 0 <= int(np.min(self.y)) <= int(np.max(self.y)) < len(self.classes):
            raise InputError(
                f"{self.source}: y holds class codes outside 0..{len(self.classes) - 1}; "
                "each code indexes classes"
            )

    @property
    def rows(self) -> int:
        return int(self.X.shape[0])

    @property
    def features(self) -> int:
        return int(self.X.shape[1])

    def describe(self) -> dict[str, Any]:
        """The ``dataset`` block of the results JSON."""
        return {
            "source": self.source,
            "rows": self.rows,
            "features": self.features,
            "classes": list(self.classes),
        }
