"""Load a labelled data set: a CSV file, a NumPy ``.npy``/``.npz`` file, or a built-in.

CSV is read with :mod:`aiofiles` so a large file never blocks the event loop,
then parsed by :mod:`csv`. Every problem becomes an :class:`InputError` that
names the file, the line and the column, and says how to fix it.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import dataclasses
import io
import logging
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiofiles
import numpy as np
import numpy.typing as npt

from pipeline.abandonable import run_abandonable
from pipeline.errors import InputError, option_name
from pipeline.files import is_special_file

from . import _fastcsv
from .builtin_data import BUILTIN_DATASETS, read_builtin
from .csv_text import (
    DELIMITERS,
    CsvFormat,
    decode,
    detect_delimiter,
    parse_numbers,
    strict_float,
    unpack,
)
from .dataset import Dataset
from .encoding import Encoding, TextColumn

log = logging.getLogger(__name__)

__all__ = [
    "BUILTIN_DATASETS",
    "dataset_from_arrays",
    "describe_column",
    "encode_labels",
    "load_dataset",
    "parse_csv",
]


MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "?"})
"""Cell texts (compared lower-case) that mean "no value"."""


async def load_dataset(
    source: str | os.PathLike[str] | Any,
    *,
    label: str | int | None = None,
    group_column: str | None = None,
    allow_missing: bool = False,
    csv_format: CsvFormat | None = None,
) -> Dataset:
    """Load ``source``: a built-in name, a CSV (plain or gzip) or ``.npy``/``.npz`` path,
    ``-`` for a CSV on standard input, an ``(X, y)`` pair or a pandas DataFrame.

    ``label`` picks the label column by header name or 0-based index (default:
    the last column); ``group_column`` names a column of predefined folds that
    is kept out of the features; ``csv_format`` says how to read a CSV.
    """
    from .tables import dataset_from_frame, dataset_from_pair, is_frame, is_pair

    if is_pair(source):
        return await asyncio.to_thread(dataset_from_pair, source)
    if is_frame(source):
        fmt = csv_format or CsvFormat()
        return await asyncio.to_thread(
            dataset_from_frame, source, label, "<DataFrame>", fmt.drop, fmt.keep, fmt.categorical
        )
    if not isinstance(source, str | os.PathLike):
        raise InputError(
            f"data: cannot read a {type(source).__name__}; give a path, a built-in name, "
            "(X, y), a pandas DataFrame or a Dataset"
        )
    text = os.fspath(source)
    if text == "-":
        raw = await run_abandonable(sys.stdin.buffer.read)  # a terminal may never send EOF
        return await asyncio.to_thread(
            parse_csv,
            raw,
            source="<stdin>",
            label=label,
            group_column=group_column,
            allow_missing=allow_missing,
            csv_format=csv_format,
        )
    if text in BUILTIN_DATASETS and not Path(text).exists():
        return await asyncio.to_thread(_load_builtin, text, label, group_column)
    path = Path(text)
    if not path.exists():
        names = ", ".join(BUILTIN_DATASETS)
        raise InputError(f"{text}: no such file; give a CSV/.npy/.npz path or one of {names}")
    if path.is_dir():
        raise InputError(f"{text}: is a directory; give a CSV/.npy/.npz file")
    suffix = path.suffix.lower()
    if suffix in (".npy", ".npz"):
        if group_column is not None:
            raise InputError(f"{text}: `cv` column:NAME needs a CSV file with a header")
        return await asyncio.to_thread(_load_numpy, path, label, allow_missing)
    try:
        if is_special_file(path):  # a FIFO or device: its open and reads may never return
            raw = await run_abandonable(path.read_bytes)
        else:
            async with aiofiles.open(path, "rb") as handle:
                raw = await handle.read()
    except OSError as error:
        raise InputError(
            f"{text}: cannot read ({error.strerror}); check the path and permissions"
        ) from None
    # Parsing is CPU work: keep it off the event loop so the host application stays responsive.
    return await asyncio.to_thread(
        parse_csv,
        raw,
        source=text,
        label=label,
        group_column=group_column,
        allow_missing=allow_missing,
        csv_format=csv_format,
    )


def parse_csv(
    raw: bytes,
    *,
    source: str = "<csv>",
    label: str | int | None = None,
    group_column: str | None = None,
    allow_missing: bool = False,
    csv_format: CsvFormat | None = None,
) -> Dataset:
    """Parse CSV bytes (gzip or not) into a :class:`Dataset`.

    The delimiter and the header are detected unless ``csv_format`` says;
    ``csv_format.skip_rows`` lines are dropped first. Empty cells and the
    tokens in :data:`MISSING_TOKENS` are missing values: an error, or NaN
    with ``allow_missing``. Infinity is always an error.

    A first row of numbers is data, unless its label is one no other row has
    while every other label repeats: then it is a header of numeric names
    (``2019,2020,2021,species``), read as such with a notice.
    """
    fmt = csv_format or CsvFormat()
    options: dict[str, Any] = {
        "source": source,
        "label": label,
        "group_column": group_column,
        "allow_missing": allow_missing,
    }
    dataset = _parse_csv(raw, csv_format=fmt, **options)
    if fmt.header is None and dataset.label_name is None and _label_names_a_column(dataset):
        header = option_name("header")  # --no-header on the command line
        log.warning(
            "%s: the first row's label %r is in no other row, so the first row is read as "
            "column names; say it has no header (%s) if it is data",
            source,
            dataset.classes[int(dataset.y[0])],
            header if header.startswith("-") else f"{header}=False",
        )
        return _parse_csv(raw, csv_format=dataclasses.replace(fmt, header=True), **options)
    return dataset


def _label_names_a_column(dataset: Dataset) -> bool:
    """Whether the first row's label is unlike every other: once, where the rest repeat."""
    counts = np.bincount(dataset.y, minlength=len(dataset.classes))
    first = int(dataset.y[0])
    others = np.delete(counts, first)
    return bool(dataset.rows >= 3 and counts[first] == 1 and others.size and others.min() >= 2)


def _parse_csv(
    raw: bytes,
    *,
    source: str = "<csv>",
    label: str | int | None = None,
    group_column: str | None = None,
    allow_missing: bool = False,
    csv_format: CsvFormat | None = None,
) -> Dataset:
    """:func:`parse_csv`, the header decided from the first two rows alone."""
    fmt = csv_format or CsvFormat()
    raw = unpack(raw, source)
    fast = _fast_dataset(raw, fmt, source, label, group_column)
    if fast is not None:
        return fast
    text = decode(raw, source).replace("\r\n", "\n")
    lines = [
        (number, line)
        for number, line in enumerate(text.split("\n"), start=1)
        if number > fmt.skip_rows and line.strip()
    ]
    if not lines:
        skipped = f" after skipping {fmt.skip_rows} lines" if fmt.skip_rows else ""
        raise InputError(
            f"{source}: the file is empty{skipped}; it needs rows of features and a label"
        )
    delimiter = fmt.delimiter or detect_delimiter([line for _, line in lines])
    # A row of empty cells (``,,`` at the end of a spreadsheet's export) is no row.
    lines = [(number, line) for number, line in lines if line.replace(delimiter, "").strip()]
    if not lines:
        raise InputError(f"{source}: the file is empty; it needs rows of features and a label")
    # Quotes, lone carriage returns and NUL bytes need the csv module's full reading.
    plain = not any(c in text for c in '"\r\x00')
    if plain:
        numbered = [(number, line.split(delimiter)) for number, line in lines[:2]]
    else:
        numbered = _csv_rows(text, source, delimiter, fmt.skip_rows)
        lines = []
    if not numbered:
        raise InputError(f"{source}: the file is empty; it needs rows of features and a label")
    layout = _layout(numbered, fmt, source, label, group_column)
    if layout.named:
        numbered, lines = numbered[1:], lines[1:]
        if not (lines if plain else numbered):
            raise InputError(f"{source}: has a header but no data rows; add rows below the header")
    names, width = layout.names, len(layout.names)
    label_at, group_at, feature_at = layout.label_at, layout.group_at, layout.feature_at
    if not feature_at:
        others = [d for d in DELIMITERS if d != delimiter and d in (lines or numbered)[0][1]]
        hint = f" (the file may use {others[0]!r}: `delimiter` {others[0]!r})" if others else ""
        raise InputError(
            f"{source}: no feature columns left besides the label{hint}; add feature columns"
        )
    X = parse_numbers([line for _, line in lines], delimiter, feature_at, width) if plain else None
    encoding = None
    if X is None:  # the careful reading: every cell, so the first bad one is named
        if plain:
            numbered = [(number, line.split(delimiter)) for number, line in lines]
        _check_widths(numbered, width, source)
        text_at = _text_columns(numbered, feature_at, fmt.categorical, source, names)
        numeric_at = [at for at in feature_at if at not in text_at]
        X = _careful_features(numbered, width, numeric_at, source, names, allow_missing)
        if text_at:
            encoding, X = _one_hot(numbered, feature_at, text_at, X, source, names)
            log.warning("%s: %s", source, encoding.notice())
        column = [(number, row[label_at]) for number, row in numbered]
    else:  # every row has ``width`` cells: cut out just the label's
        column = [(number, _cell_at(line, delimiter, label_at, width)) for number, line in lines]
    labels = [cell.strip() for _, cell in column]
    for (number, _), value in zip(column, labels, strict=True):
        if not value:
            raise InputError(
                f"{source}:{number}: column {names[label_at]!r} (the label) is empty; "
                "every row needs a label"
            )
    groups = None
    if group_at is not None:
        cells = (
            [_cell_at(line, delimiter, group_at, width) for _, line in lines]
            if lines and len(lines) == len(labels)
            else [row[group_at] for _, row in numbered]
        )
        groups = [cell.strip() for cell in cells]
    return layout.dataset(X, labels, groups, source, encoding)


@dataclass(frozen=True)
class _Layout:
    """Which columns of a CSV are what: their names (from a header, when ``named``, else
    ``0, 1, ...``), the label, the fold column and the features."""

    names: list[str]
    named: bool
    label_at: int
    group_at: int | None
    feature_at: list[int]

    def dataset(
        self,
        X: npt.NDArray[np.float64],
        labels: list[str],
        groups: list[str] | None,
        source: str,
        encoding: Encoding | None = None,
    ) -> Dataset:
        """The data set of these columns' values: features, label and fold cells."""
        y, classes = encode_labels(labels)
        names = self.names
        taken = (*self.feature_at, self.label_at)
        return Dataset(
            X=X,
            y=y,
            classes=classes,
            source=source,
            feature_names=encoding.feature_names
            if encoding
            else [names[i] for i in self.feature_at],
            encoding=encoding,
            groups=None if groups is None else np.array(groups, dtype=object),
            label_name=names[self.label_at] if self.named else None,
            other_columns=[n for i, n in enumerate(names) if i not in taken] if self.named else [],
        )


def _layout(
    numbered: list[tuple[int, list[str]]],
    fmt: CsvFormat,
    source: str,
    label: str | int | None,
    group_column: str | None,
) -> _Layout:
    """The layout, from the first two rows (split into cells): is the first a header?"""
    header = _header(numbered) if fmt.header is None else (numbered[0][1] if fmt.header else None)
    names = (
        [cell.strip() for cell in header]
        if header is not None
        else [str(i) for i in range(len(numbered[0][1]))]
    )
    named = header is not None
    label_at = _column(label, names, named, source, "`label`", default=len(names) - 1)
    group_at = None
    if group_column is not None:
        group_at = _column(group_column, names, named, source, "`cv` column:NAME")
        if group_at == label_at:
            raise InputError(f"{source}: the fold column {group_column!r} is also the label column")
    feature_at = _chosen_features(fmt, names, named, source, (label_at, group_at))
    return _Layout(names, named, label_at, group_at, feature_at)


_HEAD_LINES = 64
"""Lines the fast reading looks at to find the delimiter and the header."""


def _fast_dataset(
    data: bytes,
    fmt: CsvFormat,
    source: str,
    label: str | int | None,
    group_column: str | None,
) -> Dataset | None:
    """The data set of a plain CSV of numbers (but the label and fold columns), read from
    its bytes by the compiled pass (:mod:`stages._fastcsv`); None for anything it does
    not take, which the careful reading then reads or explains."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    # ``in`` is a memchr, where ``count`` walks the bytes: most files have no CR at all
    lone_cr = b"\r" in data and data.count(b"\r") != data.count(b"\r\n")
    if b'"' in data or b"\x00" in data or lone_cr:
        return None  # quotes, NUL bytes and lone carriage returns: the csv module's reading
    try:
        parts = [
            line.decode("utf-8").removesuffix("\r")
            for line in data.split(b"\n", fmt.skip_rows + _HEAD_LINES)[
                : fmt.skip_rows + _HEAD_LINES
            ]
        ]
    except UnicodeDecodeError:
        return None
    head = [
        (number, line)
        for number, line in enumerate(parts, start=1)
        if number > fmt.skip_rows and line.strip()
    ]
    delimiter = fmt.delimiter or detect_delimiter([line for _, line in head])
    head = [(number, line) for number, line in head if line.replace(delimiter, "").strip()]
    if len(head) < 2:
        return None
    layout = _layout(
        [(number, line.split(delimiter)) for number, line in head[:2]],
        fmt,
        source,
        label,
        group_column,
    )
    if not layout.feature_at:
        return None
    offset = 0
    for _ in range((head[1][0] if layout.named else head[0][0]) - 1):  # to the first data line
        offset = data.index(b"\n", offset) + 1
    body = data[offset:]
    capacity = body.count(b"\n") + 1
    text_at = [layout.label_at] + ([layout.group_at] if layout.group_at is not None else [])
    X = np.empty((capacity, len(layout.feature_at)))
    spans = np.empty((capacity, len(text_at), 2), dtype=np.intp)
    rows, failed = _fastcsv.parse(
        body,
        delimiter,
        len(layout.names),
        np.asarray(layout.feature_at, dtype=np.intp),
        np.asarray(text_at, dtype=np.intp),
        X,
        spans,
    )
    if failed >= 0 or rows == 0:
        return None
    cells = []
    for column in range(len(text_at)):
        raw = [body[a:b] for a, b in spans[:rows, column].tolist()]
        try:  # few distinct values: decode each once
            text = {value: value.decode("utf-8").strip() for value in set(raw)}
        except UnicodeDecodeError:
            return None
        cells.append([text[value] for value in raw])
    if not all(cells[0]):
        return None  # an empty label: the careful reading names its line
    groups = cells[1] if layout.group_at is not None else None
    return layout.dataset(X[:rows], cells[0], groups, source)


def _chosen_features(
    fmt: CsvFormat, names: list[str], named: bool, source: str, taken: tuple[int | None, ...]
) -> list[int]:
    """The feature columns: all but the label, fold and ``drop`` ones, or only ``features``."""
    option = "`features`" if fmt.keep else "`drop`"
    chosen = {_column(c, names, named, source, option) for c in fmt.keep or fmt.drop}
    if fmt.keep:
        clash = sorted(chosen.intersection(i for i in taken if i is not None))
        if clash:
            raise InputError(
                f"{source}: `features` names {names[clash[0]]!r}, the label or fold column; "
                "leave it out"
            )
        return sorted(chosen)
    return [i for i in range(len(names)) if i not in taken and i not in chosen]


def _cell_at(line: str, delimiter: str, at: int, width: int) -> str:
    """Cell ``at`` of a plain line of ``width`` cells, without splitting the rest."""
    if at == width - 1:
        return line.rpartition(delimiter)[2]
    return line.split(delimiter, at + 1)[at]


def _csv_rows(
    text: str, source: str, delimiter: str, skip_rows: int
) -> list[tuple[int, list[str]]]:
    """Rows as the csv module reads them (quoted cells may span lines), with line numbers."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        return [
            (reader.line_num, row)
            for row in reader
            if reader.line_num > skip_rows and row and any(cell.strip() for cell in row)
        ]
    except csv.Error as error:
        raise InputError(f"{source}:{reader.line_num}: cannot read this CSV: {error}") from None


def _check_widths(numbered: list[tuple[int, list[str]]], width: int, source: str) -> None:
    for number, row in numbered:
        if len(row) != width:
            raise InputError(
                f"{source}:{number}: has {len(row)} columns, expected {width}; "
                "every row needs the same number of cells"
            )


def _text_columns(
    numbered: list[tuple[int, list[str]]],
    feature_at: list[int],
    categorical: str,
    source: str,
    names: list[str],
) -> list[int]:
    """Feature columns of text: more cells that are words than numbers. A numeric column
    with a stray word stays numeric, so the careful reading names that cell."""
    text_at = []
    for at in feature_at:
        present = [
            (n, row[at]) for n, row in numbered if row[at].strip().lower() not in MISSING_TOKENS
        ]
        words = [(number, cell) for number, cell in present if not _is_number(cell)]
        if 2 * len(words) > len(present):
            if categorical == "error":
                number, cell = words[0]
                raise InputError(
                    f"{source}:{number}: {describe_column(at, names)} holds text ({cell!r}); "
                    "make it numeric or `drop` it (without `categorical` error it is one-hot "
                    "encoded)"
                )
            text_at.append(at)
    return text_at


def _one_hot(
    numbered: list[tuple[int, list[str]]],
    feature_at: list[int],
    text_at: list[int],
    numeric: npt.NDArray[np.float64],
    source: str,
    names: list[str],
) -> tuple[Encoding, npt.NDArray[np.float64]]:
    """The text columns' encoding (categories as the file holds them) and the encoded X."""
    columns = [names[at] for at in feature_at]
    twice = next((c for c in columns if columns.count(c) > 1), None)
    if twice is not None:
        raise InputError(
            f"{source}: two feature columns are named {twice!r}; text columns are encoded "
            "by name, so give every column its own name"
        )
    cells = []
    for at in text_at:
        column = [row[at].strip() for _, row in numbered]
        for (number, _), cell in zip(numbered, column, strict=True):
            if cell.lower() in MISSING_TOKENS:
                raise InputError(
                    f"{source}:{number}: {describe_column(at, names)}, a text column, is "
                    f"{'empty' if not cell else repr(cell)}; give every row a category, "
                    "or `drop` the column"
                )
        cells.append(column)
    encoding = Encoding(
        tuple(names[at] for at in feature_at),
        tuple(
            TextColumn(names[at], tuple(sorted(set(column))))
            for at, column in zip(text_at, cells, strict=True)
        ),
    )
    return encoding, encoding.encode(numeric, cells)


def _careful_features(
    numbered: list[tuple[int, list[str]]],
    width: int,
    feature_at: list[int],
    source: str,
    names: list[str],
    allow_missing: bool,
) -> npt.NDArray[np.float64]:
    _check_widths(numbered, width, source)
    X = np.empty((len(numbered), len(feature_at)), dtype=np.float64)
    for r, (number, row) in enumerate(numbered):
        for c, at in enumerate(feature_at):
            X[r, c] = _number(row[at], source, number, at, names, allow_missing)
    return X


def encode_labels(values: Sequence[Any]) -> tuple[npt.NDArray[np.intp], list[str]]:
    """Integer codes and class names, sorted numerically when every label is a number."""
    as_text = [str(v) for v in values]
    unique = sorted(set(as_text))
    with contextlib.suppress(ValueError):
        unique.sort(key=float)
    index = {name: code for code, name in enumerate(unique)}
    return np.array([index[v] for v in as_text], dtype=np.intp), unique


def _is_number(cell: str) -> bool:
    if cell.strip().lower() in MISSING_TOKENS:
        return True  # a missing value sits where numbers do: no sign of a header
    try:
        strict_float(cell)
    except ValueError:
        return False
    return True


def _header(numbered: list[tuple[int, list[str]]]) -> list[str] | None:
    """The first row is a header when it has text where the next row has a number."""
    first = [c.strip() for c in numbered[0][1]]
    if len(numbered) == 1:
        return first if not any(_is_number(c) for c in first) else None
    second = [c.strip() for c in numbered[1][1]]
    looks_like_header = any(
        not _is_number(a) and _is_number(b) for a, b in zip(first, second, strict=False)
    )
    all_text = all(not _is_number(c) for c in first) and any(_is_number(c) for c in second)
    return first if looks_like_header or all_text else None


def _column(
    spec: str | int | None,
    names: list[str],
    has_header: bool,
    source: str,
    option: str,
    default: int | None = None,
) -> int:
    if spec is None:
        if default is None:
            raise InputError(f"{source}: {option} is required")
        return default
    if isinstance(spec, str) and spec in names and has_header:
        return names.index(spec)
    try:
        index = int(spec)
    except ValueError:
        shown = ", ".join(map(repr, names)) if has_header else "the file has no header"
        raise InputError(
            f"{source}: {option} {spec!r} is not a column ({shown}); "
            "give a header name or a 0-based index"
        ) from None
    if not -len(names) <= index < len(names):
        raise InputError(
            f"{source}: {option} {index} is out of range; the file has {len(names)} columns "
            f"(0..{len(names) - 1})"
        )
    return index % len(names)


def _number(
    cell: str, source: str, line: int, at: int, names: list[str], allow_missing: bool
) -> float:
    where = f"{source}:{line}: {describe_column(at, names)}"
    text = cell.strip()
    if text.lower() in MISSING_TOKENS:
        if allow_missing:
            return math.nan
        shown = "empty" if not text else f"{cell!r}, a missing value"
        raise InputError(f"{where} is {shown}; fill it in or use `missing` drop, mean or median")
    try:
        value = strict_float(text)
    except ValueError:
        raise InputError(
            f"{where} is {cell!r}, not a number; features must be numeric "
            "(use `label` to pick the label column)"
        ) from None
    if not math.isfinite(value):
        raise InputError(f"{where} is {cell!r}; features must be finite numbers")
    return value


def describe_column(at: int, names: Sequence[str]) -> str:
    """A column as messages name it: by header name and 0-based index, as ``label`` counts."""
    if names[at] == str(at):  # no header: the index is the only name
        return f"column {at}"
    return f"column {names[at]!r} (index {at})"


def _load_numpy(path: Path, label: str | int | None, allow_missing: bool) -> Dataset:
    X, labels = _numpy_arrays(path, label)
    if np.iscomplexobj(X) or np.iscomplexobj(labels):
        raise InputError(f"{path}: holds complex numbers; features must be real numbers")
    if np.ndim(labels) != 1:
        raise InputError(
            f"{path}: y has shape {np.shape(labels)}; labels must be a 1-D array, one per row"
        )
    return dataset_from_arrays(X, labels, str(path), allow_missing)


def _check_member_sizes(path: Path) -> None:
    """Refuse an ``.npz`` member whose header claims more than the member holds, before
    NumPy tries to allocate it (a huge claim would read as running out of memory)."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                read_header = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                shape, _, dtype = read_header(member)
                if math.prod(shape) * dtype.itemsize > info.file_size:
                    raise ValueError(
                        f"{info.filename} claims {shape} of {dtype}, more than it holds"
                    )


def _numpy_arrays(path: Path, label: str | int | None) -> tuple[Any, Any]:
    """Features and labels of an ``.npz`` (arrays ``X``, ``y``) or an ``.npy`` (a
    label column); any damage (a bad CRC, a header claiming more than the file
    holds, object arrays) is an :class:`InputError`."""
    import zipfile  # here, not above: a CSV's run has no use for it

    advice = "save it again with np.save/np.savez (allow_pickle=False arrays of numbers)"
    # What NumPy and zipfile raise for a file that is not (or no longer) what it claims.
    damaged = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile)
    try:
        if zipfile.is_zipfile(path):
            _check_member_sizes(path)
        loaded = np.load(path, allow_pickle=False, mmap_mode="r")
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                if "X" not in loaded.files or "y" not in loaded.files:
                    raise InputError(
                        f"{path}: an .npz needs arrays named 'X' and 'y' "
                        f"(found {', '.join(loaded.files) or 'none'}); "
                        "save with np.savez(path, X=X, y=y)"
                    )
                return np.asarray(loaded["X"]), np.asarray(loaded["y"])
        array = np.asarray(loaded)
    except InputError:
        raise
    except damaged as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"{path}: not a readable NumPy file ({reason}); {advice}") from None
    if array.ndim != 2 or array.shape[1] < 2:
        raise InputError(f"{path}: an .npy needs a 2-D array of features and a label column")
    at = _column(
        label,
        [str(i) for i in range(array.shape[1])],
        False,
        str(path),
        "`label`",
        default=array.shape[1] - 1,
    )
    return np.delete(array, at, axis=1), np.asarray(array[:, at])


def dataset_from_arrays(X: Any, labels: Any, source: str, allow_missing: bool = True) -> Dataset:
    """Features and labels in memory as a :class:`Dataset` (missing values kept as NaN
    unless ``allow_missing`` is False; the missing-value policy decides later)."""
    try:
        features = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{source}: features are not numeric; convert them to numbers") from None
    if features.ndim != 2 or features.shape[0] == 0 or features.shape[1] == 0:
        raise InputError(
            f"{source}: features must be a non-empty 2-D array, got shape {features.shape}"
        )
    if len(labels) != features.shape[0]:
        raise InputError(f"{source}: {features.shape[0]} rows of features but {len(labels)} labels")
    if np.isinf(features).any():
        row, column = (int(i) for i in np.argwhere(np.isinf(features))[0])
        raise InputError(
            f"{source}: row {row}, column {column} is infinite; features must be finite numbers"
        )
    if np.isnan(features).any() and not allow_missing:
        row, column = (int(i) for i in np.argwhere(np.isnan(features))[0])
        raise InputError(
            f"{source}: row {row}, column {column} is NaN (missing); "
            "fill it in or use `missing` drop, mean or median"
        )
    y, classes = encode_labels(list(np.asarray(labels).tolist()))
    names = [f"x{i}" for i in range(features.shape[1])]
    return Dataset(X=features, y=y, classes=classes, source=source, feature_names=names)


def _load_builtin(name: str, label: str | int | None, group_column: str | None) -> Dataset:
    if label is not None or group_column is not None:
        raise InputError(f"{name}: the built-in data set has a fixed label and no fold column")
    builtin = read_builtin(name)  # scikit-learn's files, read without importing it
    return Dataset(
        X=builtin.data,
        y=builtin.target,
        classes=builtin.target_names,
        source=name,
        feature_names=builtin.feature_names,
        label_name="target",  # scikit-learn's name for it (``as_frame=True``)
    )
