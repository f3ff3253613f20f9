"""The compiled reading of plain CSV gives what the careful reading gives, or steps aside."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from pipeline.errors import InputError
from stages import _fastcsv, load
from stages.csv_text import CsvFormat
from stages.dataset import Dataset
from stages.load import parse_csv


def careful(raw: bytes, **options: Any) -> Dataset:
    """``parse_csv`` with the compiled pass switched off."""
    fast = load._fast_dataset
    load._fast_dataset = lambda *args: None  # type: ignore[assignment]
    try:
        return parse_csv(raw, **options)
    finally:
        load._fast_dataset = fast


def assert_same(raw: bytes, **options: Any) -> None:
    assert (
        load._fast_dataset(
            load.unpack(raw, "t"),
            options.get("csv_format") or CsvFormat(),
            "t",
            options.get("label"),
            options.get("group_column"),
        )
        is not None
    ), raw
    got, want = parse_csv(raw, **options), careful(raw, **options)
    assert np.array_equal(got.X, want.X) and got.X.dtype == want.X.dtype
    assert got.y.tolist() == want.y.tolist() and got.classes == want.classes
    assert got.feature_names == want.feature_names and got.label_name == want.label_name
    assert got.other_columns == want.other_columns
    assert (got.groups is None) == (want.groups is None)
    if got.groups is not None and want.groups is not None:
        assert got.groups.tolist() == want.groups.tolist()


@pytest.mark.parametrize(
    ("raw", "options"),
    [
        (b"a,b,label\n1,2,x\n3,4,y\n", {}),
        (b"\xef\xbb\xbfa;b;label\r\n1.5;-2;x\r\n+3; .5 ;y\r\n\r\n;;\n", {}),
        (b"meta data line\na,b,label\n1e5,2,x\n3,4E-3,y\n", {"csv_format": CsvFormat(skip_rows=1)}),
        (b"1,2,x\n3,4,y\n", {"csv_format": CsvFormat(header=False)}),
        (
            b"id,a,kind,b\n1,0.5,x,3\n2,0.7,y,1\n",
            {"label": "kind", "csv_format": CsvFormat(drop=("id",))},
        ),
        (b"a,fold,b,label\n1,f1,2, x \n3,f2,4,y\n5,f1,6,x\n", {"group_column": "fold"}),
        (b"a|b|label\n1|2|caf\xc3\xa9\n3|4|th\xc3\xa9\n", {}),
        (b"a\tb\tlabel\n0.1\t0.2\t1\n0.3\t0.4\t2\n", {}),
    ],
)
def test_the_compiled_pass_reads_as_the_careful_one(raw: bytes, options: dict[str, Any]) -> None:
    assert_same(raw, **options)


@pytest.mark.parametrize(
    "raw",
    [
        b'a,b,label\n1,"2",x\n3,4,y\n',  # quotes
        b"a,b,label\n1,1_000,x\n3,4,y\n",  # Python's float reads 1_000
        b"a,b,label\n1,1e-400,x\n3,4,y\n",  # underflows to 0
        b"a,b,label\n1,2,x\n3,4\n",  # a short row
        b"a,b,label\n1,NA,x\n3,4,y\n",  # a missing value
        b"a,b,label\n1,2,\n3,4,y\n",  # an empty label
        b"a,b,label\r1,2,x\r3,4,y\r",  # lone carriage returns
    ],
)
def test_the_compiled_pass_steps_aside_for_the_careful_one(raw: bytes) -> None:
    assert load._fast_dataset(raw, CsvFormat(), "t", None, None) is None
    try:
        want: Dataset | str = careful(raw, allow_missing=True)
    except InputError as error:
        want = str(error)
    try:
        got: Dataset | str = parse_csv(raw, allow_missing=True)
    except InputError as error:
        got = str(error)
    if isinstance(want, str):
        assert got == want
    else:
        assert isinstance(got, Dataset) and np.array_equal(got.X, want.X, equal_nan=True)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(
            st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=3, max_size=3
        ),
        min_size=2,
        max_size=20,
    ),
    st.sampled_from([repr, lambda v: f"{v:.6g}", lambda v: f"{v:e}", lambda v: f" {v!r} "]),
)
def test_every_float_reads_back_as_pythons_float_reads_it(
    rows: list[list[float]], show: Any
) -> None:
    lines = ["a,b,c,label"] + [",".join(show(v) for v in row) + ",k" for row in rows]
    raw = ("\n".join(lines) + "\n").encode()
    data = parse_csv(raw)
    expected = [[float(show(v)) for v in row] for row in rows]
    assert data.X.tolist() == expected


def test_the_compiled_entry_refuses_what_it_cannot_read() -> None:
    X, spans = np.empty((2, 1)), np.empty((2, 1, 2), np.intp)
    columns = np.array([0], np.intp)
    assert _fastcsv.parse(b"1,x\n2,y\n", ",", 2, columns, np.array([1], np.intp), X, spans) == (
        2,
        -1,
    )
    assert X[:, 0].tolist() == [1.0, 2.0] and spans[:, 0].tolist() == [[2, 3], [6, 7]]
    assert _fastcsv.parse(
        b"1,x\n2,y\n3,z\n", ",", 2, columns, np.array([1], np.intp), X, spans
    ) == (2, 2)
    with pytest.raises(ValueError, match="out of range"):
        _fastcsv.parse(b"1,x\n", ",", 2, np.array([5], np.intp), np.array([1], np.intp), X, spans)
    with pytest.raises(TypeError):
        _fastcsv.parse(b"1,x\n", ",", 2, columns.astype(np.int32), np.array([1], np.intp), X, spans)
