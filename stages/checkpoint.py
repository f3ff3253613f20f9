"""Checkpoints: every finished unit on disk, so an interrupted run resumes.

The file is JSON lines. The first line names the run it belongs to (a hash
of the data and of the options that change results) and the work plan; each
further line is one finished unit's predictions and vote shares, appended, flushed and
fsynced as the unit finishes. A torn last line (the process died while
writing it) is cut off on resume; anything else that does not parse is an
error, because guessing could give wrong results.
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

from pipeline.errors import InputError

from .dataset import Dataset
from .plan import WorkUnit

__all__ = ["CHECKPOINT_VERSION", "CheckpointFile", "Finished", "fingerprint"]

Finished = tuple[npt.NDArray[np.int16], npt.NDArray[np.float64]]
"""A finished unit: its predictions ``(W, K, rows)`` and vote shares ``(W, K, rows, classes)``."""

CHECKPOINT_VERSION = 2


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


def _unit_row(unit: WorkUnit) -> list[Any]:
    row: list[Any] = [unit.id, unit.metric, unit.fold, unit.start, unit.stop]
    return row if unit.scale is None else [*row, unit.scale]


class CheckpointFile:
    """One run's checkpoint: open it with :meth:`begin`, then :meth:`record` units."""

    def __init__(self, path: str | os.PathLike[str], *, resume: bool) -> None:
        self.path = Path(path)
        self.resume = resume
        self._stream: IO[str] | None = None

    def begin(
        self, run: str, units: list[WorkUnit], grid: tuple[int, int, int] | None = None
    ) -> tuple[list[WorkUnit], dict[int, Finished]]:
        """The work plan to follow and the results of units already finished.

        A new checkpoint records ``units``; a resumed one must belong to the
        same ``run`` (fingerprint) and supplies its own plan, so a resumed run
        does exactly the units that are missing. ``grid`` is the number of
        weightings, of ``k`` values and of classes every record must hold.
        """
        if self.path.exists() and not self.resume:
            raise InputError(
                f"--checkpoint {self.path}: the file exists; add --resume to continue that run, "
                "or remove the file to start again"
            )
        if self.resume and self.path.exists() and self.path.stat().st_size > 0:
            plan, done, good_bytes = self._read(run, grid)
            self._stream = open(self.path, "r+", encoding="utf-8")  # noqa: SIM115
            self._stream.truncate(good_bytes)  # cut a torn last line before appending
            self._stream.seek(good_bytes)
            return plan, done
        self._stream = open(self.path, "w", encoding="utf-8")  # noqa: SIM115
        header = {
            "checkpoint": CHECKPOINT_VERSION,
            "run": run,
            "units": [_unit_row(u) for u in units],
        }
        self._write(json.dumps(header))
        return units, {}

    def record(
        self, unit: WorkUnit, predictions: npt.NDArray[np.int16], shares: npt.NDArray[np.float64]
    ) -> None:
        """Append one finished unit, durably (flushed and fsynced)."""
        data = np.ascontiguousarray(predictions, dtype="<i2")
        share_data = np.ascontiguousarray(shares, dtype="<f8")
        line = {
            "unit": unit.id,
            "shape": list(share_data.shape),
            "predictions": base64.b64encode(data.tobytes()).decode("ascii"),
            "shares": base64.b64encode(share_data.tobytes()).decode("ascii"),
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

    def _read(
        self, run: str, grid: tuple[int, int, int] | None
    ) -> tuple[list[WorkUnit], dict[int, Finished], int]:
        raw = self.path.read_bytes()
        lines = raw.split(b"\n")
        # Everything after the last newline is a line the writer never finished.
        complete, good_bytes = lines[:-1], len(raw) - len(lines[-1])
        where = f"--checkpoint {self.path}"
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
                unit = by_id[int(record["unit"])]
                shape = tuple(int(n) for n in record["shape"])
                data = np.frombuffer(base64.b64decode(record["predictions"]), dtype="<i2")
                predictions = data.reshape(shape[:-1]).astype(np.int16)
                share_data = np.frombuffer(base64.b64decode(record["shares"]), dtype="<f8")
                shares = share_data.reshape(shape).astype(np.float64)
            except (ValueError, KeyError, TypeError):
                raise InputError(
                    f"{where}:{number}: a damaged record; remove the file to start again"
                ) from None
            expected: tuple[int, ...] = (*shape[:2], unit.rows, shape[-1])
            if grid is not None:
                expected = (grid[0], grid[1], unit.rows, grid[2])
            if shape != expected:
                raise InputError(
                    f"{where}:{number}: unit {unit.id} has shape {shape}, expected {expected}; "
                    "remove the file to start again"
                )
            done[unit.id] = (predictions, shares)
        return plan, done, good_bytes
