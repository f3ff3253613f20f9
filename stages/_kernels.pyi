from typing import Any

import numpy as np
import numpy.typing as npt

CHUNK: int
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
) -> None: ...
