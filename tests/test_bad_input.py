"""Bad data gets exit status 2 and one clear line: what, where, how to fix. Never a traceback."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import InputError
from pipeline.runner import StageFailed
from stages import flow
from stages.cli import _refuse_swallowed_values, build_parser, main

CASES: dict[str, tuple[bytes | None, list[str], str]] = {
    # name: (file contents, or None for no file; extra options; expected fragment)
    "missing path": (None, [], "no such file"),
    "empty file": (b"", [], "the file is empty"),
    "only blank lines": (b"\n\n  \n", [], "the file is empty"),
    "header without rows": (b"a,b,label\n", [], "has a header but no data rows"),
    "ragged rows": (b"a,b,label\n1,2,x\n3,y\n", [], ":3: has 2 columns, expected 3"),
    "non-numeric cell": (
        b"a,b,label\n1,2,x\n3,abc,y\n",
        [],
        ":3: column 'b' (index 1) is 'abc', not a number",
    ),
    "nan cell": (
        b"a,b,label\n1,2,x\n3,nan,y\n",
        [],
        ":3: column 'b' (index 1) is 'nan', a missing value",
    ),
    "infinite cell": (b"a,b,label\n1,2,x\n3,inf,y\n", [], ":3: column 'b' (index 1) is 'inf'"),
    "empty cell": (b"a,b,label\n1,2,x\n3,,y\n", [], ":3: column 'b' (index 1) is empty"),
    "not utf-8": (b"a,b,label\n1,2,x\n3,4,\xff\xfe\n", [], ":3: bytes that are not UTF-8"),
    "single class": (b"a,b,label\n1,2,x\n3,4,x\n5,6,x\n", [], "a single class ('x')"),
    "unknown label column": (
        b"a,b,label\n1,2,x\n3,4,y\n",
        ["--label", "kind"],
        "--label 'kind' is not a column",
    ),
    "label index out of range": (
        b"a,b,label\n1,2,x\n3,4,y\n",
        ["--label", "7"],
        "--label 7 is out of range",
    ),
    "unknown fold column": (
        b"a,b,label\n1,2,x\n3,4,y\n",
        ["--cv", "column:split"],
        "'split' is not a column",
    ),
    "empty label": (b"a,b,label\n1,2,x\n3,4,\n", [], ":3: column 'label' (the label) is empty"),
    "k larger than a training fold": (
        b"a,label\n" + b"".join(b"%d,%s\n" % (i, b"xy"[i % 2 : i % 2 + 1]) for i in range(20)),
        ["--k", "1-17"],
        "use k <= 16",
    ),
    "more folds than rows": (b"a,label\n1,x\n2,y\n3,x\n", ["--cv", "kfold:5"], "--cv"),
    "features too large for float32 distances": (
        b"a,b,label\n"
        + b"".join(b"%de30,%de29,%s\n" % (i, -i, b"xy"[i % 2 : i % 2 + 1]) for i in range(20)),
        ["--precision", "float32", "--metrics", "euclidean", "--k", "3"],
        "feature values reach 1.9e+31, beyond the 6.52e+18 up to which euclidean distances "
        "over 2 features stay within float32; choose --precision float64",
    ),
    "features too large for a high minkowski power": (
        b"a,label\n" + b"".join(b"%de20,%s\n" % (i, b"xy"[i % 2 : i % 2 + 1]) for i in range(20)),
        ["--metrics", "manhattan,minkowski:40", "--k", "3"],
        "minkowski:40 distances over 1 features stay within float64; choose another metric, "
        "or scale the features with --scale",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_data_is_one_clear_line_and_exit_2(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    contents, options, fragment = CASES[name]
    path = tmp_path / "data.csv"
    if contents is not None:
        path.write_bytes(contents)
    status = main(["run", str(path), "--quiet", "--workers", "1", *options])
    captured = capsys.readouterr()
    assert status == 2, captured
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert fragment in lines[0]
    assert str(path) in lines[0] or fragment.startswith("--")
    assert "Traceback" not in captured.err


def test_a_directory_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(tmp_path), "--quiet"]) == 2
    assert "is a directory" in capsys.readouterr().err


@pytest.mark.parametrize("workers", ["0", "-1", "two", "100000"])
def test_senseless_worker_counts_are_refused(
    workers: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["run", "--workers", workers])
    assert exited.value.code == 2
    assert "--workers" in capsys.readouterr().err


@pytest.mark.parametrize(
    "option", ["--cv", "--workers", "--out", "--missing", "--log-to", "--seed", "--k"]
)
def test_a_double_dash_given_as_a_value_is_refused(
    option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """argparse turns ``--cv=--`` into an empty list (3.11) or keeps ``--``; neither may run."""
    with pytest.raises(SystemExit) as exited:
        main(["run", "--quiet", f"{option}=--"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{option}: '--' is not a value" in err


def test_a_double_dash_kept_as_the_value_is_refused_too(capsys: pytest.CaptureFixture[str]) -> None:
    """Newer Pythons keep ``--out=--`` as the string ``--``: refused the same way."""
    parser = build_parser()
    args = parser.parse_args(["run"])
    args.out = "--"
    with pytest.raises(SystemExit) as exited:
        _refuse_swallowed_values(parser, args)
    assert exited.value.code == 2
    assert "--out: '--' is not a value" in capsys.readouterr().err


def test_sorensen_on_negative_data_runs_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "neg.csv"
    rows = [f"{(-1) ** i * i / 7:.4f},{i % 3},{'xy'[i % 2]}" for i in range(30)]
    path.write_text("a,b,label\n" + "\n".join(rows) + "\n")
    status = main(
        ["run", str(path), "--quiet", "--workers", "1", "--k", "1,3", "--metrics", "sorensen"]
    )
    captured = capsys.readouterr()
    assert status == 0
    assert "negative feature values; sorensen" in captured.err
    assert "k-NN leaderboard" in captured.out


@pytest.mark.parametrize(
    ("options", "parameter", "message"),
    [
        ({"k": [1.5]}, "k", "1.5 is not a whole number"),
        ({"k": [True]}, "k", "True is not a whole number"),
        ({"metrics": ["cosine", "cosine"]}, "metrics", "cosine, cosine names one twice"),
        ({"weights": ["uniform", "uniform"]}, "weights", "uniform, uniform names one twice"),
        ({"seed": -1}, "seed", "-1 is not a whole number"),
        ({"k": "１２"}, "k", "'１２' is not a whole number"),  # noqa: RUF001 (full-width digits)
        ({"skip_rows": -1}, "skip_rows", "give 0 or more lines"),
        ({"executor": "threads"}, "executor", "'threads' is not a concurrent.futures.Executor"),
        ({"dask": "local:2", "workers": 2}, "dask", "not both"),
    ],
)
def test_the_api_refuses_what_the_command_line_refuses_naming_its_parameter(
    options: dict[str, object], parameter: str, message: str
) -> None:
    """The library names the parameter as the caller wrote it; the CLI shows its flag."""
    from pipeline.errors import OptionError
    from stages import Tuning
    from stages.cli import flag_of

    with pytest.raises(OptionError) as caught:
        Tuning("iris", **options)  # type: ignore[arg-type]
    assert caught.value.parameter == parameter
    assert str(caught.value).startswith(f"{parameter}")
    assert message in str(caught.value)
    assert "--" not in str(caught.value).split(":")[0]
    assert caught.value.named(flag_of).startswith(flag_of(parameter))


def test_a_message_naming_another_option_names_it_by_flag_on_the_command_line(
    tmp_path: Path,
) -> None:
    from pipeline.errors import OptionError
    from stages import Tuning
    from stages.cli import flag_of

    checkpoint = tmp_path / "run.ckpt"
    checkpoint.write_text("")
    with pytest.raises(OptionError) as caught:
        Tuning("iris", checkpoint=checkpoint)
    assert f"checkpoint {checkpoint}: the file exists; add resume to" in str(caught.value)
    assert "add --resume to" in caught.value.named(flag_of)
    assert caught.value.named(flag_of).startswith(f"--checkpoint {checkpoint}:")


@pytest.mark.parametrize(
    ("text", "options", "library", "command_line"),
    [
        ("a,b,y\n1,2,p\n3,4,q\n", {"label": "nope"}, "label 'nope'", "--label 'nope'"),
        ("a,b,y\n1,,p\n3,4,q\n", {}, "use missing drop", "use --missing drop"),
        ("a;b;y\n1;2;p\n3;4;q\n", {"delimiter": ","}, "delimiter ';'", "--delimiter ';'"),
        ("a,b,y\n1,2,p\n3,4,q\n", {"features": ["y"]}, "features names", "--features names"),
        ("a,b,y\n1,x,p\n3,4,q\n", {"categorical": "error"}, "use label to", "use --label to"),
        ("1,2,p\n3,4,q\n", {"cv": "column:f", "header": False}, "cv column:NAME", "--cv column"),
    ],
)
def test_data_errors_name_the_parameter_in_the_library_and_the_flag_on_the_command_line(
    tmp_path: Path, text: str, options: dict[str, object], library: str, command_line: str
) -> None:
    from stages import Tuning
    from stages.cli import flag_of

    data = tmp_path / "data.csv"
    data.write_text(text)
    with pytest.raises(StageFailed) as caught:
        asyncio.run(Tuning(str(data), k="1", executor=ThreadPoolExecutor(1), **options).run())
    error = caught.value.error
    assert isinstance(error, InputError)
    assert library in str(error) and "--" not in str(error)
    assert command_line in error.named(flag_of)


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_features_at_the_edge_of_the_arithmetic_run_and_scaled_ones_run_beyond_it(
    precision: str,
) -> None:
    """Just below the limit every row finds its neighbours, as scikit-learn's do; far
    beyond it, a search whose every candidate is scaled runs as scikit-learn's does."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from stages import tune
    from stages.metrics import largest_summable

    rng = np.random.default_rng(3)
    X = rng.uniform(-1, 1, size=(60, 4))
    y = (X[:, 0] > 0).astype(np.intp)
    edge = X * largest_summable("euclidean", 4, np.dtype(precision)) * 0.99
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    at_edge = asyncio.run(tune((edge, y), k=[3], metrics=["euclidean"], precision=precision))
    unscaled = KNeighborsClassifier(3, algorithm="brute")
    expected = cross_val_score(unscaled, edge, y, cv=folds).mean()
    assert at_edge.candidates[0].mean_accuracy == pytest.approx(expected)
    beyond = X * 1e30
    scaled = asyncio.run(
        tune((beyond, y), k=[3], metrics=["euclidean"], scale=["standard"], precision=precision)
    )
    sklearn = make_pipeline(StandardScaler(), KNeighborsClassifier(3, algorithm="brute"))
    expected = cross_val_score(sklearn, beyond, y, cv=folds).mean()
    assert scaled.candidates[0].mean_accuracy == pytest.approx(expected)


def test_a_dataset_with_codes_outside_its_classes_is_refused() -> None:
    import numpy as np

    from pipeline.errors import InputError
    from stages import Dataset

    with pytest.raises(InputError, match=r"y holds class codes outside 0\.\.1"):
        Dataset(X=np.zeros((3, 2)), y=np.array([0, 1, -1]), classes=["a", "b"], source="given")


@pytest.mark.parametrize("cell", ["1_000", "\u0661\u0662"])  # an underscore; Arabic-Indic digits
def test_numbers_as_python_but_not_files_write_them_are_refused(
    cell: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "data.csv"
    rows = [f"{i},{i % 3},{'xy'[i % 2]}" for i in range(1, 12)]
    path.write_text("a,b,label\n" + f"{cell},2,x\n" + "\n".join(rows) + "\n", encoding="utf-8")
    assert main(["run", str(path), "--quiet", "--k", "1"]) == 2
    err = capsys.readouterr().err
    assert f"data.csv:2: column 'a' (index 0) is {cell!r}, not a number" in err


def identifier_labels(path: Path, rows: int = 3000) -> Path:
    rng = np.random.default_rng(0)
    # one label repeats (so folds can be made), every other is a row of its own
    users = [f"user{i if i % 500 else 0}" for i in range(rows)]
    lines = [f"{a:.4f},{b:.4f},{u}" for u, (a, b) in zip(users, rng.random((rows, 2)), strict=True)]
    path.write_text("a,b,id\n" + "\n".join(lines) + "\n")
    return path


def test_a_label_of_identifiers_is_named_and_tuned_in_little_memory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """6,000 rows, 5,989 classes: a vote over every class would take rows x k x classes
    (over 1 GiB a fold); each row's shares keep only its neighbours' classes."""
    data = identifier_labels(tmp_path / "users.csv", rows=6000)
    out = tmp_path / "results.json"
    assert main(["run", str(data), "--quiet", "--out", str(out)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("warning:") and "looks like an identifier" in err[0]
    results = json.loads(out.read_text())
    assert len(results["dataset"]["classes"]) == 5989
    assert len(results["candidates"]) == 80


def test_votes_that_cannot_fit_are_refused_before_the_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(flow, "VOTE_BUDGET_BYTES", 1 << 20)
    data = identifier_labels(tmp_path / "users.csv")
    assert main(["run", str(data), "--quiet"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[1].startswith("error:") and "would need" in err[1] and "--label" in err[1]


def test_a_split_scikit_learn_refuses_is_one_short_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = identifier_labels(tmp_path / "users.csv", rows=400)
    assert main(["run", str(data), "--quiet", "--k", "1", "--cv", "holdout:0.2"]) == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert error.startswith("error: --cv holdout:0.2: cannot split") and len(error) < 500
