"""Missing values: refused by default, dropped, or imputed from each training fold only."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.impute import SimpleImputer
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline

from pipeline.errors import InputError
from pipeline.runner import StageFailed
from stages import Dataset, Tuning
from stages.load import parse_csv
from stages.missing import fit_fill_values

SKLEARN_METRIC = {
    "euclidean": "euclidean",
    "manhattan": "manhattan",
    "chebyshev": "chebyshev",
    "sorensen": "braycurtis",
}


def data_with_holes(rows: int = 120, features: int = 5, holes: int = 40) -> Dataset:
    rng = np.random.default_rng(3)
    X = np.abs(rng.normal(size=(rows, features)))
    y = rng.integers(0, 3, rows)
    X[y == 2, 1] += 1.5
    cells = rng.choice(rows * features, size=holes, replace=False)
    X.reshape(-1)[cells] = np.nan
    return Dataset(X=X, y=y.astype(np.intp), classes=["a", "b", "c"], source="holes")


@pytest.mark.parametrize(
    ("strategy", "metrics"),
    [
        ("mean", "euclidean,manhattan,chebyshev,sorensen"),
        # Medians give many rows the same value, which ties chebyshev distances;
        # the oracle only holds without ties.
        ("median", "euclidean,sorensen"),
    ],
)
async def test_imputation_matches_simple_imputer_fitted_per_training_fold(
    strategy: str, metrics: str
) -> None:
    """Leaking test rows into the fill values would break this equality."""
    data = data_with_holes()
    with ThreadPoolExecutor(2) as executor:
        result = await Tuning(
            data,
            k="1,2,5,9",
            weights="uniform,distance",
            metrics=metrics,
            missing=strategy,
            executor=executor,
        ).run()
    folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(data.X, data.y))
    for row in result.candidates:
        c = row.candidate
        expected = [
            make_pipeline(
                SimpleImputer(strategy=strategy),
                KNeighborsClassifier(
                    n_neighbors=c.k,
                    weights=c.weights,
                    algorithm="brute",
                    metric=SKLEARN_METRIC[c.metric],
                ),
            )
            .fit(data.X[train], data.y[train])
            .score(data.X[test], data.y[test])
            for train, test in folds
        ]
        assert row.fold_accuracy == pytest.approx(expected, abs=1e-12), c


async def test_drop_removes_only_incomplete_rows() -> None:
    data = data_with_holes()
    incomplete = int(np.isnan(data.X).any(axis=1).sum())
    with ThreadPoolExecutor(2) as executor:
        result = await Tuning(data, k="1,3", missing="drop", executor=executor).run()
    assert result.dataset["rows"] == data.rows - incomplete
    assert sum(f["test_rows"] for f in result.cv["folds"]) == data.rows - incomplete


async def test_drop_says_what_it_dropped_naming_the_parameter(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The library's warning names the parameter as a caller wrote it; the command line
    shows the flag (see the test below)."""
    data = data_with_holes()
    incomplete = int(np.isnan(data.X).any(axis=1).sum())
    with ThreadPoolExecutor(2) as executor, caplog.at_level("WARNING", logger="stages"):
        await Tuning(data, k="1,3", missing="drop", executor=executor).run()
    assert f"\nmissing drop: dropped {incomplete} of {data.rows} rows of holes" in (
        "\n" + "\n".join(r.getMessage() for r in caplog.records)
    )


def test_the_command_line_shows_warnings_with_its_flags(tmp_path: Path) -> None:
    data = tmp_path / "holes.csv"
    data.write_text("a,b,label\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(30)) + ",1,0\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "run",
            str(data),
            "--missing",
            "drop",
            "--k",
            "1",
            "--workers",
            "1",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"warning: --missing drop: dropped 1 of 31 rows of {data}" in done.stderr


async def test_missing_values_are_refused_by_default() -> None:
    with pytest.raises(StageFailed) as caught:
        await Tuning(data_with_holes(), k="1", executor=ThreadPoolExecutor(1)).run()
    error = caught.value.__cause__
    assert isinstance(error, InputError)
    assert "use missing drop, mean or median" in str(error)  # the library's name for it
    assert "use --missing drop" in error.named(lambda name: f"--{name}")  # the CLI's


@pytest.mark.parametrize("missing", ["error", "drop", "mean"])
async def test_an_infinite_value_in_memory_is_refused_with_its_place(missing: str) -> None:
    data = data_with_holes()
    X = np.nan_to_num(data.X, nan=1.0)
    X[2, 1] = -np.inf
    infinite = Dataset(X=X, y=data.y, classes=data.classes, source="in memory")
    with pytest.raises(StageFailed) as caught:
        await Tuning(infinite, k="1", missing=missing, executor=ThreadPoolExecutor(1)).run()
    assert isinstance(caught.value.__cause__, InputError)
    assert str(caught.value.__cause__) == (
        "in memory: row 2, column 1 is infinite; features must be finite numbers"
    )


def test_csv_missing_tokens_become_nan_only_when_allowed() -> None:
    raw = b"a,b,label\n1,,x\n2,NA,y\n3,?,x\n4,5,y\n"
    with pytest.raises(InputError, match=r"<csv>:2: column 'b' \(index 1\) is empty"):
        parse_csv(raw)
    data = parse_csv(raw, allow_missing=True)
    assert np.isnan(data.X[:3, 1]).all() and data.X[3, 1] == 5.0
    with pytest.raises(InputError, match=r"infinite|finite"):
        parse_csv(b"a,label\ninf,x\n1,y\n", allow_missing=True)


def test_a_column_empty_in_a_training_fold_is_a_clear_error() -> None:
    with pytest.raises(InputError, match=r"feature 1 \(0-based\) has no value in a training fold"):
        fit_fill_values(np.array([[1.0, np.nan], [2.0, np.nan]]), "median")


def test_an_unknown_policy_is_refused() -> None:
    with pytest.raises(InputError, match="missing: unknown"):
        Tuning("iris", missing="zero")


def _splits(rows: int) -> list[tuple[list[int], list[int]]]:
    half = rows // 2
    first, second = list(range(half)), list(range(half, rows))
    return [(first, second), (second, first)]


async def test_given_splits_refuse_dropping_rows_only_when_some_would_go() -> None:
    """Dropping rows renumbers them, so given (train, test) indices would name other rows;
    a data set with nothing to drop keeps its numbers and runs."""
    holes = data_with_holes()
    with pytest.raises(StageFailed) as caught:
        await Tuning(
            holes, k="1", cv=_splits(holes.rows), missing="drop", executor=ThreadPoolExecutor(1)
        ).run()
    error = caught.value.__cause__
    assert isinstance(error, InputError)
    assert "row indices given as cv would point at other rows" in str(error)
    assert "given as --cv would" in error.named(lambda name: f"--{name}")
    complete = Dataset(
        X=np.nan_to_num(holes.X, nan=1.0), y=holes.y, classes=holes.classes, source="complete"
    )
    options: dict[str, Any] = {"k": "1", "cv": _splits(complete.rows)}
    with ThreadPoolExecutor(1) as executor:
        dropped = await Tuning(complete, missing="drop", executor=executor, **options).run()
        kept = await Tuning(complete, executor=executor, **options).run()
    assert [c.to_dict() for c in dropped.candidates] == [c.to_dict() for c in kept.candidates]
