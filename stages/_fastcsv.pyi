import numpy as np
import numpy.typing as npt

def parse(
    data: bytes,
    delimiter: str,
    width: int,
    features: npt.NDArray[np.intp],
    spans_of: npt.NDArray[np.intp],
    X: npt.NDArray[np.float64],
    spans: npt.NDArray[np.intp],
) -> tuple[int, int]: ...
