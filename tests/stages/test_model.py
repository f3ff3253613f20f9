"""The tuned model against scikit-learn's KNeighborsClassifier, and its safe file format."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.impute import SimpleImputer
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline

from pipeline.errors import InputError
from stages import Dataset, tune
from stages.model import MODEL_VERSION, KNNModel, ModelFileError
from stages.search_space import METRICS, SKLEARN_METRIC

ROOT = Path(__file__).resolve().parents[2]


def tie_free(n: int = 240, features: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Continuous features: no two distances tie, so neighbour order is unambiguous."""
    X, y = make_classification(
        n_samples=n,
        n_features=features,
        n_informative=4,
        n_redundant=0,
        n_classes=3,
        random_state=seed,
    )
    return np.abs(X), y  # non-negative, so sorensen is meaningful


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X, y = tie_free()
    queries, _ = tie_free(60, seed=1)
    return X, y, queries


def dataset(X: np.ndarray, y: np.ndarray) -> Dataset:
    return Dataset(X=X, y=y.astype(np.intp), classes=["a", "b", "c"], source="test")


@pytest.mark.parametrize("weights", ["uniform", "distance"])
@pytest.mark.parametrize("metric", METRICS)
def test_predictions_shares_and_neighbours_equal_scikit_learns(data, metric, weights) -> None:  # type: ignore[no-untyped-def]
    X, y, queries = data
    labels = np.array(["a", "b", "c"])[y]
    model = KNNModel(X, y, np.array(["a", "b", "c"]), k=7, metric=metric, weights=weights)
    oracle = KNeighborsClassifier(
        n_neighbors=7, metric=SKLEARN_METRIC[metric], weights=weights, algorithm="brute"
    ).fit(X, labels)
    assert (model.predict(queries) == oracle.predict(queries)).all()
    np.testing.assert_allclose(
        model.predict_proba(queries), oracle.predict_proba(queries), atol=1e-12
    )
    distances, indices = model.kneighbors(queries)
    expected_distances, expected_indices = oracle.kneighbors(queries)
    assert (indices == expected_indices).all()
    np.testing.assert_allclose(distances, expected_distances, rtol=1e-12, atol=1e-12)
    twin = model.to_sklearn()
    assert list(twin.classes_) == list(model.classes)
    assert (twin.predict(queries) == model.predict(queries)).all()


def test_threads_and_one_thread_agree(data) -> None:  # type: ignore[no-untyped-def]
    X, y, _ = data
    many, _ = tie_free(3000, seed=2)
    model = KNNModel(X, y, np.array([0, 1, 2]), k=5, metric="manhattan", weights="distance")
    np.testing.assert_array_equal(model.predict(many, n_jobs=1), model.predict(many, n_jobs=2))
    np.testing.assert_array_equal(
        model.predict_proba(many, n_jobs=1), model.predict_proba(many, n_jobs=2)
    )


def test_an_exact_match_takes_all_the_weight(data) -> None:  # type: ignore[no-untyped-def]
    X, y, _ = data
    model = KNNModel(X, y, np.array(["a", "b", "c"]), k=9, metric="euclidean", weights="distance")
    shares = model.predict_proba(X[:5])
    np.testing.assert_array_equal(shares, np.eye(3)[y[:5]])


async def test_the_tuned_model_is_the_best_candidate_trained_on_every_row(data) -> None:  # type: ignore[no-untyped-def]
    X, y, queries = data
    result = await tune(
        dataset(X, y),
        k=[1, 5, 9],
        metrics="manhattan,chebyshev",
        weights="uniform,distance",
        workers=2,
    )
    model = result.model()
    assert result.best is not None
    assert model.params() == result.best.candidate.params()
    np.testing.assert_array_equal(model.X, X)
    other = result.candidates[-1]
    chosen = result.model(other)
    assert chosen.params() == other.candidate.params()
    assert result.model(other.candidate.params()).params() == chosen.params()
    oracle = KNeighborsClassifier(
        n_neighbors=chosen.k,
        metric=SKLEARN_METRIC[chosen.metric],
        weights=chosen.weights,
        algorithm="brute",
    ).fit(X, np.array(["a", "b", "c"])[y])
    assert (chosen.predict(queries) == oracle.predict(queries)).all()


@pytest.mark.parametrize("strategy", ["mean", "median"])
async def test_imputation_is_fitted_on_every_training_row(data, strategy) -> None:  # type: ignore[no-untyped-def]
    X, y, queries = data
    holes = X.copy()
    holes[::7, 1] = np.nan
    holes[::11, 3] = np.nan
    asked = queries.copy()
    asked[::3, 2] = np.nan
    result = await tune(dataset(holes, y), k=[3], metrics="euclidean", missing=strategy, workers=2)
    model = result.model()
    oracle = make_pipeline(
        SimpleImputer(strategy=strategy),
        KNeighborsClassifier(n_neighbors=3, algorithm="brute"),
    ).fit(holes, np.array(["a", "b", "c"])[y])
    assert (model.predict(asked) == oracle.predict(asked)).all()
    np.testing.assert_allclose(model.predict_proba(asked), oracle.predict_proba(asked), atol=1e-12)
    assert (model.to_sklearn().predict(model.X) == oracle.predict(holes)).all()


async def test_dropped_rows_are_not_in_the_model(data) -> None:  # type: ignore[no-untyped-def]
    X, y, _ = data
    holes = X.copy()
    holes[:10, 0] = np.nan
    result = await tune(dataset(holes, y), k=[3], metrics="euclidean", missing="drop", workers=2)
    model = result.model()
    np.testing.assert_array_equal(model.X, X[10:])
    with pytest.raises(InputError, match="row 0, column 0 is missing"):
        model.predict(holes[:1])


def test_numeric_labels_come_back_as_numbers(data) -> None:  # type: ignore[no-untyped-def]
    X, y, queries = data
    model = KNNModel.from_dataset(
        Dataset(X=X, y=y.astype(np.intp), classes=["2", "10", "33"], source="t"),
        {"k": 4, "metric": "chebyshev"},
    )
    assert model.classes.dtype.kind == "i" and list(model.classes) == [2, 10, 33]
    twin = model.to_sklearn()
    assert list(twin.classes_) == [2, 10, 33]
    assert (twin.predict(queries) == model.predict(queries)).all()


def test_samples_of_the_wrong_shape_or_kind_are_refused(data) -> None:  # type: ignore[no-untyped-def]
    X, y, _ = data
    model = KNNModel(X, y, np.array(["a", "b", "c"]), k=3, metric="euclidean")
    with pytest.raises(InputError, match=r"shape \(2, 4\), but the model has 5 features"):
        model.predict(np.zeros((2, 4)))
    with pytest.raises(InputError, match="not numeric"):
        model.predict([["a"] * 5])
    with pytest.raises(InputError, match="row 1, column 2 is infinite"):
        model.predict(np.where(np.arange(10).reshape(2, 5) == 7, np.inf, 0.0))
    with pytest.raises(InputError, match="n_neighbors: 0"):
        model.kneighbors(X[:2], n_neighbors=0)


def test_a_saved_model_loads_and_predicts_the_same_in_a_fresh_process(data, tmp_path) -> None:  # type: ignore[no-untyped-def]
    X, y, queries = data
    holes = X.copy()
    holes[::5, 0] = np.nan
    model = KNNModel.from_dataset(
        Dataset(
            X=holes,
            y=y.astype(np.intp),
            classes=["a", "b", "c"],
            source="t.csv",
            feature_names=list("pqrst"),
            label_name="kind",
        ),
        {"k": 6, "metric": "sorensen", "weights": "distance"},
        missing="median",
    )
    path = tmp_path / "model.knn"
    model.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["model.knn"]  # no temporary left
    loaded = KNNModel.load(path)
    assert loaded.params() == model.params()
    assert loaded.feature_names == list("pqrst") and loaded.label == "kind"
    np.testing.assert_array_equal(loaded.fill_values, model.fill_values)
    np.save(tmp_path / "queries.npy", queries)
    script = (
        "import sys, numpy as np\n"
        "from stages.model import KNNModel\n"
        "m = KNNModel.load(sys.argv[1])\n"
        "q = np.load(sys.argv[2])\n"
        "print(','.join(m.predict(q)))\n"
        "print(repr(m.predict_proba(q).tolist()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path), str(tmp_path / "queries.npy")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    predictions, shares = done.stdout.splitlines()
    assert predictions.split(",") == list(model.predict(queries))
    assert eval(shares) == model.predict_proba(queries).tolist()  # repr of floats round-trips


def _saved(data, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    X, y, _ = data
    path = tmp_path / "good.knn"
    KNNModel(X, y, np.array(["a", "b", "c"]), k=3, metric="euclidean").save(path)
    return path


def _rewrite(source: Path, target: Path, **replace: bytes) -> Path:
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            new.writestr(info.filename, replace.pop(info.filename, old.read(info.filename)))
        for name, content in replace.items():
            new.writestr(name, content)
    return target


def _npy_header_claiming(shape: tuple[int, ...]) -> bytes:
    """The start of an .npy file that claims ``shape`` of float64 but holds almost nothing."""
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": "<f8", "fortran_order": False, "shape": shape}
    )
    return buffer.getvalue() + b"\0" * 64


def _header_bytes(header: dict) -> bytes:  # type: ignore[type-arg]
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.frombuffer(json.dumps(header).encode(), dtype=np.uint8))
    return buffer.getvalue()


def test_hostile_damaged_and_foreign_files_are_refused_with_one_line(data, tmp_path) -> None:  # type: ignore[no-untyped-def]
    good = _saved(data, tmp_path)
    with zipfile.ZipFile(good) as archive:
        header = json.loads(np.load(good)["header"].tobytes())
        # without text columns a model is written as version 1, which older readers read
        assert header["format"] == "knn-pipeline-model" and header["version"] == 1
        assert sorted(archive.namelist()) == ["X.npy", "header.npy", "y.npy"]

    class Boom:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (exec, ("open('PWNED', 'w').write('x')",))

    pickled = tmp_path / "pickle.knn"
    pickled.write_bytes(pickle.dumps(Boom()))
    object_member = tmp_path / "object.knn"
    with object_member.open("wb") as stream:
        np.savez(stream, header=np.array([Boom()], dtype=object))
    truncated = tmp_path / "truncated.knn"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    foreign = tmp_path / "foreign.knn"
    with foreign.open("wb") as stream:
        np.savez(stream, X=np.zeros((3, 2)), y=np.zeros(3))
    newer = _rewrite(
        good,
        tmp_path / "newer.knn",
        **{"header.npy": _header_bytes({**header, "version": MODEL_VERSION + 1})},
    )
    other_format = _rewrite(
        good, tmp_path / "other.knn", **{"header.npy": _header_bytes({**header, "format": "x"})}
    )
    bad_k = _rewrite(
        good,
        tmp_path / "k.knn",
        **{"header.npy": _header_bytes({**header, "params": {**header["params"], "k": 10**6}})},
    )
    bad_code = _rewrite(
        good, tmp_path / "code.knn", **{"header.npy": _header_bytes({**header, "classes": ["a"]})}
    )
    extra = _rewrite(good, tmp_path / "extra.knn", **{"code.py": b"print('hi')"})
    infinite = _rewrite(
        good, tmp_path / "inf.knn", **{"header.npy": _header_bytes({**header, "rows": 1e309})}
    )
    huge = _rewrite(good, tmp_path / "huge.knn", **{"X.npy": _npy_header_claiming((10**11, 5))})
    bomb = tmp_path / "bomb.knn"
    with zipfile.ZipFile(good) as old, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            new.writestr(info.filename, old.read(info.filename))
    expected = {
        pickled: "not a knn-pipeline model file",
        object_member: "member 'header.npy' is not the uint8 array it should be",
        truncated: "damaged or truncated",
        foreign: "not a knn-pipeline model file (no header)",
        newer: f"newer knn-pipeline (model format {MODEL_VERSION + 1}",
        other_format: "another format",
        bad_k: "parameters are not valid",
        bad_code: "a label code does not name a class",
        extra: "unexpected member 'code.py'",
        infinite: "rows and features are not whole numbers",
        huge: "member 'X.npy' is not the float64 array it should be",
        bomb: "is compressed; model files store arrays as they are",
        tmp_path / "absent.knn": "no such model file",
    }
    for path, fragment in expected.items():
        with pytest.raises(ModelFileError) as refused:
            KNNModel.load(path)
        message = str(refused.value)
        assert fragment in message, (path.name, message)
        assert str(path) in message and "\n" not in message
    assert not Path("PWNED").exists() and not (tmp_path / "PWNED").exists()


def test_a_failed_save_leaves_the_old_file(data, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    path = _saved(data, tmp_path)
    before = path.read_bytes()
    X, y, _ = data
    model = KNNModel(X, y, np.array(["a", "b", "c"]), k=5, metric="manhattan")

    def fail(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", fail)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.knn"]


def test_a_data_frame_is_read_by_column_name(data) -> None:  # type: ignore[no-untyped-def]
    import pandas as pd

    X, y, queries = data
    names = ["p", "q", "r", "s", "t"]
    model = KNNModel(X, y, np.array(["a", "b", "c"]), k=3, metric="manhattan", feature_names=names)
    frame = pd.DataFrame(queries, columns=names)[["t", "r", "p", "s", "q"]].assign(extra=1.0)
    assert (model.predict(frame) == model.predict(queries)).all()


def test_saved_files_get_the_usual_mode(data, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os
    import stat

    path = _saved(data, tmp_path)
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
