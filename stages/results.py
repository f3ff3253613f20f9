"""The outcome of a tuning: results JSON (version 2) and the printed leaderboard.

Version 2 keeps every field of version 1 with its meaning and adds, per
candidate, ``mean_<score>``, ``std_<score>`` and ``fold_<score>`` for every
score of :data:`stages.score.SCORES`, and at the top ``scoring``: the score
that ranks. Leave-one-out runs (every fold one row) also give ``pooled_<score>``,
every score over all out-of-fold predictions at once, and rank by it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from pipeline.files import atomic_write_text

from .dataset import Dataset
from .rank import RankedCandidate
from .search_space import Candidate

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from .model import KNNModel

__all__ = ["RESULTS_VERSION", "TuningResult"]

RESULTS_VERSION = 2


@dataclass(frozen=True, repr=False)
class TuningResult:
    """Everything a tuning found, ranked best first.

    ``complete`` is False when the run was interrupted and only some folds were
    scored; the leaderboard then covers the folds done so far.
    """

    def __repr__(self) -> str:
        """A summary: the full repr (every fold score of every candidate) can run to
        megabytes, and asyncio formats it when ``asyncio.run`` ends on a large run."""
        best = self.best.candidate.params() if self.best else None
        return (
            f"TuningResult(data={self.dataset.get('source')!r}, "
            f"candidates={len(self.candidates)}, best={best}, complete={self.complete}, "
            f"seconds={self.seconds:.2f})"
        )

    dataset: dict[str, Any]
    cv: dict[str, Any]
    candidates: list[RankedCandidate]
    seconds: float
    workers: int
    complete: bool = True
    precision: str = "float64"
    training: Dataset | None = field(default=None, repr=False, compare=False)
    missing: str = "error"
    scoring: str = "accuracy"
    options: Mapping[str, Any] = field(default_factory=dict)
    """What decided the results (:meth:`TuningOptions.describe`); empty if built by hand."""

    def model(
        self, params: Mapping[str, Any] | Candidate | RankedCandidate | None = None
    ) -> KNNModel:
        """The tuned model: the best candidate's (or ``params``'), trained on every row.

        ``params`` is a dict such as ``{"k": 5, "metric": "manhattan",
        "weights": "distance"}`` or a row of :attr:`candidates`.
        """
        from .model import KNNModel

        if self.training is None:
            raise RuntimeError("this result carries no training data (it was built by hand)")
        if params is None:
            if self.best is None:
                raise RuntimeError("no candidate was scored, so there is no best model")
            params = self.best.candidate
        if isinstance(params, RankedCandidate):
            params = params.candidate
        if isinstance(params, Candidate):
            params = params.params()
        try:
            return KNNModel.from_dataset(self.training, params, missing=self.missing)
        except KeyError as missing_key:
            raise ValueError(f"params: needs k and metric, missing {missing_key}") from None

    @property
    def best(self) -> RankedCandidate | None:
        return self.candidates[0] if self.candidates else None

    def to_dict(self) -> dict[str, Any]:
        """The results JSON object, version 2.

        A float32 run says so in a ``precision`` key; float64 (exact) runs carry none.
        """
        best = self.best
        rounded = {} if self.precision == "float64" else {"precision": self.precision}
        return {
            "version": RESULTS_VERSION,
            "scoring": self.scoring,
            "dataset": self.dataset,
            "cv": self.cv,
            "candidates": [c.to_dict() for c in self.candidates],
            "best": best.candidate.params() if best else None,
            "timing": {"seconds": round(self.seconds, 6), "workers": self.workers},
            **rounded,
            **({"options": dict(self.options)} if self.options else {}),
        }

    def to_json(self) -> str:
        """The results JSON text: indented, with one line per candidate.

        The candidates are nearly all of the file; written by orjson, compact and
        one to a line, they take a tenth of the json module's time (which indenting
        would triple), and a line per candidate suits ``grep`` and diffs.
        """
        document = self.to_dict()
        candidates = document["candidates"]
        document["candidates"] = []
        lines = ",\n    ".join(
            orjson.dumps(candidate, option=orjson.OPT_SERIALIZE_NUMPY).decode()
            for candidate in candidates
        )
        listed = f"[\n    {lines}\n  ]" if candidates else "[]"
        # Only a top-level key is indented by two spaces, and no encoded string holds a
        # raw newline, so this is the one place of the empty list, whatever the values.
        text = json.dumps(document, indent=2).replace(
            '\n  "candidates": []', f'\n  "candidates": {listed}', 1
        )
        return text + "\n"

    def write_json(self, path: str | os.PathLike[str]) -> None:
        """Write the results JSON atomically (a reader never sees half a file)."""
        atomic_write_text(path, self.to_json())

    def table(self, top: int = 10) -> Table:
        """The leaderboard's first ``top`` rows as a rich table."""
        from rich.table import Table

        title, columns, rows = self._leaderboard(top)
        table = Table(title=title, title_justify="left")
        for name, justify in columns:
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        for row in rows:
            table.add_row(*row)
        return table

    def plain_table(self, top: int = 10) -> str:
        """The leaderboard's first ``top`` rows as aligned plain text, and the summary
        line: for a file or a pipe, where box drawing is noise."""
        title, columns, rows = self._leaderboard(top)
        widths = [
            max([len(name), *(len(row[i]) for row in rows)]) for i, (name, _) in enumerate(columns)
        ]

        def line(cells: list[str]) -> str:
            placed = [
                cell.rjust(width) if justify == "right" else cell.ljust(width)
                for cell, width, (_, justify) in zip(cells, widths, columns, strict=True)
            ]
            return "  ".join(placed).rstrip()

        lines = [title, line([name for name, _ in columns]), *(line(row) for row in rows)]
        return "\n".join([*lines, self.summary()]) + "\n"

    def summary(self) -> str:
        """The line under the leaderboard: how many candidates, how long, on what."""
        rounded = "" if self.precision == "float64" else f", {self.precision} distances"
        return (
            f"{len(self.candidates)} candidates, {self.seconds:.2f} s on {self.workers} workers"
            + rounded
        )

    def _leaderboard(self, top: int) -> tuple[str, list[tuple[str, str]], list[list[str]]]:
        """The title, the (name, justification) of each column, and the rows' cells."""
        folds = len(self.cv.get("folds", []))
        title = f"k-NN leaderboard: {self.dataset['source']}, {self.cv['kind']} ({folds} folds)"
        if self.scoring != "accuracy":
            title += f", ranked by {self.scoring}"
        if any(row.pooled_scores for row in self.candidates):
            title += ", scores pooled over all folds"
        if not self.complete:
            title += " [PARTIAL: interrupted]"
        scaled = any(row.candidate.scale is not None for row in self.candidates)
        columns = [("rank", "right"), ("k", "right"), ("metric", "left"), ("weights", "left")]
        if scaled:
            columns.append(("scale", "left"))
        columns += [("accuracy", "right"), ("± std", "right"), ("balanced", "right")]
        columns.append(("F1 macro", "right"))
        shown = ("accuracy", "balanced_accuracy", "f1_macro")
        extra = self.scoring not in shown
        if extra:
            columns.append((self.scoring, "right"))
        rows = []
        for row in self.candidates[:top]:
            how = [str(row.rank), str(row.candidate.k), row.candidate.metric, row.candidate.weights]
            if scaled:
                how.append(str(row.candidate.scale))
            pooled = row.pooled_scores
            values = [
                f"{row.mean_accuracy:.4f}",
                f"{row.std_accuracy:.4f}",
                f"{pooled.get('balanced_accuracy', row.mean_balanced_accuracy):.4f}",
                f"{pooled.get('f1_macro', row.mean_f1_macro):.4f}",
            ]
            if extra:
                values.append(f"{row.mean_score:.4f}")
            rows.append([*how, *values])
        return title, columns, rows

    def print_table(self, top: int = 10, console: Console | None = None) -> None:
        """The leaderboard as a rich table and the summary line (on ``console``, or
        standard output)."""
        from rich.console import Console

        out = console or Console()
        if console is None and not out.is_terminal:
            out = Console(width=160)  # a file or a pipe: no terminal width to fit
        out.print(self.table(top))
        out.print(self.summary())
