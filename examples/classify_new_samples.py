"""Tune, keep the model, and classify samples it has never seen.

Tuning is training: the run's product is a model. This program tunes on part
of the wine data, saves the best model, loads it back (a safe file of arrays
and JSON, never pickle), classifies the held-out rows in memory and through
the prediction pipeline on the process pool, and hands the same model to
scikit-learn.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import numpy as np
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split

from stages import Dataset, KNNModel, predict, tune


async def main() -> None:
    wine = load_wine()
    X_train, X_new, y_train, y_new = train_test_split(
        wine.data, wine.target, test_size=0.25, stratify=wine.target, random_state=0
    )
    training = Dataset(
        X=X_train,
        y=y_train,
        classes=[str(c) for c in wine.target_names],
        source="wine (training part)",
        feature_names=list(wine.feature_names),
    )
    result = await tune(training, k="1-25", metrics="manhattan,chebyshev", workers=2)
    model = result.model()
    print(f"tuned: {model.params()} (cross-validated accuracy {result.best.mean_accuracy:.4f})")

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "wine.knn"
        model.save(path)
        loaded = KNNModel.load(path)

        predicted = loaded.predict(X_new)  # in memory, on threads
        truth = np.asarray(wine.target_names)[y_new]
        print(f"held-out accuracy: {np.mean(predicted == truth):.4f} on {len(truth)} new samples")
        shares = np.round(loaded.predict_proba(X_new[:1])[0], 3)
        print(f"first sample: {predicted[0]}, vote shares {shares}")

        # The same through the pipeline on the process pool, streamed to a CSV file.
        np.save(Path(folder) / "new.npy", X_new)
        out = Path(folder) / "predictions.csv"
        summary = await predict(loaded, Path(folder) / "new.npy", out=out, workers=2)
        lines = out.read_text().splitlines()
        print(f"pipeline: {summary.rows} rows written, header {lines[0]!r}")

    twin = loaded.to_sklearn()
    agrees = bool((twin.predict(X_new) == predicted).all())
    print(f"scikit-learn twin {type(twin).__name__} agrees: {agrees}")


if __name__ == "__main__":
    asyncio.run(main())
