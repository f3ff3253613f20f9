"""Samples to classify, read in blocks and matched to a model's features.

A :class:`SampleSource` yields :class:`SampleBlock` values (a few thousand
rows each), so a file of a million samples is never held whole: a CSV is
read a chunk at a time through :mod:`aiofiles`, an ``.npy`` is memory-mapped.

Columns are matched to the model's features by header name when both the
file and the model have names, else by position. A column named as the
model's label is left out (or, with ``label``, read as the true classes).

CSV rows are parsed with NumPy's C parser (``np.loadtxt``, about five times
faster than Python's ``csv`` module cell by cell); only when it refuses a
chunk are the rows read again one cell at a time, to name the line and column
at fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import dataclasses
import gzip
import math
import os
import zipfile
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiofiles
import numpy as np
import numpy.typing as npt

from pipeline.errors import InputError

from .csv_text import DELIMITERS, detect_delimiter, strict_float
from .encoding import Encoding
from .load import MISSING_TOKENS, _header, describe_column

__all__ = ["SampleBlock", "SampleSource", "array_source", "count_rows", "file_source"]

_EMPTY_ROW = "".join(DELIMITERS) + " "
"""What a row made only of delimiters and spaces is made of."""

CHUNK_BYTES = 1 << 20
"""Bytes of CSV read and parsed at a time."""


@dataclass(frozen=True)
class SampleBlock:
    """Rows ``first_row .. first_row + len(X) - 1`` of the samples (0-based data rows)."""

    index: int
    first_row: int
    X: npt.NDArray[np.float64]
    labels: list[str] | None = None


@dataclass(frozen=True)
class SampleSource:
    """Where samples come from, how many rows there are (an estimate for CSV), and the blocks."""

    name: str
    rows: int
    blocks: AsyncIterator[SampleBlock]


def _named(names: Sequence[str]) -> bool:
    """Names a person gave, not the ``0, 1, ...`` or ``x0, x1, ...`` made up for a file without."""
    generated = ([str(i) for i in range(len(names))], [f"x{i}" for i in range(len(names))])
    return bool(names) and list(names) not in generated


def array_source(
    X: npt.NDArray[np.float64], block_rows: int, labels: Sequence[Any] | None = None
) -> SampleSource:
    """Blocks of an array already in memory (checked by the caller)."""

    async def blocks() -> AsyncIterator[SampleBlock]:
        for index, start in enumerate(range(0, X.shape[0], block_rows)):
            part = None if labels is None else [str(v) for v in labels[start : start + block_rows]]
            yield SampleBlock(index, start, X[start : start + block_rows], part)

    return SampleSource("<array>", int(X.shape[0]), blocks())


@dataclass(frozen=True)
class _Columns:
    """Which file columns hold the model's features (in the model's order) and the label."""

    features: list[int]
    label: int | None
    names: list[str]  # every column's name, as messages show it
    header: bool = False
    delimiter: str = ","


def _match_columns(
    names: list[str] | None,
    width: int,
    *,
    model_features: Sequence[str],
    model_label: str | None,
    label: str | int | None,
    where: str,
    model_others: Sequence[str] = (),
) -> _Columns:
    """Map the file's columns onto the model's features, or say exactly what does not fit."""
    shown = names if names is not None else [str(i) for i in range(width)]
    label_at: int | None = None
    if label is not None:
        if names is not None and isinstance(label, str) and label in names:
            label_at = names.index(label)
        else:
            try:
                label_at = int(label)
            except ValueError:
                raise InputError(
                    f"{where}: `label` {label!r} is not a column ({', '.join(map(repr, shown))}); "
                    "give a header name or a 0-based index"
                ) from None
            if not -width <= label_at < width:
                raise InputError(
                    f"{where}: `label` {label_at} is out of range; the file has {width} columns"
                )
            label_at %= width
    # By name when the file names every feature (whatever the names look like), or when
    # the model's names are real ones, so a missing one is an error and not a guess.
    if names is not None and (set(model_features) <= set(names) or _named(model_features)):
        ignored = None  # the model's own label column: true classes nobody asked to score
        if label_at is None and model_label is not None and model_label in names:
            ignored = names.index(model_label)
        missing = [f for f in model_features if f not in names]
        if missing:
            raise InputError(
                f"{where}: has no column {missing[0]!r}, a feature of the model "
                f"({len(missing)} missing); the model needs {', '.join(map(repr, model_features))}"
            )
        features = [names.index(f) for f in model_features]
        unknown = [
            n
            for i, n in enumerate(names)
            if i not in features and i not in (label_at, ignored) and n not in model_others
        ]
        if unknown:
            raise InputError(
                f"{where}: column {unknown[0]!r} is not a feature of the model, nor a column "
                "its training file had; remove it, or name it with `label` if it holds the "
                "true classes"
            )
        return _Columns(features, label_at, shown, header=True)
    expected = len(model_features) + (label_at is not None)
    if width == len(model_features) + 1 and label_at is None:
        raise InputError(
            f"{where}: has {width} columns, one more than the model's {len(model_features)} "
            "features; name the label column with `label`"
        )
    if width != expected:
        raise InputError(
            f"{where}: has {width} columns, but the model has {len(model_features)} features"
            + (" and `label` one more" if label_at is not None else "")
            + "; give one column per feature, in the model's order"
        )
    return _Columns([i for i in range(width) if i != label_at], label_at, shown, names is not None)


def _careful_rows(
    lines: list[tuple[int, str]],
    columns: _Columns,
    *,
    where: str,
    allow_missing: bool,
) -> tuple[npt.NDArray[np.float64], list[str] | None]:
    """Parse rows one cell at a time; the first bad cell is an :class:`InputError`."""
    width = len(columns.names)
    X = np.empty((len(lines), len(columns.features)), dtype=np.float64)
    labels: list[str] | None = [] if columns.label is not None else None
    for r, (number, text) in enumerate(lines):
        try:
            cells = next(csv.reader([text], delimiter=columns.delimiter))
        except csv.Error as error:
            raise InputError(f"{where}:{number}: cannot read this CSV line: {error}") from None
        if len(cells) != width:
            raise InputError(
                f"{where}:{number}: has {len(cells)} columns, expected {width}; "
                "every row needs the same number of cells"
            )
        for c, at in enumerate(columns.features):
            X[r, c] = _cell(
                cells[at],
                f"{where}:{number}: {describe_column(at, columns.names)}",
                allow_missing,
            )
        if labels is not None and columns.label is not None:
            labels.append(cells[columns.label].strip())
    return X, labels


def _cell(cell: str, where: str, allow_missing: bool) -> float:
    text = cell.strip()
    if text.lower() in MISSING_TOKENS:
        if allow_missing:
            return math.nan
        raise InputError(
            f"{where} is {'empty' if not text else repr(cell)}, a missing value, and the model "
            "fills none; fill it in, or tune the model with `missing` mean or median"
        )
    try:
        value = strict_float(text)
    except ValueError:
        raise InputError(f"{where} is {cell!r}, not a number; features must be numeric") from None
    if not math.isfinite(value):
        raise InputError(f"{where} is {cell!r}; features must be finite numbers")
    return value


def _parse_rows(
    lines: list[tuple[int, str]],
    columns: _Columns,
    *,
    where: str,
    allow_missing: bool,
    encoding: Encoding | None = None,
) -> tuple[npt.NDArray[np.float64], list[str] | None]:
    """Fast parse of plain rows; the careful pass explains any row it refuses. With an
    ``encoding``, the numeric columns are parsed so and the text ones one-hot encoded."""
    if encoding is not None:
        return _encoded_rows(lines, columns, encoding, where=where, allow_missing=allow_missing)
    texts = [text for _, text in lines]
    if not any('"' in t for t in texts):
        try:
            X = np.loadtxt(
                texts,
                delimiter=columns.delimiter,
                usecols=columns.features,
                ndmin=2,
                dtype=np.float64,
                comments=None,
            )
            widths_ok = all(t.count(columns.delimiter) == len(columns.names) - 1 for t in texts)
            if (
                widths_ok
                and X.shape == (len(texts), len(columns.features))
                and np.isfinite(X).all()
            ):
                labels = None
                if columns.label is not None:
                    labels = [t.split(columns.delimiter)[columns.label].strip() for t in texts]
                return X, labels
        except ValueError:
            pass
    return _careful_rows(lines, columns, where=where, allow_missing=allow_missing)


def _encoded_rows(
    lines: list[tuple[int, str]],
    columns: _Columns,
    encoding: Encoding,
    *,
    where: str,
    allow_missing: bool,
) -> tuple[npt.NDArray[np.float64], list[str] | None]:
    numeric = dataclasses.replace(
        columns, features=[columns.features[i] for i in encoding.numeric_positions]
    )
    X, labels = _parse_rows(lines, numeric, where=where, allow_missing=allow_missing)
    text_at = [columns.features[i] for i in encoding.text_positions]
    cells: list[list[str]] = [[] for _ in text_at]
    for number, text in lines:
        row = next(csv.reader([text], delimiter=columns.delimiter)) if '"' in text else None
        row = row if row is not None else text.split(columns.delimiter)
        for column, at in zip(cells, text_at, strict=True):
            cell = row[at].strip()
            if cell.lower() in MISSING_TOKENS:
                raise InputError(
                    f"{where}:{number}: {describe_column(at, columns.names)}, a text column, "
                    f"is {'empty' if not cell else repr(cell)}; give every row a category"
                )
            column.append(cell)
    return encoding.encode(X, cells), labels


async def count_rows(path: Path) -> int:
    """Rows of samples in a file: exact for NumPy files; for a CSV its lines, less one."""
    if path.suffix.lower() in (".npy", ".npz") or not path.is_file():
        try:
            return int(_numpy_rows(path))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error):
            return 0  # reading the file for real will say what is wrong
    count = 0
    async with _opened(path) as read:
        while chunk := await read(8 * CHUNK_BYTES):
            count += chunk.count(b"\n")
    return max(0, count - 1)


@contextlib.asynccontextmanager
async def _opened(path: Path) -> AsyncIterator[Callable[[int], Awaitable[bytes]]]:
    """``read(n)`` for a file's bytes, unpacked if it is gzip (whatever it is called)."""
    async with aiofiles.open(path, "rb") as handle:
        packed = await handle.read(2) == b"\x1f\x8b"
        await handle.seek(0)
        if not packed:
            yield handle.read
            return
    with gzip.open(path, "rb") as stream:

        async def read(size: int) -> bytes:
            try:
                return await asyncio.to_thread(stream.read, size)
            except (OSError, EOFError, zlib.error) as error:
                raise InputError(
                    f"{path}: a damaged or truncated gzip file ({error}); compress it again"
                ) from None

        yield read


def _numpy_rows(path: Path) -> int:
    loaded = np.load(path, mmap_mode="r", allow_pickle=False)
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            return int(loaded["X"].shape[0])
    return int(loaded.shape[0]) if loaded.ndim else 0


def file_source(
    path: str | os.PathLike[str],
    *,
    model_features: Sequence[str],
    model_label: str | None = None,
    model_others: Sequence[str] = (),
    label: str | int | None = None,
    block_rows: int,
    allow_missing: bool = False,
    encoding: Encoding | None = None,
) -> SampleSource:
    """Blocks of a CSV, ``.npy`` or ``.npz`` file; :class:`InputError` on anything wrong.

    With an ``encoding`` of text columns, ``model_features`` are its raw columns
    and each CSV block is one-hot encoded as the model's training rows were.
    """
    where = os.fspath(path)
    file = Path(where)
    if not file.is_file():
        raise InputError(f"{where}: no such file; give a CSV, .npy or .npz file of samples")
    suffix = file.suffix.lower()
    if suffix in (".npy", ".npz") and encoding is not None:
        names = ", ".join(repr(t.name) for t in encoding.text)
        raise InputError(
            f"{where}: the model reads text columns ({names}), which a NumPy file cannot "
            "hold; give the samples as a CSV"
        )
    if suffix in (".npy", ".npz"):
        X, labels = _numpy_samples(file, model_features, label)
        blocks = (
            _npy_blocks(file, X, block_rows, allow_missing)
            if isinstance(X, np.memmap) and X.flags.c_contiguous
            else _checked_blocks(array_source(X, block_rows, labels).blocks, where, allow_missing)
        )
        return SampleSource(where, int(X.shape[0]), blocks)
    return SampleSource(
        where,
        -1,
        _csv_blocks(
            file,
            model_features=model_features,
            model_label=model_label,
            model_others=model_others,
            label=label,
            block_rows=block_rows,
            allow_missing=allow_missing,
            encoding=encoding,
        ),
    )


def _numpy_samples(
    file: Path, model_features: Sequence[str], label: str | int | None
) -> tuple[npt.NDArray[Any], list[Any] | None]:
    where = str(file)
    try:
        loaded = np.load(file, mmap_mode="r", allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                X, labels = _npz_arrays(where, loaded, label)
        else:
            X, labels = _npy_arrays(where, loaded, model_features, label)
    except InputError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as error:
        raise InputError(
            f"{where}: not a readable NumPy file of numbers ({error}); "
            "save it with np.save or np.savez"
        ) from None
    if X.ndim != 2 or X.shape[1] != len(model_features):
        raise InputError(
            f"{where}: samples of shape {X.shape}, but the model has {len(model_features)} "
            "features; give one column per feature"
        )
    if X.dtype.kind not in "fiub":
        raise InputError(f"{where}: the samples are {X.dtype}, not numbers; save numbers")
    return X, labels


def _npz_arrays(
    where: str, loaded: Any, label: str | int | None
) -> tuple[npt.NDArray[Any], list[str] | None]:
    if "X" not in loaded.files:
        raise InputError(
            f"{where}: an .npz of samples needs an array named 'X' "
            f"(found {', '.join(loaded.files)}); save with np.savez(path, X=X)"
        )
    X = loaded["X"]
    if label is None or "y" not in loaded.files:
        return X, None
    labels = [str(v) for v in loaded["y"].tolist()]
    if len(labels) != X.shape[0]:
        raise InputError(
            f"{where}: {X.shape[0]} rows in X but {len(labels)} labels in y; give one label per row"
        )
    return X, labels


def _npy_arrays(
    where: str, X: Any, model_features: Sequence[str], label: str | int | None
) -> tuple[npt.NDArray[Any], list[str] | None]:
    if X.ndim != 2:
        return X, None
    columns = _match_columns(
        None,
        X.shape[1],
        model_features=model_features,
        model_label=None,
        label=label,
        where=where,
    )
    if columns.label is None:
        return X, None
    labels = [str(v) for v in np.asarray(X[:, columns.label]).tolist()]
    return X[:, columns.features], labels


def _check_block(block: SampleBlock, where: str, allow_missing: bool) -> SampleBlock:
    """Refuse infinite values, and missing ones unless the model fills them, by row and column."""
    finite = np.isfinite(block.X)
    if finite.all():
        return block
    bad = ~finite if not allow_missing else np.isinf(block.X)
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        value = block.X[row, column]
        what = "missing (NaN), and the model fills none" if np.isnan(value) else "infinite"
        raise InputError(
            f"{where}: row {block.first_row + row}, column {column} is {what}; give finite numbers"
        )
    return block


async def _checked_blocks(
    blocks: AsyncIterator[SampleBlock], where: str, allow_missing: bool
) -> AsyncIterator[SampleBlock]:
    async for block in blocks:
        yield _check_block(block, where, allow_missing)


async def _npy_blocks(
    file: Path, mapped: np.memmap[Any, Any], block_rows: int, allow_missing: bool
) -> AsyncIterator[SampleBlock]:
    """Blocks of an ``.npy`` read with plain reads, not through the mapping: a mapping
    keeps every page it has read resident, so memory would grow with the file."""
    rows, width = mapped.shape
    dtype, offset = mapped.dtype, int(mapped.offset)
    del mapped
    with open(file, "rb") as stream:  # each read, one block, runs in a thread
        stream.seek(offset)
        for index, start in enumerate(range(0, rows, block_rows)):
            count = min(block_rows, rows - start)
            block = np.empty((count, width), dtype=dtype)
            got = await asyncio.to_thread(stream.readinto, block.data.cast("B"))
            if got != block.nbytes:
                raise InputError(f"{file}: ends early, at row {start}; save it again")
            samples = block.astype(np.float64, copy=False)
            yield _check_block(SampleBlock(index, start, samples), str(file), allow_missing)


async def _csv_blocks(
    file: Path,
    *,
    model_features: Sequence[str],
    model_label: str | None,
    model_others: Sequence[str],
    label: str | int | None,
    block_rows: int,
    allow_missing: bool,
    encoding: Encoding | None = None,
) -> AsyncIterator[SampleBlock]:
    where = str(file)
    columns: _Columns | None = None
    pending: list[tuple[int, str]] = []
    line_number = 0
    row = 0
    index = 0
    rest = b""
    async with _opened(file) as read:
        while True:
            chunk = await read(CHUNK_BYTES)
            data = rest + chunk
            if chunk:
                cut = data.rfind(b"\n") + 1
                data, rest = data[:cut], data[cut:]
                if not data:
                    continue
            else:
                rest = b""
            try:
                text = data.decode("utf-8-sig" if line_number == 0 else "utf-8")
            except UnicodeDecodeError as error:
                line = line_number + data[: error.start].count(b"\n") + 1
                raise InputError(
                    f"{where}:{line}: bytes that are not UTF-8; save the file as UTF-8"
                ) from None
            for raw in text.split("\n")[:-1] if text.endswith("\n") else text.split("\n"):
                line_number += 1  # only \n ends a line, as in the training loader
                cells = raw[:-1] if raw.endswith("\r") else raw
                if cells.strip(_EMPTY_ROW):  # a row of empty cells is no row
                    pending.append((line_number, cells))
            if columns is None and (pending and (len(pending) >= 2 or not chunk)):
                columns = await asyncio.to_thread(
                    _columns_from_head,
                    pending,
                    where,
                    model_features,
                    model_label,
                    label,
                    model_others,
                )
                if columns.header:
                    pending = pending[1:]
            while columns is not None and (len(pending) >= block_rows or (not chunk and pending)):
                taken, pending = pending[:block_rows], pending[block_rows:]
                X, labels = await asyncio.to_thread(
                    _parse_rows,
                    taken,
                    columns,
                    where=where,
                    allow_missing=allow_missing,
                    encoding=encoding,
                )
                yield SampleBlock(index, row, X, labels)
                index += 1
                row += len(taken)
            if not chunk:
                break
    if row == 0:
        raise InputError(f"{where}: has no rows of samples; add rows to classify")


def _columns_from_head(
    pending: list[tuple[int, str]],
    where: str,
    model_features: Sequence[str],
    model_label: str | None,
    label: str | int | None,
    model_others: Sequence[str] = (),
) -> _Columns:
    delimiter = detect_delimiter([text for _, text in pending[:50]])
    rows = [next(csv.reader([text], delimiter=delimiter)) for _, text in pending[:2]]
    header = _header([(n, r) for (n, _), r in zip(pending, rows, strict=False)])
    names = [c.strip() for c in header] if header is not None else None
    columns = _match_columns(
        names,
        len(rows[0]),
        model_features=model_features,
        model_label=model_label,
        label=label,
        where=where,
        model_others=model_others,
    )
    return dataclasses.replace(columns, delimiter=delimiter)
