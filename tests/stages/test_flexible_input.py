"""Real files as they come: other delimiters, gzip, metadata lines, stdin, and data in memory."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn import datasets

from pipeline.errors import InputError
from stages import Dataset, tune
from stages.csv_text import CsvFormat
from stages.load import load_dataset, parse_csv

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = Path(sklearn.__file__).parent / "datasets" / "data"
PLAIN = b"a,b,label\n1.5,2,x\n3,4.25,y\n5,6,x\n7,8,y\n"


@pytest.mark.parametrize(
    ("name", "loader"),
    [
        ("iris.csv", "load_iris"),
        ("wine_data.csv", "load_wine"),
        ("breast_cancer.csv", "load_breast_cancer"),
    ],
)
async def test_scikit_learns_own_csv_files_load_with_skip_rows_and_no_header(name, loader) -> None:  # type: ignore[no-untyped-def]
    dataset = await load_dataset(BUNDLED / name, csv_format=CsvFormat(header=False, skip_rows=1))
    bunch = getattr(datasets, loader)()
    np.testing.assert_array_equal(dataset.X, bunch.data)
    assert dataset.classes == [str(c) for c in range(len(bunch.target_names))]
    np.testing.assert_array_equal(dataset.y, bunch.target)


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_other_delimiters_are_detected(delimiter: str) -> None:
    expected = parse_csv(PLAIN)
    found = parse_csv(PLAIN.replace(b",", delimiter.encode()))
    np.testing.assert_array_equal(found.X, expected.X)
    assert found.feature_names == ["a", "b"] and found.classes == expected.classes


def test_a_given_delimiter_is_used_and_a_wrong_one_is_explained() -> None:
    semicolons = PLAIN.replace(b",", b";")
    np.testing.assert_array_equal(
        parse_csv(semicolons, csv_format=CsvFormat(delimiter=";")).X, parse_csv(PLAIN).X
    )
    with pytest.raises(InputError, match="the file may use ';': delimiter ';'"):
        parse_csv(semicolons, csv_format=CsvFormat(delimiter=","))
    with pytest.raises(InputError, match="delimiter 'ab': give one character"):
        CsvFormat(delimiter="ab")


def test_gzip_is_read_whatever_the_file_is_called(tmp_path: Path) -> None:
    assert parse_csv(gzip.compress(PLAIN)).X.tolist() == parse_csv(PLAIN).X.tolist()
    with pytest.raises(InputError, match="damaged or truncated gzip file"):
        parse_csv(gzip.compress(PLAIN)[:20], source="cut.csv.gz")


def test_latin_1_gets_a_hint() -> None:
    with pytest.raises(
        InputError, match=r":3: bytes that are not UTF-8.*Latin-1.*save the file as UTF-8"
    ):
        parse_csv("a,b,label\n1,2,x\n3,4,caf\u00e9\n".encode("latin-1"))


def test_the_fast_and_the_careful_reading_agree() -> None:
    quoted = b'a,b,label\n"1.5",2,x\n3,4.25,"y"\n5,6,x\n7,8,y\n'  # quotes: the careful reading
    fast, careful = parse_csv(PLAIN), parse_csv(quoted)
    np.testing.assert_array_equal(fast.X, careful.X)
    np.testing.assert_array_equal(fast.y, careful.y)
    assert fast.classes == careful.classes and fast.feature_names == careful.feature_names


def test_a_header_can_be_refused_as_data() -> None:
    numeric_header = b"1,2,3\n4,5,6\n7,8,9\n"
    assert parse_csv(numeric_header, csv_format=CsvFormat(header=False)).rows == 3
    with pytest.raises(InputError, match="column 0 is 'a', not a number"):
        parse_csv(PLAIN, csv_format=CsvFormat(header=False))


def test_standard_input_is_read_for_dash() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "run",
            "-",
            "--quiet",
            "--k",
            "1",
            "--workers",
            "1",
            "--cv",
            "kfold:2",
        ],
        input=(PLAIN * 1).decode(),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={**os.environ},
    )
    assert done.returncode == 0, done.stderr
    assert "k-NN leaderboard: <stdin>" in done.stdout


async def test_arrays_and_data_frames_tune_like_a_dataset() -> None:
    X, y = datasets.make_classification(n_samples=120, n_features=4, random_state=0)
    labels = np.array(["no", "yes"])[y]
    reference = await tune(
        Dataset(X=X, y=y.astype(np.intp), classes=["no", "yes"], source="d"), k=[1, 3], workers=1
    )
    frame = pd.DataFrame(X, columns=["p", "q", "r", "s"]).assign(answer=labels)
    for data, options in (
        ((X, labels), {}),
        ((X.tolist(), list(labels)), {}),
        (frame, {"label": "answer"}),
    ):
        result = await tune(data, k=[1, 3], workers=1, **options)
        assert result.dataset["classes"] == ["no", "yes"]
        assert [c.fold_accuracy for c in result.candidates] == [
            c.fold_accuracy for c in reference.candidates
        ]
    model = (await tune(frame, label="answer", k=[3], workers=1)).model()
    assert model.feature_names == ["p", "q", "r", "s"] and model.label == "answer"


async def test_a_text_column_in_a_data_frame_is_encoded_or_refused() -> None:
    frame = pd.DataFrame(
        {"a": [1.0, 2, 3, 4], "b": ["u", "v", "u", "v"], "c": ["x", "y", "x", "y"]}
    )
    encoded = await load_dataset(frame, label="c")
    assert encoded.feature_names == ["a", "b=u", "b=v"]
    assert encoded.X.tolist() == [[1, 1, 0], [2, 0, 1], [3, 1, 0], [4, 0, 1]]
    with pytest.raises(InputError, match="column 'b' holds"):
        await load_dataset(frame, label="c", csv_format=CsvFormat(categorical="error"))


ID_CSV = b"id,a,b,kind\n1,0.5,3,x\n2,0.7,1,y\n3,0.1,2,x\n4,0.9,5,y\n"


def test_columns_can_be_dropped_or_chosen_by_name_or_index() -> None:
    dropped = parse_csv(ID_CSV, csv_format=CsvFormat(drop=("id",)))
    assert dropped.feature_names == ["a", "b"] and dropped.other_columns == ["id"]
    np.testing.assert_array_equal(dropped.X, [[0.5, 3], [0.7, 1], [0.1, 2], [0.9, 5]])
    chosen = parse_csv(ID_CSV, csv_format=CsvFormat(keep=("b", 1)))
    assert chosen.feature_names == ["a", "b"] and chosen.other_columns == ["id"]
    with pytest.raises(InputError, match="drop 'zz' is not a column"):
        parse_csv(ID_CSV, csv_format=CsvFormat(drop=("zz",)))
    with pytest.raises(InputError, match="features names 'kind', the label"):
        parse_csv(ID_CSV, csv_format=CsvFormat(keep=("a", "kind")))
    with pytest.raises(InputError, match="give one of them, not both"):
        CsvFormat(drop=("id",), keep=("a",))


async def test_a_data_frame_takes_drop_and_features_too() -> None:
    frame = pd.read_csv(__import__("io").BytesIO(ID_CSV))
    dropped = await load_dataset(frame, label="kind", csv_format=CsvFormat(drop=("id",)))
    assert dropped.feature_names == ["a", "b"]
    chosen = await load_dataset(frame, label="kind", csv_format=CsvFormat(keep=("b",)))
    assert chosen.feature_names == ["b"]


def test_predict_ignores_the_columns_training_dropped(tmp_path: Path) -> None:
    train = tmp_path / "train.csv"
    train.write_bytes(ID_CSV)
    model = tmp_path / "m.knn"
    common = [sys.executable, "-m", "pipeline"]
    done = subprocess.run(
        [
            *common,
            "run",
            str(train),
            "--drop",
            "id",
            "--k",
            "1",
            "--cv",
            "kfold:2",
            "--quiet",
            "--workers",
            "1",
            "--save-model",
            str(model),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    done = subprocess.run(
        [
            *common,
            "predict",
            str(model),
            str(train),
            "--label",
            "kind",
            "--quiet",
            "--workers",
            "1",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["row,prediction", "0,x", "1,y", "2,x", "3,y"]
    assert "accuracy 1.0000 on 4 rows" in done.stderr


def test_rows_of_empty_cells_are_skipped_on_both_paths() -> None:
    plain = parse_csv(b"a,b,label\n1,2,x\n3,4,y\n,,\n")
    quoted = parse_csv(b'a,b,label\n1,2,"x"\n3,4,y\n,,\n')
    assert plain.rows == quoted.rows == 2


NUMERIC_NAMES = b"2019,2020,2021,species\n" + b"".join(
    f"{i},{i + 1},{i + 2},{'ab'[i % 2]}\n".encode() for i in range(8)
)


def test_a_header_of_numeric_names_is_read_as_a_header(caplog: pytest.LogCaptureFixture) -> None:
    dataset = parse_csv(NUMERIC_NAMES, source="years.csv")
    assert dataset.rows == 8 and dataset.classes == ["a", "b"]
    assert dataset.feature_names == ["2019", "2020", "2021"]
    assert "the first row's label 'species' is in no other row" in caplog.text
    assert "say it has no header (header=False) if it is data" in caplog.text


def test_the_header_warning_names_the_flag_on_the_command_line(tmp_path: Path) -> None:
    data = tmp_path / "years.csv"
    data.write_bytes(NUMERIC_NAMES)
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", str(data), "--k", "1", "--cv", "kfold:2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "say it has no header (--no-header) if it is data" in done.stderr
    assert "header=False" not in done.stderr


def test_no_header_keeps_a_numeric_first_row_as_data() -> None:
    dataset = parse_csv(NUMERIC_NAMES, source="years.csv", csv_format=CsvFormat(header=False))
    assert dataset.rows == 9 and "species" in dataset.classes


def test_a_first_row_whose_label_repeats_stays_data() -> None:
    rows = b"".join(f"{i},{i + 1},{'ab'[i % 2]}\n".encode() for i in range(8))
    assert parse_csv(rows, source="plain.csv").rows == 8
