"""The k-NN tuning job: load, partition, plan, neighbours, score, rank.

The entry points are :func:`tune` and :class:`Tuning`; the stage functions in
:mod:`stages.flow` can be wired by hand into a :class:`pipeline.Pipeline`.
"""

from .dataset import Dataset
from .load import load_dataset
from .partition import CvSpec, make_folds, parse_cv
from .rank import RankedCandidate
from .results import TuningResult
from .search_space import Candidate, SearchSpace
from .tuning import Tuning, tune

__all__ = [
    "Candidate",
    "CvSpec",
    "Dataset",
    "RankedCandidate",
    "SearchSpace",
    "Tuning",
    "TuningResult",
    "load_dataset",
    "make_folds",
    "parse_cv",
    "tune",
]
