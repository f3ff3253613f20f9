"""The text of a CSV file: bytes to lines, the delimiter, and numbers out of cells.

Real files come gzip-compressed, with ``;`` or tabs between cells, with a
line of metadata above the header (scikit-learn's own bundled CSVs), or in
Latin-1. :func:`decode` and :func:`detect_delimiter` deal with the first
three and name the fix for the last. :func:`parse_numbers` reads a block of
cells with NumPy's C parser (``np.loadtxt``, five times faster than
Python's ``csv`` module cell by cell) and returns None when it cannot, so the
caller reads those rows again carefully, to name the line and column at fault.
"""

from __future__ import annotations

import csv
import gzip
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pipeline.errors import InputError, OptionError

__all__ = [
    "DELIMITERS",
    "CsvFormat",
    "decode",
    "detect_delimiter",
    "parse_numbers",
    "strict_float",
    "unpack",
]

DELIMITERS = (",", ";", "\t", "|")
"""Delimiters recognised without being told; ``--delimiter`` takes any single character."""

_SNIFF_LINES = 50


@dataclass(frozen=True)
class CsvFormat:
    """How to read a CSV: ``delimiter`` (None: detected), ``header`` (None: detected),
    ``skip_rows`` (lines dropped before the header or the data, e.g. a metadata line),
    and which columns are features: all but ``drop``, or only ``keep`` (names or
    0-based indices; the label and fold columns are never features).
    ``categorical`` says what becomes of a feature column of text: ``onehot``
    encodes it (:mod:`stages.encoding`), ``error`` refuses the file."""

    delimiter: str | None = None
    header: bool | None = None
    skip_rows: int = 0
    drop: tuple[str | int, ...] = ()
    keep: tuple[str | int, ...] = ()
    categorical: str = "onehot"

    def __post_init__(self) -> None:
        if self.categorical not in ("onehot", "error"):
            raise OptionError(
                "categorical",
                "choose onehot (encode text columns) or error (refuse them)",
                value=repr(self.categorical),
            )
        if self.delimiter is not None and (
            len(self.delimiter) != 1 or self.delimiter in '\r\n"' or self.delimiter.isalnum()
        ):
            raise OptionError(
                "delimiter",
                "give one character that is not a letter, digit, quote or line break, e.g. ';'",
                value=repr(self.delimiter),
            )
        if self.skip_rows < 0:
            raise OptionError(
                "skip_rows", "give 0 or more lines to skip", value=str(self.skip_rows)
            )
        if self.drop and self.keep:
            raise InputError("`drop` and `features`: give one of them, not both")


def unpack(raw: bytes, source: str) -> bytes:
    """The file's bytes, gzip unpacked (whatever the file is called)."""
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise InputError(
            f"{source}: a damaged or truncated gzip file ({error}); compress it again"
        ) from None


def decode(raw: bytes, source: str) -> str:
    """The file's text: gzip is unpacked (whatever the name), UTF-8 with or without a BOM."""
    raw = unpack(raw, source)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        try:
            raw.decode("cp1252")
            likely = "it looks like Latin-1 or Windows-1252 text"
        except UnicodeDecodeError:
            likely = "it may be another encoding, or not text at all"
        raise InputError(
            f"{source}:{line}: bytes that are not UTF-8 (offset {error.start}); {likely}: "
            "save the file as UTF-8"
        ) from None


def _widths(lines: Sequence[str], delimiter: str) -> set[int]:
    try:
        return {len(row) for row in csv.reader(lines, delimiter=delimiter)}
    except csv.Error:
        return set()


def detect_delimiter(lines: Sequence[str]) -> str:
    """The delimiter of :data:`DELIMITERS` that splits the first lines into equal rows of
    two cells or more: ``,`` when it does, else the one giving the most cells."""
    head = list(lines[:_SNIFF_LINES])
    consistent = {}
    for delimiter in DELIMITERS:
        widths = _widths(head, delimiter)
        if len(widths) == 1 and min(widths) >= 2:
            consistent[delimiter] = min(widths)
    if not consistent or "," in consistent:
        return ","
    return max(consistent, key=lambda d: consistent[d])


def strict_float(text: str) -> float:
    """``float(text)`` for numbers as files write them: ASCII, no ``_`` separators
    (Python's ``float`` also reads ``1_000`` and other scripts' digits)."""
    if not text.isascii() or "_" in text:
        raise ValueError(f"not a plain number: {text!r}")
    return float(text)


def parse_numbers(
    lines: Sequence[str], delimiter: str, columns: Sequence[int], width: int
) -> npt.NDArray[np.float64] | None:
    """``columns`` of ``lines`` as finite floats, or None where a careful reading is needed.

    Lines with quotes, a count of cells other than ``width``, or any cell that
    is not a finite number (a missing value, text, infinity) give None.
    """
    if not lines or any('"' in line or line.count(delimiter) != width - 1 for line in lines):
        return None
    try:
        values = np.loadtxt(
            lines,
            delimiter=delimiter,
            usecols=list(columns),
            dtype=np.float64,
            ndmin=2,
            comments=None,
            encoding=None,
        )
    except ValueError:
        return None
    if values.shape != (len(lines), len(columns)) or not np.isfinite(values).all():
        return None
    return values
