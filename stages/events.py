"""The k-NN tuning's own events: a candidate's fold scored, and a new leader.

Defining them registers their kinds with the event stream (see
:mod:`pipeline.events.records`), so the schema and every consumer know them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pipeline.events import Event
from pipeline.runs import LOGGERS as FRAMEWORK_LOGGERS

__all__ = ["LOGGERS", "CandidateScored", "NewBest"]

LOGGERS = ("stages", *FRAMEWORK_LOGGERS)
"""Loggers whose records become a tuning's or prediction's ``log`` events: the job's own
and the framework's."""


@dataclass(frozen=True, kw_only=True)
class CandidateScored(Event):
    """One candidate's score on one fold, with its mean over the folds scored so far."""

    kind: ClassVar[str] = "candidate_scored"
    params: Mapping[str, Any]
    fold: str
    score: float
    folds_done: int
    folds_total: int
    mean_score: float


@dataclass(frozen=True, kw_only=True)
class NewBest(Event):
    """The leaderboard has a new leader: its parameters and mean score."""

    kind: ClassVar[str] = "new_best"
    params: Mapping[str, Any]
    mean_score: float
    folds_done: int
