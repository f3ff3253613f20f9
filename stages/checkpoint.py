"""Checkpoints: every finished unit on disk, so an interrupted run resumes.

The file is JSON lines. The first line names the run it belongs to (a hash
of the data and of the options that change results) and the work plan; each
further line is one finished unit's predictions and vote shares, appended, flushed and
fsynced as the unit finishes. A torn last line (the process died while
writing it) is cut off on resume; anything else that does not parse is an
error, because guessing could give wrong results. Every line carries a
checksum of its content, and a resumed record must hold class codes and vote
shares the run can have made, so an edit or damage that still decodes is
refused too (exit status 2, with the line's number).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from pipeline.errors import InputError, OptionError

from .dataset import Dataset
from .plan import WorkUnit
from .vote import VoteShares

__all__ = ["CHECKPOINT_VERSION", "CheckpointFile", "Finished", "Grid", "fingerprint"]

Finished = tuple[npt.NDArray[np.int32], VoteShares]
"""A finished unit: its predictions ``(W, K, rows)`` and the vote shares behind them."""

Grid = tuple[int, int, int, int]
"""What every record of a run holds: weightings, ``k`` values, classes, and share columns
(:func:`~stages.vote.share_width`)."""

CHECKPOINT_VERSION = 4


def fingerprint(dataset: Dataset, options: Mapping[str, Any]) -> str:
    """A hash of the data set and of the options that decide the results."""
    digest = hashlib.sha256()
    for array in (dataset.X, dataset.y):
        digest.update(str(array.dtype).encode())
        digest.update(str(array.shape).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    extra = {"classes": dataset.classes, "options": dict(options)}
    if dataset.groups is not None:
        extra["groups"] = [str(g) for g in dataset.groups]
    digest.update(json.dumps(extra, sort_keys=True).encode())
    return digest.hexdigest()


def _check(*parts: Any) -> str:
    """A line's checksum: the first 16 hex digits of the SHA-256 of its content."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _encode(array: npt.NDArray[Any], dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


def _decode(text: str, dtype: str, shape: tuple[int, ...], to: type[Any]) -> npt.NDArray[Any]:
    """An array from :func:`_encode` text; ``ValueError`` if it does not hold ``shape``."""
    return np.frombuffer(base64.b64decode(text), dtype=dtype).reshape(shape).astype(to)


def _unit_row(unit: WorkUnit) -> list[Any]:
    row: list[Any] = [unit.id, unit.metric, unit.fold, unit.start, unit.stop]
    return row if unit.scale is None else [*row, unit.scale]


class CheckpointFile:
    """One run's checkpoint: open it with :meth:`begin`, then :meth:`record` units."""

    def __init__(self, path: str | os.PathLike[str], *, resume: bool) -> None:
        self.path = Path(path)
        self.resume = resume
        self._stream: IO[str] | None = None
        self._refuse_to_overwrite()

    def _refuse_to_overwrite(self) -> None:
        """A new run never overwrites a checkpoint: it may be a run someone means to resume.

        Checked when the file is named, so the error comes before any work, and again
        when the run begins, in case the file appeared meanwhile."""
        if self.path.exists() and not self.resume:
            raise OptionError(
                "checkpoint",
                "the file exists; add `resume` to continue that run, "
                "or remove the file to start again",
                value=str(self.path),
            )

    def begin(
        self, run: str, units: list[WorkUnit], grid: Grid | None = None
    ) -> tuple[list[WorkUnit], dict[int, Finished]]:
        """The work plan to follow and the results of units already finished.

        A new checkpoint records ``units``; a resumed one must belong to the
        same ``run`` (fingerprint) and supplies its own plan, so a resumed run
        does exactly the units that are missing. ``grid`` is what every record
        must hold (see :data:`Grid`).
        """
        self._refuse_to_overwrite()
        try:
            if self.resume and self.path.exists() and self.path.stat().st_size > 0:
                plan, done, good_bytes = self._read(run, grid)
                _check_plan(plan, units, f"`checkpoint` {self.path}:1")
                self._stream = open(self.path, "r+", encoding="utf-8")  # noqa: SIM115
                self._stream.truncate(good_bytes)  # cut a torn last line before appending
                self._stream.seek(good_bytes)
                return plan, done
            self._stream = open(self.path, "w", encoding="utf-8")  # noqa: SIM115
        except OSError as error:
            raise InputError(
                f"`checkpoint` {self.path}: cannot be written ({error.strerror or error}); "
                "make it writable, or give another file"
            ) from None
        rows = [_unit_row(u) for u in units]
        header = {
            "checkpoint": CHECKPOINT_VERSION,
            "run": run,
            "units": rows,
            "check": _check(CHECKPOINT_VERSION, run, rows),
        }
        self._write(json.dumps(header))
        return units, {}

    def record(
        self, unit: WorkUnit, predictions: npt.NDArray[np.integer[Any]], shares: VoteShares
    ) -> None:
        """Append one finished unit, durably (flushed and fsynced)."""
        shape = list(shares.values.shape)
        encoded = _encode(predictions, "<i4")
        encoded_shares = _encode(shares.values, "<f8")
        classes = None if shares.classes is None else _encode(shares.classes, "<i4")
        line = {
            "unit": unit.id,
            "shape": shape,
            "predictions": encoded,
            "shares": encoded_shares,
            "classes": classes,
            "check": _check(unit.id, shape, encoded, encoded_shares, classes),
        }
        self._write(json.dumps(line))

    def close(self) -> None:
        if self._stream is not None:
            with contextlib.suppress(OSError):
                self._stream.close()
            self._stream = None

    def _write(self, line: str) -> None:
        if self._stream is None:
            raise RuntimeError("the checkpoint is not open")
        self._stream.write(line + "\n")
        self._stream.flush()
        os.fsync(self._stream.fileno())

    def _read(self, run: str, grid: Grid | None) -> tuple[list[WorkUnit], dict[int, Finished], int]:
        raw = self.path.read_bytes()
        lines = raw.split(b"\n")
        # Everything after the last newline is a line the writer never finished.
        complete, good_bytes = lines[:-1], len(raw) - len(lines[-1])
        where = f"`checkpoint` {self.path}"
        if not complete:
            raise InputError(f"{where}: has no complete header line; remove it to start again")
        try:
            header = json.loads(complete[0])
            plan = [
                WorkUnit(int(i), str(m), int(f), int(a), int(b), *(str(c) for c in scale))
                for i, m, f, a, b, *scale in header["units"]
            ]
            version, made_for = header["checkpoint"], header["run"]
        except (ValueError, KeyError, TypeError):
            raise InputError(f"{where}:1: not a checkpoint header; remove the file") from None
        if version != CHECKPOINT_VERSION:
            raise InputError(f"{where}: version {version} is not {CHECKPOINT_VERSION}; remove it")
        if header.get("check") != _check(version, made_for, header["units"]):
            raise InputError(
                f"{where}:1: the header was changed or damaged (its checksum does not match); "
                "remove the file to start again"
            )
        if made_for != run:
            raise InputError(
                f"{where}: was made for other data or other options; resume with the same "
                "data and options, or remove the file to start again"
            )
        by_id = {u.id: u for u in plan}
        done: dict[int, Finished] = {}
        for number, line in enumerate(complete[1:], start=2):
            try:
                record = json.loads(line)
                intact = record["check"] == _check(
                    record["unit"],
                    record["shape"],
                    record["predictions"],
                    record["shares"],
                    record["classes"],
                )
                unit = by_id[int(record["unit"])]
                shape = tuple(int(n) for n in record["shape"])
                predictions = _decode(record["predictions"], "<i4", shape[:-1], np.int32)
                values = _decode(record["shares"], "<f8", shape, np.float64)
                classes = None
                if record["classes"] is not None:
                    classes = _decode(record["classes"], "<i4", shape[2:], np.int32)
            except (ValueError, KeyError, TypeError):
                raise InputError(
                    f"{where}:{number}: a damaged record; remove the file to start again"
                ) from None
            if not intact:
                raise InputError(
                    f"{where}:{number}: the record was changed or damaged (its checksum "
                    "does not match); remove the file to start again"
                )
            n_classes = shape[-1]
            expected: tuple[int, ...] = (*shape[:2], unit.rows, shape[-1])
            if grid is not None:
                n_classes = grid[2]
                expected = (grid[0], grid[1], unit.rows, grid[3])
            if shape != expected or (classes is None) != (shape[-1] == n_classes):
                raise InputError(
                    f"{where}:{number}: unit {unit.id} has shape {shape}, expected {expected}; "
                    "remove the file to start again"
                )
            for codes, low in ((predictions, 0), (classes, -1)):
                if codes is None or not codes.size:
                    continue
                if not low <= codes.min() <= codes.max() < n_classes:
                    raise InputError(
                        f"{where}:{number}: unit {unit.id} holds class codes outside "
                        f"0..{n_classes - 1}; remove the file to start again"
                    )
            if not (np.isfinite(values).all() and (values >= 0).all() and (values <= 1).all()):
                raise InputError(
                    f"{where}:{number}: unit {unit.id} holds vote shares outside 0..1; "
                    "remove the file to start again"
                )
            done[unit.id] = (predictions, VoteShares(values, classes))
        return plan, done, good_bytes


def _check_plan(plan: list[WorkUnit], fresh: list[WorkUnit], where: str) -> None:
    """Refuse a resumed plan that does not cover this run's test rows as its own plan does.

    The plan may cut the rows into other blocks (it was made for other
    workers), but each (scaling, metric) must cover every test row once, and
    each block must lie within one fold of this run.
    """

    def refuse(why: str) -> InputError:
        return InputError(f"{where}: its plan {why}; remove the file to start again")

    if len({u.id for u in plan}) != len(plan):
        raise refuse("repeats a unit")
    searches = {(u.scale, u.metric) for u in fresh}
    if {(u.scale, u.metric) for u in plan} != searches:
        raise refuse("is for other metrics or scalings")
    folds: dict[int, tuple[int, int]] = {}
    for unit in fresh:
        low, high = folds.get(unit.fold, (unit.start, unit.stop))
        folds[unit.fold] = (min(low, unit.start), max(high, unit.stop))
    rows = max(u.stop for u in fresh)
    for search in searches:
        spans = sorted((u.start, u.stop, u.fold) for u in plan if (u.scale, u.metric) == search)
        edges = [start for start, _, _ in spans] + [rows]
        if edges[0] != 0 or any(stop != edges[i + 1] for i, (_, stop, _) in enumerate(spans)):
            raise refuse("does not cover every test row once")
        for start, stop, fold in spans:
            low, high = folds.get(fold, (0, -1))
            if not low <= start < stop <= high:
                raise refuse(f"has a block (rows {start}..{stop - 1}) outside its fold")
