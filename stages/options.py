"""The options of a tuning run: one frozen object, validated once, describing itself once.

:meth:`TuningOptions.of` takes each option as the command line's text
(``k="1-39:2"``, ``metrics="euclidean,cosine"``) or as Python values
(``k=[1, 3, 5]``); errors name the option as the caller wrote it
(:class:`pipeline.errors.OptionError`: ``k: ...``), and the command line shows
them under its flags. :meth:`TuningOptions.describe` is what decides the
results: the results file's options and the checkpoint's fingerprint both come
from it. A new option is one field here, its parsing in :meth:`of`, and (if it
decides the results) a line in :meth:`describe`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.errors import OptionError

from .csv_text import CsvFormat
from .missing import parse_missing
from .neighbours import PRECISIONS
from .partition import CvSpec, parse_cv
from .score import SCORES
from .search_space import (
    METRICS,
    SearchSpace,
    k_values,
    parse_k,
    parse_metrics,
    parse_scales,
    parse_weights,
)

__all__ = ["TuningOptions"]

Columns = tuple[str | int, ...]


@dataclass(frozen=True)
class TuningOptions:
    """Every option of a tuning run but where it runs (pool, workers, events, checkpoint).

    Build it with :meth:`of`, which accepts text or values; the fields hold the
    parsed values.
    """

    space: SearchSpace
    cv: CvSpec
    scoring: str = "accuracy"
    seed: int = 0
    missing: str = "error"
    precision: str = "float64"
    label: str | int | None = None
    csv_format: CsvFormat = dataclasses.field(default_factory=CsvFormat)

    def __post_init__(self) -> None:
        if self.scoring not in SCORES:
            raise OptionError(
                "scoring", f"unknown {self.scoring!r}; choose from {', '.join(SCORES)}"
            )
        seed = self.seed
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
            raise OptionError("seed", f"{seed!r} is not a whole number from 0 to 4294967295")
        if self.precision not in PRECISIONS:
            raise OptionError(
                "precision",
                "choose float64 (exact, the default) or float32 "
                "(faster; distances rounded to about 7 digits)",
                value=str(self.precision),
            )

    @classmethod
    def of(
        cls,
        *,
        k: str | Sequence[int] = "1-39:2",
        metrics: str | Sequence[str] = METRICS,
        weights: str | Sequence[str] = ("uniform",),
        scale: str | Sequence[str] | None = None,
        cv: str | CvSpec | Iterable[tuple[Sequence[int], Sequence[int]]] = "kfold:5",
        scoring: str = "accuracy",
        seed: int = 0,
        missing: str = "error",
        precision: str = "float64",
        label: str | int | None = None,
        delimiter: str | None = None,
        header: bool | None = None,
        skip_rows: int = 0,
        drop: Sequence[str | int] = (),
        features: Sequence[str | int] = (),
        categorical: str = "onehot",
    ) -> TuningOptions:
        """The options from the command line's text forms or Python values.

        ``scale`` searches scalings fitted on each training fold (None: not
        searched, the features as they are); ``missing`` is the policy for
        missing feature values; ``label`` … ``categorical`` say how to read a
        CSV (see :class:`stages.csv_text.CsvFormat`).
        """
        space = SearchSpace(
            ks=parse_k(k) if isinstance(k, str) else k_values(k),
            metrics=parse_metrics(metrics) if isinstance(metrics, str) else tuple(metrics),
            weights=parse_weights(weights) if isinstance(weights, str) else tuple(weights),
            scales=parse_scales(scale) if isinstance(scale, str) else tuple(scale or ()),
        )
        csv_format = CsvFormat(
            delimiter=delimiter,
            header=header,
            skip_rows=skip_rows,
            drop=tuple(drop),
            keep=tuple(features),
            categorical=categorical,
        )
        return cls(
            space=space,
            cv=_cv_spec(cv),
            scoring=scoring,
            seed=seed,
            missing=parse_missing(missing),
            precision=precision,
            label=label,
            csv_format=csv_format,
        )

    def describe(self) -> dict[str, Any]:
        """The options that decide the results, as JSON values: what the results file
        records and what a checkpoint must match to be resumed.

        ``precision`` appears only when it is not the exact default, so float64
        runs describe themselves as they always have.
        """
        described: dict[str, Any] = {
            **self.space.describe(),
            "cv": str(self.cv),
            "seed": self.seed,
            "missing": self.missing,
        }
        if self.precision != "float64":
            described["precision"] = self.precision
        return described

    @property
    def impute_with(self) -> str | None:
        """The imputation the workers do (``mean``/``median``), if ``missing`` asks for one."""
        return self.missing if self.missing in ("mean", "median") else None

    @property
    def group_column(self) -> str | None:
        """The column that assigns the folds (``cv="column:NAME"``), read with the data."""
        return self.cv.column if self.cv.kind == "column" else None


def _cv_spec(cv: str | CvSpec | Iterable[tuple[Sequence[int], Sequence[int]]]) -> CvSpec:
    """A ``--cv`` text, a parsed one, or ``(train, test)`` row-index pairs (a list of a
    scikit-learn splitter's ``split``)."""
    if isinstance(cv, str):
        return parse_cv(cv)
    return cv if isinstance(cv, CvSpec) else CvSpec.from_splits(cv)


def data_source(data: Any) -> str:
    """How a run names its data in its parameters and events."""
    from .dataset import Dataset

    if isinstance(data, Dataset):
        return data.source
    if isinstance(data, str | os.PathLike):
        return os.fspath(data)
    return f"<{type(data).__name__}>"
