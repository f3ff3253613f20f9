"""``run --save-model`` and ``predict`` end to end, as a user runs them."""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from stages.cli import main
from stages.model import KNNModel
from stages.search_space import SKLEARN_METRIC
from tests.stages.test_model import tie_free

ROOT = Path(__file__).resolve().parents[1]
NAMES = ["f0", "f1", "f2", "f3", "f4"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def write_csv(path: Path, X: np.ndarray, labels: list[str] | None, header: bool = True) -> Path:
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        if header:
            writer.writerow(NAMES + (["species"] if labels is not None else []))
        for i, row in enumerate(X):
            writer.writerow([repr(float(v)) for v in row] + ([labels[i]] if labels else []))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict, Path]:  # type: ignore[type-arg]
    folder = tmp_path_factory.mktemp("trained")
    X, y = tie_free(300)
    classes = np.array(["oak", "elm", "ash"])
    train = write_csv(folder / "train.csv", X, list(classes[y]))
    model, results = folder / "model.knn", folder / "results.json"
    done = cli(
        "run",
        str(train),
        "--k",
        "1-9",
        "--weights",
        "uniform,distance",
        "--quiet",
        "--workers",
        "2",
        "--save-model",
        str(model),
        "--out",
        str(results),
    )
    assert done.returncode == 0, done.stderr
    return train, model, json.loads(results.read_text()), folder


def test_the_saved_model_is_the_best_candidate_and_predicts_like_scikit_learn(trained) -> None:  # type: ignore[no-untyped-def]
    _, model_path, results, folder = trained
    model = KNNModel.load(model_path)
    assert model.params() == results["best"]
    assert model.feature_names == NAMES and model.label == "species"
    X, y = tie_free(300)
    queries, truth = tie_free(500, seed=7)
    samples = write_csv(folder / "new.csv", queries, list(np.array(["oak", "elm", "ash"])[truth]))
    done = cli("predict", str(model_path), str(samples), "--label", "species", "--proba", "--quiet")
    assert done.returncode == 0, done.stderr
    rows = list(csv.reader(io.StringIO(done.stdout)))
    assert rows[0] == ["row", "prediction", "proba_ash", "proba_elm", "proba_oak"]
    oracle = KNeighborsClassifier(
        n_neighbors=model.k,
        metric=SKLEARN_METRIC[model.metric],
        weights=model.weights,
        algorithm="brute",
    ).fit(X, np.array(["oak", "elm", "ash"])[y])
    expected = oracle.predict(queries)
    assert [r[1] for r in rows[1:]] == list(expected)
    shares = np.array([[float(v) for v in r[2:]] for r in rows[1:]])
    np.testing.assert_allclose(shares, oracle.predict_proba(queries), atol=1e-12)
    accuracy = np.mean(expected == np.array(["oak", "elm", "ash"])[truth])
    assert f"accuracy {accuracy:.4f} on 500 rows (--label species)" in done.stderr


def test_predictions_go_to_a_file_atomically(trained) -> None:  # type: ignore[no-untyped-def]
    _, model_path, _, folder = trained
    queries, _ = tie_free(50, seed=8)
    np.save(folder / "new.npy", queries)
    out = folder / "predictions.csv"
    done = cli("predict", str(model_path), str(folder / "new.npy"), "--out", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert "classified 50 rows" in done.stderr
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["row", "prediction"] and len(rows) == 51
    assert [r[1] for r in rows[1:]] == list(KNNModel.load(model_path).predict(queries))
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


BAD = {
    "wrong feature count": ("1,2,3\n4,5,6\n", [], "has 3 columns, but the model has 5 features"),
    "unknown column": ("f0,f1,f2,f3,f4,id\n1,2,3,4,5,6\n", [], "column 'id' is not a feature"),
    "text cell": (
        "f0,f1,f2,f3,f4\n1,2,3,4,5\n1,2,3,four,5\n",
        [],
        ":3: column 'f3' (index 3) is 'four'",
    ),
    "missing value": (
        "f0,f1,f2,f3,f4\n1,2,3,4,5\n1,2,,4,5\n",
        [],
        ":3: column 'f2' (index 2) is empty",
    ),
    "unknown label": ("f0,f1,f2,f3,f4\n1,2,3,4,5\n", ["--label", "kind"], "--label 'kind'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_samples_are_one_line_and_exit_2(trained, case, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    _, model_path, _, _ = trained
    text, options, fragment = BAD[case]
    samples = tmp_path / "bad.csv"
    samples.write_text(text)
    status = main(["predict", str(model_path), str(samples), "--quiet", "--workers", "1", *options])
    captured = capsys.readouterr()
    assert status == 2, captured
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and str(samples) in lines[0], lines
    assert captured.out == ""  # no header above the error


def test_a_bad_model_file_is_one_line_and_exit_2(trained, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    _, model_path, _, _ = trained
    samples = tmp_path / "s.csv"
    samples.write_text("1,2,3,4,5\n")
    broken = tmp_path / "broken.knn"
    broken.write_bytes(model_path.read_bytes()[:-40])
    status = main(["predict", str(broken), str(samples), "--quiet"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "damaged or truncated" in err


def test_save_model_is_checked_before_the_run(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    status = main(["run", "--quiet", "--save-model", str(tmp_path / "no" / "m.knn")])
    assert status == 2
    assert "--save-model" in capsys.readouterr().err


def test_ctrl_c_during_predict_leaves_no_output_and_no_process(tmp_path) -> None:  # type: ignore[no-untyped-def]
    X, y = tie_free(20000, features=16)
    model_path = tmp_path / "big.knn"
    KNNModel(X, y, np.array(["a", "b", "c"]), k=5, metric="euclidean").save(model_path)
    queries, _ = tie_free(60000, features=16, seed=5)
    np.save(tmp_path / "many.npy", queries)
    out = tmp_path / "out.csv"
    events = tmp_path / "events.jsonl"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline",
            "predict",
            str(model_path),
            str(tmp_path / "many.npy"),
            "--out",
            str(out),
            "--quiet",
            "--workers",
            "2",
            "--events",
            str(events),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait for real work, not for a clock
        if events.exists() and '"unit_done"' in events.read_text():
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
