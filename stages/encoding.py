"""Text feature columns, one-hot encoded: how raw columns become the numeric matrix.

A column of words (``red``, ``green``) has no distance between its values, so
each category becomes a 0/1 column of its own, as scikit-learn's
``OneHotEncoder`` makes them. The layout of the encoded matrix is
``ColumnTransformer``'s: the numeric columns first, in the input's order, then
each text column's categories in sorted order, so our matrix and the one a
scikit-learn pipeline builds hold the same values in the same columns.

The data set is encoded once with every category it holds; a fold that never
sees a category in its training rows treats it as unknown (all zeros), which
is what an encoder fitted on that training fold alone, with
``handle_unknown="ignore"``, does. A zero column adds nothing to any distance,
so the neighbours are the same as without it (see :func:`absent_categories`).

Written here rather than calling ``OneHotEncoder``: pool workers do not import
scikit-learn, and the encoding must also read the text cells of a CSV block
the prediction pipeline streams.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from pipeline.errors import InputError, option_name

__all__ = ["CATEGORICAL", "Encoding", "TextColumn", "absent_categories"]

CATEGORICAL = ("onehot", "error")
"""What to do with a text feature column: one-hot encode it, or refuse the data."""


@dataclass(frozen=True)
class TextColumn:
    """A text feature column and its categories, sorted as ``OneHotEncoder`` sorts them."""

    name: str
    categories: tuple[str, ...]


@dataclass(frozen=True)
class Encoding:
    """The raw feature columns (``columns``, in the input's order) and which hold text."""

    columns: tuple[str, ...]
    text: tuple[TextColumn, ...]

    @property
    def numeric_columns(self) -> list[str]:
        text = {t.name for t in self.text}
        return [c for c in self.columns if c not in text]

    @property
    def numeric_positions(self) -> list[int]:
        """Positions (in ``columns``) of the numeric columns."""
        text = {t.name for t in self.text}
        return [i for i, c in enumerate(self.columns) if c not in text]

    @property
    def text_positions(self) -> list[int]:
        return [self.columns.index(t.name) for t in self.text]

    @property
    def one_hot(self) -> slice:
        """The encoded matrix's one-hot columns."""
        start = len(self.columns) - len(self.text)
        return slice(start, start + sum(len(t.categories) for t in self.text))

    @property
    def feature_names(self) -> list[str]:
        """Names of the encoded matrix's columns: ``name=category`` for one-hot ones."""
        return self.numeric_columns + [f"{t.name}={c}" for t in self.text for c in t.categories]

    def encode(
        self, numeric: npt.NDArray[np.float64], text: Sequence[Sequence[str]]
    ) -> npt.NDArray[np.float64]:
        """The encoded matrix of rows given as their numeric columns and, per text column,
        their cells; a category the encoding does not know is all zeros."""
        parts = [np.asarray(numeric, dtype=np.float64).reshape(len(numeric), -1)]
        for column, cells in zip(self.text, text, strict=True):
            index = {category: i for i, category in enumerate(column.categories)}
            codes = np.array([index.get(cell, -1) for cell in cells], dtype=np.intp)
            block = np.zeros((len(cells), len(column.categories)))
            known = np.flatnonzero(codes >= 0)
            block[known, codes[known]] = 1.0
            parts.append(block)
        return np.hstack(parts) if len(parts) > 1 else parts[0]

    def encode_raw(self, rows: Any, where: str = "X") -> npt.NDArray[np.float64]:
        """Encode raw rows (a 2-D array-like of objects, one column per entry of
        ``columns``): numbers where the columns are numeric, text where they hold text."""
        raw = np.asarray(rows, dtype=object)
        if raw.ndim != 2 or raw.shape[1] != len(self.columns):
            raise InputError(
                f"{where}: samples of shape {raw.shape}, but the model reads "
                f"{len(self.columns)} columns ({', '.join(self.columns[:8])}); "
                "give one column per feature"
            )
        numeric = np.empty((raw.shape[0], len(self.numeric_positions)))
        for c, at in enumerate(self.numeric_positions):
            try:
                numeric[:, c] = raw[:, at].astype(np.float64)
            except (TypeError, ValueError):
                raise InputError(
                    f"{where}: column {self.columns[at]!r} must hold numbers; convert it"
                ) from None
        text = [[str(cell).strip() for cell in raw[:, at]] for at in self.text_positions]
        return self.encode(numeric, text)

    def describe(self) -> dict[str, Any]:
        """The JSON form kept in a model file."""
        return {
            "columns": list(self.columns),
            "text": [{"name": t.name, "categories": list(t.categories)} for t in self.text],
        }

    @classmethod
    def from_description(cls, description: Any) -> Encoding:
        columns = tuple(str(c) for c in description["columns"])
        text = tuple(
            TextColumn(str(t["name"]), tuple(str(c) for c in t["categories"]))
            for t in description["text"]
        )
        if any(t.name not in columns for t in text):
            raise ValueError("a text column that is not a column")
        return cls(columns, text)

    def notice(self) -> str:
        """One line naming the encoded columns, for standard error."""
        listed = ", ".join(f"{t.name!r} ({len(t.categories)} categories)" for t in self.text)
        return (
            f"one-hot encoding text columns {listed}; {option_name('categorical')} error "
            f"refuses text columns, {option_name('drop')} leaves them out"
        )


def absent_categories(
    encoding: Encoding | None, train_X: npt.NDArray[np.float64]
) -> npt.NDArray[np.intp]:
    """Encoded columns (indices into X) of categories no training row holds: a fold treats
    them as unknown, so its test rows must hold zeros there."""
    if encoding is None or not encoding.text:
        return np.empty(0, dtype=np.intp)
    one_hot = encoding.one_hot
    seen = train_X[:, one_hot].any(axis=0)
    return np.asarray(np.flatnonzero(~seen) + one_hot.start, dtype=np.intp)
