"""Every input parser either succeeds or raises InputError with a one-line message.

Property-based: the parsers get arbitrary bytes and text, near-miss specs and
small random data sets. Any other exception type, or a message that spans
several lines, fails the test. On success the result is checked as well.
"""

from __future__ import annotations

import csv
import inspect
import io
import math
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from pipeline.errors import InputError
from stages.cli import build_parser, main
from stages.dataset import Dataset
from stages.load import parse_csv
from stages.metrics import METRIC_REGISTRY
from stages.partition import CvSpec, Folds, make_folds, parse_cv
from stages.search_space import MAX_K, METRICS, WEIGHTS, parse_k, parse_metrics, parse_weights

T = TypeVar("T")

CHEAP = settings(max_examples=300, deadline=None)
MEDIUM = settings(max_examples=150, deadline=None)


# -- the rule ------------------------------------------------------------------------------


def assert_one_line(message: str) -> None:
    assert message.strip(), "the error message is empty"
    assert "\n" not in message and "\r" not in message, f"multi-line message: {message!r}"


def attempt(parse: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """``parse(...)``, or None when it raised InputError (whose message is checked).

    Any other exception propagates and fails the test.
    """
    try:
        return parse(*args, **kwargs)
    except InputError as error:
        assert_one_line(str(error))
        return None


def test_input_error_is_a_value_error() -> None:
    assert issubclass(InputError, ValueError)


# -- strategies: CSV ------------------------------------------------------------------------

NUMBERS = [
    "0", "1", "-1", "2.5", "-0", "+3", ".5", "5.", "1_0", " 3 ", "0x1", "1e308", "-1e308",
    "1e999", "-1e999", "1e-400", "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "\u0661\u0662",
]  # fmt: skip
WORDS = ["a", "b", "cat", "dog", "label", "class", "x y", "é", "ß", "Nan", "None", "true"]
ODD = [
    "", " ", '"', '""', '"a', 'a"b', ",", "\n", "\r", "\r\n", "a\nb", "\ufeff", "\x00", "\t", ";",
]  # fmt: skip

any_cell = st.one_of(
    st.sampled_from(NUMBERS),
    st.sampled_from(WORDS),
    st.sampled_from(ODD),
    st.integers(-(10**6), 10**6).map(str),
    st.floats().map(repr),
    st.text(max_size=4),
)
number_cell = st.one_of(
    st.integers(-100, 100).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(NUMBERS),
)
finite_number_cell = st.one_of(
    st.integers(-100, 100).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)
mostly_number_cell = st.one_of(number_cell, number_cell, number_cell, any_cell)
label_cell = st.one_of(st.sampled_from(WORDS), st.sampled_from(["0", "1", "2", "nan", ""]))


@st.composite
def render_csv(draw: st.DrawFn, rows: list[list[str]]) -> bytes:
    """Rows as CSV text: quoted by csv.writer or naively joined, any line endings."""
    ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    style = draw(st.sampled_from(["minimal", "all", "naive"]))
    if style == "naive":
        text = ending.join(",".join(row) for row in rows)
    else:
        buffer = io.StringIO(newline="")
        quoting = csv.QUOTE_ALL if style == "all" else csv.QUOTE_MINIMAL
        csv.writer(buffer, lineterminator=ending, quoting=quoting).writerows(rows)
        text = buffer.getvalue()
    if draw(st.booleans()):
        text = text.rstrip("\r\n")
    if draw(st.booleans()):
        text = "\ufeff" + text
    return text.encode("utf-8")


def column_spec(names: list[str]) -> st.SearchStrategy[str | int | None]:
    return st.one_of(
        st.none(),
        st.integers(-8, 8),
        st.sampled_from(names) if names else st.nothing(),
        st.sampled_from(["0", "1", "-1", "99", "label", " 1", "1.0", "9" * 5000]),
        st.text(max_size=3),
    )


@st.composite
def messy_csv(draw: st.DrawFn) -> tuple[bytes, str | int | None, str | None]:
    """Rows of cells drawn from numbers, words and CSV-special characters."""
    rows = draw(st.lists(st.lists(any_cell, min_size=1, max_size=5), max_size=8))
    raw = draw(render_csv(rows))
    names = [c.strip() for c in rows[0]] if rows else []
    label = draw(column_spec(names))
    group = draw(st.one_of(st.none(), st.sampled_from(names) if names else st.nothing()))
    return raw, label, group


@st.composite
def table_csv(draw: st.DrawFn) -> tuple[bytes, str | int | None, str | None]:
    """A rectangular table, mostly numbers, with a header sometimes: often parses."""
    width = draw(st.integers(1, 4))
    names = draw(
        st.lists(
            st.one_of(
                st.sampled_from(WORDS),
                st.sampled_from(["f0", "f1", "y", "fold"]),
                st.sampled_from(ODD),
                st.sampled_from(["a\nb", "two\r\nlines", "end\rx"]),
                st.text(max_size=3),
            ),
            min_size=width,
            max_size=width,
        )
    )
    label_at = draw(st.integers(0, width - 1))
    cells = draw(st.sampled_from([finite_number_cell, mostly_number_cell]))
    body = []
    for _ in range(draw(st.integers(1, 6))):
        row = draw(st.lists(cells, min_size=width, max_size=width))
        row[label_at] = draw(label_cell)
        body.append(row)
    with_header = draw(st.booleans())
    rows = [names, *body] if with_header else body
    raw = draw(render_csv(rows))
    present = st.sampled_from([n.strip() for n in names]) if with_header else st.nothing()
    label = draw(st.one_of(st.none(), present, st.integers(-width, width - 1), column_spec(names)))
    group = draw(st.one_of(st.none(), present, st.sampled_from(["fold", "nope", "0"])))
    return raw, label, group


CAN_ALLOW_MISSING = "allow_missing" in inspect.signature(parse_csv).parameters
allow_missing_flags = st.booleans() if CAN_ALLOW_MISSING else st.just(False)


def check_dataset(dataset: Dataset, group_column: str | None, allow_missing: bool = False) -> None:
    X, y = dataset.X, dataset.y
    assert isinstance(dataset, Dataset)
    assert X.dtype == np.float64 and X.ndim == 2
    assert X.shape[0] > 0 and X.shape[1] >= 1
    assert not np.isinf(X).any()
    if not allow_missing:
        assert np.isfinite(X).all()
    assert y.ndim == 1 and len(y) == X.shape[0]
    assert np.issubdtype(y.dtype, np.integer)
    assert all(isinstance(c, str) for c in dataset.classes)
    assert len(set(dataset.classes)) == len(dataset.classes)
    assert y.min() >= 0 and y.max() < len(dataset.classes)
    assert set(y.tolist()) == set(range(len(dataset.classes))), "a class no row has"
    assert len(dataset.feature_names) == X.shape[1]
    if group_column is None:
        assert dataset.groups is None
    else:
        assert dataset.groups is not None and len(dataset.groups) == X.shape[0]


def drive_csv(
    raw: bytes, label: str | int | None, group: str | None, allow_missing: bool = False
) -> None:
    options: dict[str, Any] = {"allow_missing": True} if allow_missing else {}
    dataset = attempt(parse_csv, raw, label=label, group_column=group, **options)
    if dataset is not None:
        check_dataset(dataset, group, allow_missing)


# -- parse_csv ------------------------------------------------------------------------------


@CHEAP
@given(raw=st.binary(max_size=300), label=column_spec([]))
def test_parse_csv_arbitrary_bytes(raw: bytes, label: str | int | None) -> None:
    drive_csv(raw, label, None)


@CHEAP
@given(text=st.text(max_size=300), label=column_spec([]))
def test_parse_csv_arbitrary_text(text: str, label: str | int | None) -> None:
    drive_csv(text.encode("utf-8"), label, None)


@CHEAP
@given(case=messy_csv(), allow_missing=allow_missing_flags)
def test_parse_csv_messy_rows(
    case: tuple[bytes, str | int | None, str | None], allow_missing: bool
) -> None:
    drive_csv(*case, allow_missing)


@CHEAP
@given(case=table_csv(), allow_missing=allow_missing_flags)
def test_parse_csv_tables(
    case: tuple[bytes, str | int | None, str | None], allow_missing: bool
) -> None:
    drive_csv(*case, allow_missing)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.data_too_large])
@given(length=st.one_of(st.integers(1, 1000), st.integers(100_000, 300_000)), quoted=st.booleans())
def test_parse_csv_long_cells(length: int, quoted: bool) -> None:
    cell = "x" * length
    line = f'1,"{cell}"' if quoted else f"1,{cell}"
    drive_csv(f"f,label\n{line}\n2,b\n".encode(), None, None)


CleanTable = tuple[list[list[float]], list[str], int, list[str] | None]


@st.composite
def clean_tables(draw: st.DrawFn) -> CleanTable:
    """Finite features, word labels at any column, and sometimes a column of folds."""
    features_wide = draw(st.integers(1, 4))
    n = draw(st.integers(1, 8))
    finite = st.floats(allow_nan=False, allow_infinity=False)
    row = st.lists(finite, min_size=features_wide, max_size=features_wide)
    features = draw(st.lists(row, min_size=n, max_size=n))
    labels = draw(st.lists(st.sampled_from(["cat", "dog", "owl"]), min_size=n, max_size=n))
    label_at = draw(st.integers(0, features_wide))
    fold_values = st.sampled_from(["a", "b", "train", "test", " 1 "])
    groups = draw(st.none() | st.lists(fold_values, min_size=n, max_size=n))
    return features, labels, label_at, groups


@CHEAP
@given(table=clean_tables(), by_name=st.booleans(), negative=st.booleans())
def test_parse_csv_reads_back_a_clean_table(
    table: CleanTable, by_name: bool, negative: bool
) -> None:
    features, labels, label_at, groups = table
    width = len(features[0]) + 1 + (groups is not None)
    names = [f"col{i}" for i in range(width)]
    rows = [names]
    for number, (values, label) in enumerate(zip(features, labels, strict=True)):
        cells = [repr(v) for v in values]
        cells.insert(label_at, label)
        if groups is not None:
            cells.append(groups[number])
        rows.append(cells)
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    spec: str | int = names[label_at] if by_name else label_at - (width if negative else 0)
    group_column = names[-1] if groups is not None else None
    dataset = parse_csv(buffer.getvalue().encode(), label=spec, group_column=group_column)
    check_dataset(dataset, group_column)
    assert dataset.X.tolist() == features
    assert dataset.classes == sorted(set(labels))
    assert [dataset.classes[i] for i in dataset.y] == labels
    feature_at = [i for i in range(width) if i != label_at and names[i] != group_column]
    assert dataset.feature_names == [names[i] for i in feature_at]
    if groups is not None:
        assert dataset.groups is not None
        assert dataset.groups.tolist() == [g.strip() for g in groups]


# -- parse_k ---------------------------------------------------------------------------------

k_alphabet = st.sampled_from([*"0123456789-:, ", "", "+", "x", "\u0663", "\n", "\u2003"])
k_like = st.lists(k_alphabet, max_size=14).map("".join)
long_number = st.integers(1, 6000).map(lambda n: "1" * n)
k_specs = st.one_of(
    st.text(max_size=20),
    k_like,
    long_number,
    st.tuples(long_number, long_number).map("-".join),
)


@CHEAP
@given(spec=k_specs)
def test_parse_k_any_text(spec: str) -> None:
    ks = attempt(parse_k, spec)
    if ks is not None:
        assert isinstance(ks, tuple) and ks
        assert all(type(k) is int for k in ks)
        assert list(ks) == sorted(set(ks))
        assert ks[0] >= 1 and ks[-1] <= MAX_K


@CHEAP
@given(ks=st.lists(st.integers(1, MAX_K), min_size=1, max_size=20), spaces=st.booleans())
def test_parse_k_lists_round_trip(ks: list[int], spaces: bool) -> None:
    spec = (", " if spaces else ",").join(map(str, ks))
    assert parse_k(spec) == tuple(sorted(set(ks)))


@CHEAP
@given(low=st.integers(1, 3000), span=st.integers(0, 3000), step=st.integers(1, 500))
def test_parse_k_ranges_round_trip(low: int, span: int, step: int) -> None:
    high = low + span
    assert parse_k(f"{low}-{high}:{step}") == tuple(range(low, high + 1, step))
    assert parse_k(f"{low}-{high}") == tuple(range(low, high + 1))


@CHEAP
@given(
    bad=st.one_of(st.just(0), st.integers(MAX_K + 1, 10**30)),
    good=st.lists(st.integers(1, 50), max_size=3),
)
def test_parse_k_rejects_out_of_range(bad: int, good: list[int]) -> None:
    with pytest.raises(InputError) as raised:
        parse_k(",".join(map(str, [*good, bad])))
    assert_one_line(str(raised.value))


# -- parse_metrics / parse_weights ----------------------------------------------------------


def name_lists(names: tuple[str, ...]) -> st.SearchStrategy[str]:
    item = st.one_of(
        st.sampled_from(names),
        st.sampled_from(names).map(str.upper),
        st.sampled_from(names).map(lambda n: f" {n} "),
        st.sampled_from(["", " ", "x", "euclid", "uniform ", "distance\n"]),
        st.text(max_size=4),
    )
    return st.one_of(
        st.lists(item, max_size=5).map(",".join),
        st.text(max_size=20),
    )


@pytest.mark.parametrize(
    ("parse", "names"),
    [(parse_metrics, tuple(METRIC_REGISTRY)), (parse_weights, WEIGHTS)],
    ids=["metrics", "weights"],
)
@CHEAP
@given(data=st.data())
def test_parse_name_lists_any_text(
    parse: Callable[[str], tuple[str, ...]], names: tuple[str, ...], data: st.DataObject
) -> None:
    """Any text: refused in one line, or read as known names (every metric the registry
    has, not only the default four; a Minkowski power after the colon), each once."""
    spec = data.draw(name_lists(names))
    parsed = attempt(parse, spec)
    if parsed is not None:
        assert isinstance(parsed, tuple) and parsed
        bases = [p.split(":")[0] for p in parsed]
        assert set(bases) <= set(names)
        assert len(set(parsed)) == len(parsed)
        assert bases == [p.strip().lower().split(":")[0] for p in spec.split(",")]


@pytest.mark.parametrize(
    ("parse", "names"),
    [(parse_metrics, METRICS), (parse_weights, WEIGHTS)],
    ids=["metrics", "weights"],
)
@CHEAP
@given(data=st.data())
def test_parse_name_lists_round_trip(
    parse: Callable[[str], tuple[str, ...]], names: tuple[str, ...], data: st.DataObject
) -> None:
    chosen = data.draw(
        st.permutations(names).flatmap(lambda p: st.integers(1, len(p)).map(lambda n: p[:n]))
    )
    assert parse(",".join(chosen)) == tuple(chosen)
    doubled = [*chosen, data.draw(st.sampled_from(chosen))]
    with pytest.raises(InputError) as raised:
        parse(",".join(doubled))
    assert_one_line(str(raised.value))


# -- parse_cv --------------------------------------------------------------------------------

cv_specs = st.one_of(
    st.text(max_size=20),
    long_number.map(lambda digits: f"kfold:{digits}"),
    st.tuples(
        st.sampled_from(["kfold", "KFold", "holdout", "loo", "LOO", "column", "x", "", " kfold"]),
        st.sampled_from([":", "", "::", " : "]),
        st.one_of(
            st.text(max_size=6),
            st.integers(-5, 10**6).map(str),
            st.floats().map(repr),
            st.sampled_from(["nan", "inf", "1e-400", "0.5", " 3 ", "\u0663", "1_0", "0x2", "a\nb"]),
            long_number,
        ),
    ).map("".join),
)


@CHEAP
@given(spec=cv_specs)
def test_parse_cv_any_text(spec: str) -> None:
    cv = attempt(parse_cv, spec)
    if cv is not None:
        assert isinstance(cv, CvSpec)
        assert cv.kind in {"kfold", "holdout", "loo", "column"}
        if cv.kind == "kfold":
            assert type(cv.n_splits) is int and cv.n_splits >= 2
        if cv.kind == "holdout":
            assert 0.0 < cv.test_size < 1.0
        if cv.kind == "column":
            assert cv.column and cv.column == cv.column.strip()
        assert parse_cv(str(cv)) == cv


@CHEAP
@given(n=st.integers(0, 10**9 - 1), fraction=st.floats(0, 1))
def test_parse_cv_round_trips(n: int, fraction: float) -> None:
    if n >= 2:
        assert parse_cv(f"kfold:{n}") == CvSpec("kfold", n_splits=n)
    else:
        with pytest.raises(InputError):
            parse_cv(f"kfold:{n}")
    if 0.0 < fraction < 1.0:
        assert parse_cv(f"holdout:{fraction!r}") == CvSpec("holdout", test_size=fraction)
    else:
        with pytest.raises(InputError):
            parse_cv(f"holdout:{fraction!r}")


# -- make_folds ------------------------------------------------------------------------------

GROUP_VALUES = ["train", "test", "Train", "TEST", "a", "b", "c", "1", "01"]


@st.composite
def small_datasets(draw: st.DrawFn) -> Dataset:
    counts = draw(st.lists(st.integers(1, 8), min_size=1, max_size=4))
    labels = draw(st.permutations([c for c, size in enumerate(counts) for _ in range(size)]))
    n = len(labels)
    groups = draw(
        st.one_of(
            st.none(),
            st.lists(st.sampled_from(GROUP_VALUES), min_size=n, max_size=n).map(
                lambda values: np.array(values, dtype=object)
            ),
        )
    )
    return Dataset(
        X=np.arange(2 * n, dtype=np.float64).reshape(n, 2),
        y=np.array(labels, dtype=np.intp),
        classes=[f"class{c}" for c in range(len(counts))],
        source="<random>",
        groups=groups,
    )


cv_values = st.one_of(
    st.integers(2, 35).map(lambda n: CvSpec("kfold", n_splits=n)),
    st.one_of(
        st.floats(0, 1, exclude_min=True, exclude_max=True),
        st.sampled_from([1e-300, 0.01, 0.5, 0.99, 1 - 1e-16]),
    ).map(lambda f: CvSpec("holdout", test_size=f)),
    st.just(CvSpec("loo")),
    st.just(CvSpec("column", column="fold")),
)


def check_folds(folds: Folds, dataset: Dataset, cv: CvSpec, seed: int) -> None:
    n = dataset.rows
    rows = np.arange(n)
    assert folds.kind == cv.kind and folds.seed == seed and folds.folds
    assert folds.fold_of_row.shape == (n,)
    tested = np.zeros(n, dtype=int)
    for number, fold in enumerate(folds.folds):
        assert fold.train.size and fold.test.size
        assert np.isin(fold.train, rows).all() and np.isin(fold.test, rows).all()
        assert np.intersect1d(fold.train, fold.test).size == 0
        assert (np.diff(fold.train) > 0).all() and (np.diff(fold.test) > 0).all()
        if cv.kind != "holdout":
            assert np.array_equal(np.union1d(fold.train, fold.test), rows), fold.id
        assert (folds.fold_of_row[fold.test] == number).all()
        tested[fold.test] += 1
    assert tested.max() <= 1, "a row is tested more than once"
    assert ((folds.fold_of_row == -1) == (tested == 0)).all()
    if cv.kind in ("kfold", "loo"):
        assert (tested == 1).all(), "a row is never tested"
    if cv.kind == "kfold":
        assert len(folds.folds) == cv.n_splits
    if cv.kind == "loo":
        assert len(folds.folds) == n


@MEDIUM
@given(dataset=small_datasets(), cv=cv_values, seed=st.integers(0, 2**32 - 1))
def test_make_folds_splits_or_says_why(dataset: Dataset, cv: CvSpec, seed: int) -> None:
    folds = attempt(make_folds, dataset, cv, seed)
    if folds is not None:
        check_folds(folds, dataset, cv, seed)


# -- the command line ------------------------------------------------------------------------

VALID_OPTIONS = {
    "--k": ["3", "1-5", "1,3"],
    "--cv": ["kfold:3", "loo", "holdout:0.3"],
    "--metrics": ["euclidean", "manhattan,chebyshev"],
    "--weights": ["uniform", "distance"],
    "--workers": ["1", "2"],
    "--top": ["1", "5"],
    "--seed": ["0", "7"],
}
GARBAGE = [
    "", " ", "0", "-1", "-0", "--", "-", "--quiet", "-h", "1-", "1-0", "0-3", "a\nb", "x\r\ny",
    "1e3", "1.5", "kfold:1", "kfold:x", "holdout:1", "holdout:nan", "loo\n", "column:", "euclid",
    "uniform,uniform", "uniform,", "4294967296", "\u0661", "9" * 40,
]  # fmt: skip
garbage_values = st.one_of(st.text(max_size=8), st.sampled_from(GARBAGE))


CHOICES = ["", "", "valid", "valid", "garbage"]


@st.composite
def run_argvs(draw: st.DrawFn) -> list[str]:
    """``run`` with garbage in at least one of the options, the rest valid or left out."""
    forced = draw(st.sampled_from(sorted(VALID_OPTIONS)))
    pairs = []
    for option, valid in VALID_OPTIONS.items():
        choice = "garbage" if option == forced else draw(st.sampled_from(CHOICES))
        if not choice:
            continue
        value = draw(garbage_values if choice == "garbage" else st.sampled_from(valid))
        joined = draw(st.booleans())
        pairs.append([f"{option}={value}"] if joined else [option, value])
    return ["run", *(part for pair in draw(st.permutations(pairs)) for part in pair)]


def starts_a_run(argv: list[str]) -> bool:
    """Whether every option is valid, so ``main`` would tune for real."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit:
        return False
    try:
        parse_k(args.k)
        parse_metrics(args.metrics)
        parse_weights(args.weights)
        parse_cv(args.cv)
    except Exception:
        return False
    return True


def run_main(argv: list[str]) -> int | str | None:
    try:
        return main(argv)
    except SystemExit as exit_:
        return exit_.code


def assert_usage_error(status: int | str | None, err: str) -> None:
    assert status == 2, f"exit status {status!r}; stderr: {err!r}"
    assert err.endswith("\n") and err.count("\n") == 1, f"stderr is not one line: {err!r}"
    assert "\r" not in err, f"stderr is not one line: {err!r}"
    assert err.strip()


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(argv=run_argvs())
def test_cli_garbage_options_exit_2_with_one_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assume(not starts_a_run(argv))
    capsys.readouterr()
    status = run_main(argv)
    assert_usage_error(status, capsys.readouterr().err)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    digits=st.lists(st.one_of(st.integers(7, 60), st.integers(4000, 6000)), min_size=3, max_size=3),
    joined=st.booleans(),
)
def test_cli_huge_numbers_exit_2_with_one_line(
    digits: list[int], joined: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    k, cv, top = ("1" * length for length in digits)
    pairs = [("--k", k), ("--cv", f"kfold:{cv}"), ("--top", top)]
    argv = ["run"]
    for option, value in pairs:
        argv += [f"{option}={value}"] if joined else [option, value]
    capsys.readouterr()
    status = run_main(argv)
    assert_usage_error(status, capsys.readouterr().err)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    extra=st.lists(
        st.one_of(st.text(max_size=6), st.sampled_from(["a\nb", "x y", "\r"])).filter(
            lambda s: not s.startswith("-")
        ),
        min_size=1,
        max_size=3,
    ),
    after_dashes=st.booleans(),
)
def test_cli_stray_arguments_exit_2_with_one_line(
    extra: list[str], after_dashes: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", "--k=0", "iris", *(["--"] if after_dashes else []), *extra]
    capsys.readouterr()
    status = run_main(argv)
    assert_usage_error(status, capsys.readouterr().err)


def test_finite_feature_bounds_are_kept() -> None:
    dataset = parse_csv(b"f,label\n1e308,a\n-1e308,b\n")
    assert dataset.X[:, 0].tolist() == [1e308, -1e308]
    assert all(math.isfinite(v) for v in dataset.X.ravel())
