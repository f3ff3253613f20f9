"""The command line end to end, in real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier

from stages.cli import main
from stages.score import SCORES

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "run", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def iris_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], dict]:  # type: ignore[type-arg]
    out = tmp_path_factory.mktemp("iris") / "results.json"
    done = run_cli("--out", str(out), "--workers", "2", "--quiet")
    return done, json.loads(out.read_text()) if out.exists() else {}


def test_default_run_prints_a_ranked_leaderboard(iris_run) -> None:  # type: ignore[no-untyped-def]
    """To a pipe: aligned plain text, no box drawing, the rows the results JSON ranks first."""
    done, results = iris_run
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "k-NN leaderboard: iris, kfold (5 folds)"
    header = ["rank", "k", "metric", "weights", "accuracy", "±", "std", "balanced", "F1", "macro"]
    assert lines[1].split() == header
    rows = [line.split() for line in lines[2:-1]]
    assert len(rows) == 10  # --top default
    for row, candidate in zip(rows, results["candidates"], strict=False):
        params = candidate["params"]
        assert row[:4] == [str(candidate["rank"]), str(params["k"]), params["metric"], "uniform"]
        assert row[4:6] == [f"{candidate['mean_accuracy']:.4f}", f"{candidate['std_accuracy']:.4f}"]
    assert lines[-1].startswith("80 candidates, ")
    assert not any(c in done.stdout for c in "│┃━")


def test_results_json_follows_the_contract(iris_run) -> None:  # type: ignore[no-untyped-def]
    _, results = iris_run
    assert results["version"] == 2 and results["scoring"] == "accuracy"
    assert results["dataset"] == {
        "source": "iris",
        "rows": 150,
        "features": 4,
        "classes": ["setosa", "versicolor", "virginica"],
    }
    assert results["cv"]["kind"] == "kfold" and results["cv"]["seed"] == 0
    assert [f["id"] for f in results["cv"]["folds"]] == ["0", "1", "2", "3", "4"]
    assert all(f["train_rows"] == 120 and f["test_rows"] == 30 for f in results["cv"]["folds"])
    candidates = results["candidates"]
    assert len(candidates) == 20 * 4  # k 1..39 odd, four metrics, uniform
    expected_keys = {
        "rank",
        "params",
        "mean_accuracy",
        "std_accuracy",
        "fold_accuracy",
        "mean_balanced_accuracy",
        "mean_f1_macro",
    }  # version 1's fields, unchanged, and every score's mean, std and per-fold values
    expected_keys |= {f"{part}_{name}" for name in SCORES for part in ("mean", "std", "fold")}
    expected_keys.add("confusion_matrix")
    assert all(set(c) == expected_keys for c in candidates)
    assert all(sum(map(sum, c["confusion_matrix"])) == 150 for c in candidates)
    for c in candidates:
        assert c["mean_accuracy"] == pytest.approx(np.mean(c["fold_accuracy"]), abs=1e-15)
        assert len(c["fold_f1_weighted"]) == 5
        assert c["mean_balanced_accuracy"] == pytest.approx(np.mean(c["fold_balanced_accuracy"]))
    assert results["best"] == candidates[0]["params"]
    assert results["timing"]["workers"] == 2 and results["timing"]["seconds"] > 0
    means = [round(c["mean_accuracy"], 12) for c in candidates]  # true means, not last bits
    assert means == sorted(means, reverse=True)
    assert candidates[0]["rank"] == 1
    rank_of_mean: dict[float, set[int]] = {}
    for candidate, mean in zip(candidates, means, strict=True):
        rank_of_mean.setdefault(mean, set()).add(candidate["rank"])
    assert all(len(ranks) == 1 for ranks in rank_of_mean.values())  # equal means, one rank
    assert "precision" not in results  # exact float64: the contract's shape, unchanged


def test_a_csv_run_agrees_with_grid_search_on_the_same_folds(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    X = np.abs(rng.normal(size=(90, 4)))  # continuous: no distance ties
    y = rng.integers(0, 3, size=90)
    X[y == 1, 0] += 1.0
    path = tmp_path / "data.csv"
    np.savetxt(path, np.column_stack([X, y]), delimiter=",", fmt="%.17g")
    out = tmp_path / "r.json"
    done = run_cli(
        str(path), "--k", "1-5", "--weights", "uniform,distance", "--out", str(out), "--quiet"
    )
    assert done.returncode == 0, done.stderr
    ours = {
        tuple(c["params"].values()): c["mean_accuracy"]
        for c in json.loads(out.read_text())["candidates"]
    }
    sklearn_metric = {
        "euclidean": "euclidean",
        "manhattan": "manhattan",
        "chebyshev": "chebyshev",
        "sorensen": "braycurtis",
    }
    for metric, name in sklearn_metric.items():
        search = GridSearchCV(
            KNeighborsClassifier(algorithm="brute", metric=name),
            {"n_neighbors": list(range(1, 6)), "weights": ["uniform", "distance"]},
            cv=StratifiedKFold(5, shuffle=True, random_state=0),
        ).fit(X, y)
        for params, mean in zip(
            search.cv_results_["params"], search.cv_results_["mean_test_score"], strict=True
        ):
            key = (params["n_neighbors"], metric, params["weights"])
            assert ours[key] == pytest.approx(mean, abs=1e-12), key


def test_out_file_is_written_atomically_and_nothing_else_is_left(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    done = run_cli("--k", "1,3", "--metrics", "euclidean", "--quiet", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
    assert json.loads(out.read_text())["best"]["metric"] == "euclidean"


def test_csv_with_header_label_by_name_and_predefined_folds(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "data.csv"
    lines = ["species,a,b,split"]
    for i in range(60):
        label = ["red", "blue"][i % 2]
        a, b = rng.normal(size=2) + (2.0 if label == "red" else 0.0)
        lines.append(f"{label},{a},{b},{'test' if i % 4 == 0 else 'train'}")
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "r.json"
    done = run_cli(
        str(path),
        "--label",
        "species",
        "--cv",
        "column:split",
        "--k",
        "1-5",
        "--weights",
        "uniform,distance",
        "--out",
        str(out),
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())
    assert results["dataset"]["features"] == 2
    assert results["dataset"]["classes"] == ["blue", "red"]
    assert results["cv"]["folds"] == [{"id": "test", "train_rows": 45, "test_rows": 15}]
    assert len(results["candidates"]) == 5 * 4 * 2


def test_npz_and_holdout_and_loo(tmp_path: Path) -> None:
    X, y = load_iris(return_X_y=True)  # ties in iris do not matter here: only shapes are checked
    path = tmp_path / "iris.npz"
    np.savez(path, X=X, y=y)
    for cv, folds in (("holdout:0.2", 1), ("loo", 150)):
        out = tmp_path / f"{cv.replace(':', '_')}.json"
        done = run_cli(
            str(path),
            "--cv",
            cv,
            "--k",
            "1,5",
            "--metrics",
            "euclidean",
            "--out",
            str(out),
            "--quiet",
        )
        assert done.returncode == 0, done.stderr
        results = json.loads(out.read_text())
        assert len(results["cv"]["folds"]) == folds
        assert all(len(c["fold_accuracy"]) == folds for c in results["candidates"])


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["no/such/file.csv"], "no such file"),
        (["--k", "0"], "--k"),
        (["--k", "5-1"], "runs backwards"),
        (["--metrics", "mahalanobis"], "unknown metric 'mahalanobis'"),
        (["--weights", "heavy"], "--weights"),
        (["--cv", "kfold:1"], "at least 2 folds"),
        (["--cv", "shuffle"], "not a cross-validation scheme"),
        (["--workers", "0"], "--workers"),
        (["--top", "x"], "--top"),
        (["--k", "200"], "larger than the smallest training fold"),
        (["--out", "/no/such/dir/r.json"], "does not exist"),
        (["--bogus"], "unrecognized arguments"),
        (["--precision", "float16"], "--precision float16: choose float64"),
    ],
)
def test_bad_input_gets_one_clear_line_and_exit_2(
    args: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        sys.exit(main(["run", *args]))
    assert exited.value.code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert fragment in lines[0]
    assert "Traceback" not in err


def test_a_bad_option_in_a_real_process_exits_2_without_traceback() -> None:
    done = run_cli("--cv", "kfold:x")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "whole number of folds" in done.stderr


def test_data_errors_name_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("a,b,label\n1,2,x\n3,oops,y\n")
    done = run_cli(str(path))
    assert done.returncode == 2
    assert f"{path}:3: column 'b' (index 1) is 'oops', not a number" in done.stderr


def test_a_float32_run_says_so(tmp_path: Path) -> None:
    out = tmp_path / "r32.json"
    done = run_cli("--quiet", "--workers", "2", "--precision", "float32", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "float32 distances" in done.stdout
    results = json.loads(out.read_text())
    assert results["precision"] == "float32"
    assert len(results["candidates"]) == 80


def test_a_terminal_gets_rich_tables(tmp_path: Path) -> None:
    """``FORCE_COLOR`` makes rich take any stream for a terminal; the leaderboard then is its
    table, as on a real terminal (the progress bar too, on standard error)."""
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", "--k", "1-3", "--workers", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "FORCE_COLOR": "1", "COLUMNS": "120"},
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert sum("┃" in line for line in lines) == 1  # the header
    assert sum("│" in line for line in lines) == 10  # --top rows


def test_tty_compatible_0_keeps_the_plain_table_even_with_force_color() -> None:
    """rich's own rule: TTY_COMPATIBLE=0 wins over FORCE_COLOR."""
    with_env = {**os.environ, "FORCE_COLOR": "1", "TTY_COMPATIBLE": "0"}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from stages.terminal import plainly_not_a_terminal as p;"
            " print(p(sys.stdout))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=with_env,
    )
    assert done.stdout.strip() == "True", done.stderr
