"""Text feature columns, one-hot encoded per training fold, against scikit-learn's
``ColumnTransformer`` with ``OneHotEncoder(handle_unknown="ignore")``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from pipeline.errors import InputError
from pipeline.runner import StageFailed
from stages import KNNModel, tune
from stages.metrics import sklearn_params
from tests.test_predict_cli import cli

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = ["size", "colour", "weight", "shape"]
TEXT = ["colour", "shape"]
NUMERIC = ["size", "weight"]


def mixed_frame(n: int = 150, seed: int = 3) -> pd.DataFrame:
    """Continuous numbers (no distance ties) beside two text columns; ``violet`` is on
    one row only, so the fold that tests it never sees it in training."""
    rng = np.random.default_rng(seed)
    colour = rng.choice(["red", "green", "blue"], n).astype(object)
    colour[5] = "violet"
    shape = rng.choice(["round", "square"], n)
    size = rng.normal(5, 2, n)
    weight = rng.normal(50, 20, n)
    label = np.where((colour == "red") ^ (size > 5) ^ (shape == "round"), "A", "B")
    return pd.DataFrame(
        {"size": size, "colour": colour, "weight": weight, "shape": shape, "label": label}
    )


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, Path]:
    frame = mixed_frame()
    path = tmp_path_factory.mktemp("mixed") / "mixed.csv"
    frame.to_csv(path, index=False, float_format="%.17g")
    return frame, path


def sklearn_pipeline(scale: str, metric: str, k: int, weights: str) -> Any:
    numeric: Any = StandardScaler() if scale == "standard" else "passthrough"
    prepare = ColumnTransformer(
        [
            ("numeric", numeric, NUMERIC),
            ("text", OneHotEncoder(handle_unknown="ignore", sparse_output=False), TEXT),
        ]
    )
    knn = KNeighborsClassifier(
        n_neighbors=k, weights=weights, algorithm="brute", **sklearn_params(metric)
    )
    return make_pipeline(prepare, knn)


async def test_every_fold_equals_a_column_transformer_pipeline(mixed: Any) -> None:
    frame, path = mixed
    result = await tune(
        str(path),
        k=[1, 4, 9],
        metrics="manhattan,euclidean",
        weights="uniform,distance",
        scale="none,standard",
        workers=2,
    )
    assert result.dataset["features"] == 2 + 4 + 2  # two numbers, four colours, two shapes
    X, y = frame[COLUMNS], frame["label"].to_numpy()
    folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(X, y))
    unseen = [f for f, (train, _) in enumerate(folds) if "violet" not in set(X.colour.iloc[train])]
    assert unseen, "a fold whose training rows lack a category"
    for row in result.candidates:
        c = row.candidate
        model = sklearn_pipeline(c.scale or "none", c.metric, c.k, c.weights)
        expected = [
            model.fit(X.iloc[train], y[train]).score(X.iloc[test], y[test]) for train, test in folds
        ]
        assert row.fold_accuracy == pytest.approx(expected, abs=1e-12), c


async def test_the_model_encodes_new_samples_and_its_scikit_learn_twin_agrees(
    mixed: Any, tmp_path: Path
) -> None:
    _, path = mixed
    result = await tune(str(path), k=[3], metrics="manhattan", scale="standard", workers=1)
    model = result.model()
    assert model.input_columns == COLUMNS and model.n_features_in_ == 4
    new = mixed_frame(40, seed=9)[COLUMNS]
    new.loc[0, "colour"] = "ultraviolet"  # a category nobody saw: all zeros, as "ignore" does
    twin = model.to_sklearn()
    assert np.array_equal(model.predict(new), twin.predict(new))
    np.testing.assert_allclose(model.predict_proba(new), twin.predict_proba(new), atol=1e-12)
    as_rows = new.to_numpy(dtype=object)  # no names: the columns in the model's order
    assert np.array_equal(model.predict(as_rows), twin.predict(new))
    shuffled = new[["shape", "weight", "colour", "size"]]  # by name, in any order
    assert np.array_equal(model.predict(shuffled), twin.predict(shuffled))
    saved = tmp_path / "mixed.knn"
    model.save(saved)
    again = KNNModel.load(saved)
    assert again.encoding == model.encoding
    assert np.array_equal(again.predict(new), twin.predict(new))
    with pytest.raises(InputError, match="'size' must hold numbers"):
        model.predict(new.assign(size="big").to_numpy(dtype=object))


def test_command_line_notice_save_and_predict(mixed: Any, tmp_path: Path) -> None:
    _, path = mixed
    model_path = tmp_path / "model.knn"
    done = cli("run", str(path), "--k", "3", "--quiet", "--save-model", str(model_path))
    assert done.returncode == 0, done.stderr
    assert "one-hot encoding text columns 'colour' (4 categories), 'shape' (2" in done.stderr
    assert "; --categorical error refuses text columns, --drop leaves them out" in done.stderr
    new = mixed_frame(30, seed=5)
    samples = tmp_path / "new.csv"
    new[["shape", "weight", "colour", "size"]].to_csv(samples, index=False)  # any order, by name
    out = tmp_path / "predictions.csv"
    predicted = cli("predict", str(model_path), str(samples), "--out", str(out), "--quiet")
    assert predicted.returncode == 0, predicted.stderr
    got = pd.read_csv(out)["prediction"].to_numpy()
    twin = KNNModel.load(model_path).to_sklearn()
    assert np.array_equal(got, twin.predict(new[COLUMNS]))
    as_npy = tmp_path / "new.npy"
    np.save(as_npy, np.zeros((3, 4)))
    refused = cli("predict", str(model_path), str(as_npy), "--quiet")
    assert refused.returncode == 2 and "give the samples as a CSV" in refused.stderr


def test_categorical_error_refuses_text_columns(mixed: Any) -> None:
    _, path = mixed
    done = cli("run", str(path), "--categorical", "error", "--quiet")
    assert done.returncode == 2
    assert "column 'colour' (index 1) holds text ('" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_an_empty_text_cell_and_a_stray_word_are_named(tmp_path: Path) -> None:
    frame = mixed_frame(40)
    frame.loc[7, "colour"] = ""
    empty = tmp_path / "empty.csv"
    frame.to_csv(empty, index=False)
    done = cli("run", str(empty), "--quiet")
    assert done.returncode == 2 and "empty.csv:9: column 'colour' (index 1), a text column" in (
        done.stderr
    )
    frame = mixed_frame(40)
    frame["size"] = frame["size"].astype(object)
    frame.loc[3, "size"] = "five"  # one word among numbers: a mistake, not a text column
    stray = tmp_path / "stray.csv"
    frame.to_csv(stray, index=False)
    done = cli("run", str(stray), "--quiet")
    assert done.returncode == 2 and "stray.csv:5: column 'size' (index 0) is 'five'" in done.stderr


async def test_a_dataframe_with_text_columns_is_encoded_as_a_csv_is(mixed: Any) -> None:
    frame, path = mixed
    from_csv = await tune(str(path), k=[1, 5], metrics="manhattan", workers=1)
    from_frame = await tune(frame, label="label", k=[1, 5], metrics="manhattan", workers=1)
    assert from_frame.dataset["features"] == from_csv.dataset["features"]
    for ours, theirs in zip(from_frame.candidates, from_csv.candidates, strict=True):
        assert ours.fold_accuracy == theirs.fold_accuracy
    frame_model = from_frame.model()
    assert frame_model.encoding == from_csv.model().encoding
    with pytest.raises(StageFailed, match=r"column 'colour' holds (object|str) values") as failed:
        await tune(frame, label="label", categorical="error", workers=1)
    assert isinstance(failed.value.error, InputError)
