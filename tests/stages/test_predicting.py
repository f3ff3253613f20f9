"""The prediction pipeline: blocks of samples on the pool, written back in row order."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import InputError
from pipeline.events import RunFinished, RunStarted, UnitDone
from pipeline.runner import StageFailed
from stages.model import KNNModel
from stages.predicting import Prediction, predict
from tests.stages.test_model import tie_free

NAMES = ["alpha", "beta", "gamma", "delta", "eps"]


@pytest.fixture(scope="module")
def model() -> KNNModel:
    X, y = tie_free(400)
    return KNNModel(
        X,
        y,
        np.array(["red", "green", "blue"]),
        k=5,
        metric="manhattan",
        weights="distance",
        feature_names=NAMES,
        label="colour",
    )


@pytest.fixture(scope="module")
def samples() -> tuple[np.ndarray, np.ndarray]:
    X, y = tie_free(2500, seed=3)
    return X, y


def write_csv(path: Path, header: list[str] | None, rows: list[list[object]]) -> Path:
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        if header is not None:
            writer.writerow(header)
        writer.writerows(rows)
    return path


def read_predictions(text: str) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], rows[1:]


async def test_array_predictions_equal_the_models_own(model, samples) -> None:  # type: ignore[no-untyped-def]
    X, _ = samples
    run = Prediction(model, X, proba=True, workers=2)
    summary = await run.run()
    assert summary.rows == X.shape[0] and summary.accuracy is None
    np.testing.assert_array_equal(run.codes, model.predict_codes(X))
    assert run.shares is not None
    np.testing.assert_array_equal(run.shares, model.predict_proba(X))


async def test_csv_columns_are_matched_by_name_and_the_label_is_ignored(
    model, samples, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    X, y = samples
    order = [3, 0, 4, 1, 2]  # the file's columns in another order, label in the middle
    header = [NAMES[i] for i in order[:2]] + ["colour"] + [NAMES[i] for i in order[2:]]
    rows = [
        [repr(float(r[i])) for i in order[:2]]
        + [model.class_names[c]]
        + [repr(float(r[i])) for i in order[2:]]
        for r, c in zip(X, y, strict=True)
    ]
    path = write_csv(tmp_path / "new.csv", header, rows)
    out = tmp_path / "predictions.csv"
    ignored = await predict(model, path, out=io.StringIO(), workers=2)
    assert ignored.accuracy is None and ignored.labelled == 0  # read only when asked for
    summary = await predict(model, path, out=out, proba=True, label="colour", workers=2)
    head, written = read_predictions(out.read_text())
    assert head == ["row", "prediction", "proba_red", "proba_green", "proba_blue"]
    assert [int(r[0]) for r in written] == list(range(X.shape[0]))  # in row order
    assert [r[1] for r in written] == list(model.predict(X))
    shares = np.array([[float(v) for v in r[2:]] for r in written])
    np.testing.assert_array_equal(shares, model.predict_proba(X))  # repr round-trips
    assert summary.accuracy is not None
    assert summary.accuracy == pytest.approx(np.mean(model.predict_codes(X) == y))
    assert summary.labelled == X.shape[0]


async def test_positional_csv_and_npy_give_the_same_predictions(model, samples, tmp_path) -> None:  # type: ignore[no-untyped-def]
    X, _ = samples
    path = write_csv(tmp_path / "plain.csv", None, [[repr(float(v)) for v in r] for r in X])
    np.save(tmp_path / "plain.npy", X)
    texts = []
    for source in (path, tmp_path / "plain.npy"):
        stream = io.StringIO()
        await predict(model, source, out=stream, workers=2)
        texts.append(stream.getvalue())
    assert texts[0] == texts[1]
    _, written = read_predictions(texts[0])
    assert [r[1] for r in written] == list(model.predict(X))


async def test_progress_events_count_the_blocks(model, samples) -> None:  # type: ignore[no-untyped-def]
    X, _ = samples
    run = Prediction(model, X, workers=2)
    async with run.subscribe() as events:
        task = asyncio.create_task(run.run())
        seen = [event async for event in events]
        await task
    started = next(e for e in seen if isinstance(e, RunStarted))
    done = [e for e in seen if isinstance(e, UnitDone)]
    assert started.job == "knn-predict" and started.units_total == len(done) > 1
    assert done[-1].done == done[-1].total == len(done)
    assert isinstance(seen[-1], RunFinished) and seen[-1].best == model.params()


BAD_FILES = {
    "a text cell": (
        ["alpha,beta,gamma,delta,eps", "1,2,3,4,5", "1,2,x,4,5"],
        ":3: column 'gamma' (index 2) is 'x', not a number",
    ),
    "a missing cell": (
        ["alpha,beta,gamma,delta,eps", "1,2,3,4,5", "1,,3,4,5"],
        ":3: column 'beta' (index 1) is empty, a missing value",
    ),
    "a ragged row": (
        ["alpha,beta,gamma,delta,eps", "1,2,3,4,5", "1,2,3,4"],
        ":3: has 4 columns, expected 5",
    ),
    "an unknown column": (
        ["alpha,beta,gamma,delta,eps,id", "1,2,3,4,5,6"],
        "column 'id' is not a feature of the model",
    ),
    "a missing feature": (
        ["alpha,beta,gamma,delta", "1,2,3,4"],
        "has no column 'eps', a feature of the model",
    ),
    "too few columns": (["1,2,3,4", "1,2,3,4"], "has 4 columns, but the model has 5 features"),
    "an unnamed extra column": (
        ["1,2,3,4,5,6", "1,2,3,4,5,6"],
        "name the label column with label",
    ),
    "no rows": (["alpha,beta,gamma,delta,eps"], "has no rows of samples"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
async def test_bad_samples_name_the_file_line_and_column(model, tmp_path, case) -> None:  # type: ignore[no-untyped-def]
    lines, fragment = BAD_FILES[case]
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.csv"
    with pytest.raises(StageFailed) as failed:
        await predict(model, path, out=out, workers=1)
    assert isinstance(failed.value.error, InputError)
    message = str(failed.value.error)
    assert fragment in message and str(path) in message and "\n" not in message
    assert list(tmp_path.iterdir()) == [path]  # no output, no temporary file


async def test_a_failure_late_in_a_large_file_leaves_no_output(model, samples, tmp_path) -> None:  # type: ignore[no-untyped-def]
    X, _ = samples
    rows = [[repr(float(v)) for v in r] for r in X]
    rows[-3][1] = "oops"
    path = write_csv(tmp_path / "late.csv", NAMES, rows)
    out = tmp_path / "out.csv"
    with pytest.raises(StageFailed, match=f":{len(rows) - 1}: column 'beta' \\(index 1\\)"):
        await predict(model, path, out=out, workers=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["late.csv"]


async def test_a_cancelled_prediction_leaves_no_output(model, tmp_path) -> None:  # type: ignore[no-untyped-def]
    X, _ = tie_free(20000, seed=4)
    np.save(tmp_path / "many.npy", X)
    out = tmp_path / "out.csv"
    run = Prediction(model, tmp_path / "many.npy", out=out, workers=2)
    async with run.subscribe() as events:
        task = asyncio.create_task(run.run())
        async for event in events:
            if isinstance(event, UnitDone):
                task.cancel()
                break
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(p.name for p in tmp_path.iterdir()) == ["many.npy"]


async def test_a_model_with_imputation_fills_missing_sample_values(tmp_path) -> None:  # type: ignore[no-untyped-def]
    X, y = tie_free(300)
    fill = X.mean(axis=0)
    model = KNNModel(
        X, y, np.array([1, 2, 3]), k=3, metric="euclidean", fill_values=fill, missing="mean"
    )
    path = tmp_path / "holes.csv"
    path.write_text("1,NA,1,1,1\n1,2,1,,1\n")
    stream = io.StringIO()
    await predict(model, path, out=stream, workers=1)
    _, written = read_predictions(stream.getvalue())
    expected = model.predict(np.array([[1, fill[1], 1, 1, 1], [1, 2, 1, fill[3], 1]]))
    assert [r[1] for r in written] == [str(v) for v in expected]


@pytest.mark.parametrize(("value", "fragment"), [(np.inf, "infinite"), (np.nan, "missing (NaN)")])
async def test_npy_samples_are_checked_block_by_block(
    model, samples, tmp_path, value, fragment
) -> None:  # type: ignore[no-untyped-def]
    X, _ = samples
    bad = X.copy()
    bad[2100, 3] = value
    np.save(tmp_path / "bad.npy", bad)
    with pytest.raises(StageFailed) as failed:
        await predict(model, tmp_path / "bad.npy", out=io.StringIO(), workers=1)
    assert f"row 2100, column 3 is {fragment}" in str(failed.value.error)


async def test_columns_named_like_generated_names_are_still_matched_by_name(tmp_path) -> None:  # type: ignore[no-untyped-def]
    X, y = tie_free(200, features=4, seed=6)
    names = ["x1", "x0", "x3", "x2"]  # real names that look like made-up ones
    model = KNNModel(X, y, np.array([0, 1, 2]), k=3, metric="euclidean", feature_names=names)
    order = [1, 0, 3, 2]  # the file's columns x0, x1, x2, x3
    rows = [[repr(float(r[i])) for i in order] for r in X[:50]]
    swapped = write_csv(tmp_path / "s.csv", ["x0", "x1", "x2", "x3"], rows)
    stream = io.StringIO()
    await predict(model, swapped, out=stream, workers=1)
    _, written = read_predictions(stream.getvalue())
    assert [r[1] for r in written] == [str(v) for v in model.predict(X[:50])]


async def test_an_npz_whose_labels_do_not_match_its_rows_is_refused(
    model, samples, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    X, _ = samples
    np.savez(tmp_path / "s.npz", X=X[:3], y=np.array(["red"]))
    with pytest.raises(InputError, match="3 rows in X but 1 labels in y"):
        await predict(model, tmp_path / "s.npz", out=io.StringIO(), label="y", workers=1)
    (tmp_path / "broken.npz").write_bytes((tmp_path / "s.npz").read_bytes()[:50])
    with pytest.raises(InputError, match="not a readable NumPy file"):
        await predict(model, tmp_path / "broken.npz", out=io.StringIO(), workers=1)


async def test_only_a_newline_ends_a_sample_line(model, samples, tmp_path) -> None:  # type: ignore[no-untyped-def]
    X, _ = samples
    path = tmp_path / "odd.csv"
    row = ",".join(repr(float(v)) for v in X[0])
    path.write_bytes(f"{row}\r\n{row}\x1e,1\n".encode())
    with pytest.raises(StageFailed) as failed:
        await predict(model, path, out=io.StringIO(), workers=1)
    assert ":2: has 6 columns, expected 5" in str(failed.value.error)


async def test_samples_in_another_delimiter_or_gzip_read_as_training_files_do(
    model, samples, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    import gzip

    X, _ = samples
    lines = [";".join(NAMES)] + [";".join(repr(float(v)) for v in r) for r in X[:300]]
    text = "\n".join(lines) + "\n;;;;\n"  # and a row of empty cells at the end
    (tmp_path / "semi.csv").write_text(text)
    (tmp_path / "semi.csv.gz").write_bytes(gzip.compress(text.encode()))
    expected = [str(v) for v in model.predict(X[:300])]
    for name in ("semi.csv", "semi.csv.gz"):
        stream = io.StringIO()
        summary = await predict(model, tmp_path / name, out=stream, workers=1)
        _, written = read_predictions(stream.getvalue())
        assert [r[1] for r in written] == expected and summary.rows == 300, name
