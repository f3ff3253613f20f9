"""Public names of ``stages``: this stub is the one list of them.

:mod:`lazy_loader` reads it at run time to import each name on first use, and type
checkers read it as the package's interface (``X as X`` marks a re-export).
"""

from .dataset import Dataset as Dataset
from .events import CandidateScored as CandidateScored, NewBest as NewBest
from .flow import RankStage as RankStage
from .load import load_dataset as load_dataset
from .model import KNNModel as KNNModel, ModelFileError as ModelFileError
from .options import TuningOptions as TuningOptions
from .partition import CvSpec as CvSpec, make_folds as make_folds, parse_cv as parse_cv
from .predicting import (
    Prediction as Prediction,
    PredictionSummary as PredictionSummary,
    predict as predict,
)
from .rank import RankedCandidate as RankedCandidate
from .results import TuningResult as TuningResult
from .search_cv import KNNSearchCV as KNNSearchCV
from .search_space import Candidate as Candidate, SearchSpace as SearchSpace
from .tuning import Tuning as Tuning, compute_pool as compute_pool, tune as tune
