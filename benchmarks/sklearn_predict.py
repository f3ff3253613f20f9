"""The script a scikit-learn user writes to classify a file of samples, timed as a whole.

    python benchmarks/sklearn_predict.py TRAIN.npz SAMPLES.npy OUT.csv --metric M --k K

Loads the training rows (``X``, ``y``) and the samples, fits
``KNeighborsClassifier(algorithm="brute")``, predicts and writes
``row,prediction`` lines, the same CSV as ``python -m pipeline predict``.
It imports nothing from this project, as such a script would not.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from sklearn.neighbors import KNeighborsClassifier


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train")
    parser.add_argument("samples")
    parser.add_argument("out")
    parser.add_argument("--metric", default="euclidean")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args(argv)
    with np.load(args.train) as data:
        X, y = data["X"], data["y"]
    estimator = KNeighborsClassifier(
        n_neighbors=args.k, metric=args.metric, algorithm="brute", n_jobs=args.n_jobs
    ).fit(X, y)
    predictions = estimator.predict(np.load(args.samples))
    rows = np.column_stack([np.arange(predictions.size), predictions])
    np.savetxt(args.out, rows, fmt="%d", delimiter=",", header="row,prediction", comments="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
