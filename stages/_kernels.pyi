from typing import Any

import numpy as np
import numpy.typing as npt

CHUNK: int
QUERY_BLOCK: int
VECTOR_ISA: str

def nearest(
    metric: int,
    queries: npt.NDArray[np.floating[Any]],
    points_t: npt.NDArray[np.floating[Any]],
    query_groups: npt.NDArray[np.intp],
    point_groups: npt.NDArray[np.intp],
    columns: npt.NDArray[np.intp],
    best: npt.NDArray[np.floating[Any]],
    power: float = 2.0,
) -> None: ...
def refine(
    queries: npt.NDArray[np.floating[Any]],
    points: npt.NDArray[np.floating[Any]],
    candidates: npt.NDArray[np.intp],
    columns: npt.NDArray[np.intp],
    best: npt.NDArray[np.floating[Any]],
    metric: int = 0,
    power: float = 2.0,
) -> None: ...
def select(
    scores: npt.NDArray[np.floating[Any]],
    query_terms: npt.NDArray[np.floating[Any]],
    point_terms: npt.NDArray[np.floating[Any]],
    scale: float,
    offset: int,
    query_groups: npt.NDArray[np.intp],
    point_groups: npt.NDArray[np.intp],
    columns: npt.NDArray[np.intp],
    best: npt.NDArray[np.floating[Any]],
) -> None: ...
def vote(
    columns: npt.NDArray[np.intp],
    weights: npt.NDArray[np.float64],
    ks: npt.NDArray[np.intp],
    winners: npt.NDArray[np.intp],
    votes: npt.NDArray[np.float64],
) -> None: ...
def scored_pairs(
    scores: npt.NDArray[np.float64],
    positive: npt.NDArray[np.intp],
    out: npt.NDArray[np.float64],
) -> None: ...
def tally_codes(
    predictions: npt.NDArray[np.intp],
    truth: npt.NDArray[np.intp],
    classes: int,
    hits: npt.NDArray[np.int64],
    predicted: npt.NDArray[np.int64],
    confusion: npt.NDArray[np.int64],
) -> None: ...
def count_shares(
    shares: npt.NDArray[np.float64],
    ks: npt.NDArray[np.intp],
    truth: npt.NDArray[np.intp],
    columns: npt.NDArray[np.intp],
    histograms: npt.NDArray[np.int64],
) -> None: ...
