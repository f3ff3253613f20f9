"""The tuned model: training rows, labels and parameters that classify new samples.

A :class:`KNNModel` is what a tuning trains (``result.model()``). It
predicts with the same kernel and the same vote as the tuning scored, in
blocks on threads (the kernel releases the GIL), so memory stays flat in the
number of samples; :mod:`stages.predicting` runs the same blocks on the
process pool for large files.

Model files are a zip (NumPy's ``.npz``) of plain arrays plus a JSON header,
read with ``allow_pickle=False``: loading a file from someone else runs no
code of theirs. The format, version 1:

- ``header.npy``: uint8 bytes of a UTF-8 JSON object: ``format``
  (``"knn-pipeline-model"``), ``version`` (1), ``params`` (``k``, ``metric``,
  ``weights``), ``classes`` (label values, strings or numbers, in code order),
  ``feature_names``, ``label`` (the label column's name, or null),
  ``source``, ``other_columns`` (columns of the training file that were
  neither features nor the label: ``predict`` ignores them), ``missing``
  (the policy the rows went through), ``scale``
  (``none``, ``standard``, ``minmax`` or ``robust``: fitted on ``X`` when
  the model is loaded), ``rows`` and ``features``;
- ``X.npy``: float64 ``(rows, features)``, the training rows as the
  kernel sees them (after the missing-value policy);
- ``y.npy``: int64 ``(rows,)``, class codes into ``classes``;
- ``fill_values.npy`` (only with ``missing`` ``mean``/``median``): float64
  ``(features,)``, what a missing feature value of a new sample becomes.

Version 2 is version 1 plus ``encoding`` in the header, for a model whose
data had text columns: ``columns`` (the raw feature columns samples give, in
order) and ``text`` (each text column's ``name`` and sorted ``categories``,
one-hot encoded into ``X`` after the numeric columns). A model without text
columns is still written as version 1.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO, TypeGuard

import numpy as np
import numpy.typing as npt

from pipeline.compute import default_workers
from pipeline.errors import InputError
from pipeline.files import atomic_write
from pipeline.shared import InlineArray

from .classify import ModelInputs, classify_block, neighbours_of_block
from .dataset import Dataset
from .encoding import Encoding
from .kernels import transposed
from .metrics import parse_metric, sklearn_params
from .missing import MISSING_POLICIES, fit_fill_values
from .plan import MIN_BLOCK_ROWS, PAIRS_PER_UNIT, rows_per_block
from .scaling import SCALES, fit_scale, sklearn_scaler
from .search_space import WEIGHTS

__all__ = ["MODEL_FORMAT", "MODEL_VERSION", "KNNModel", "ModelFileError"]

MODEL_FORMAT = "knn-pipeline-model"
MODEL_VERSION = 2
_MEMBERS = ("header.npy", "X.npy", "y.npy", "fill_values.npy")
_HEADER_LIMIT = 64 * 2**20
"""A header larger than this is not one we wrote (feature names of a million columns fit)."""


class ModelFileError(InputError):
    """A model file that is damaged, truncated, foreign or from a newer version."""


def class_values(names: Sequence[str]) -> npt.NDArray[Any]:
    """Class names as the labels' own values: numbers when every name is one, else strings.

    A CSV label column of numbers is numbers to a pandas or scikit-learn
    user, and the loader already sorted such classes numerically.
    """
    try:
        numbers = [float(name) for name in names]
    except ValueError:
        return np.asarray(list(names), dtype=str)
    if len(set(numbers)) != len(numbers) or not all(np.isfinite(numbers)):
        return np.asarray(list(names), dtype=str)
    if all(n.is_integer() for n in numbers) and all(abs(n) < 2**53 for n in numbers):
        return np.asarray([int(n) for n in numbers], dtype=np.int64)
    return np.asarray(numbers, dtype=np.float64)


_SCAN_ROWS = 16_384


def _first_cell(samples: npt.NDArray[np.float64], test: Any) -> tuple[int, int] | None:
    """Row and column of the first cell where ``test`` holds, scanned a slice at a time
    so that checking many samples needs no mask as large as they are."""
    for start in range(0, samples.shape[0], _SCAN_ROWS):
        hits = np.argwhere(test(samples[start : start + _SCAN_ROWS]))
        if hits.size:
            return start + int(hits[0][0]), int(hits[0][1])
    return None


class KNNModel:
    """A k-NN classifier: the training rows, their labels and one ``(k, metric, weights)``.

    ``classes`` holds the label values in code order (as scikit-learn's
    ``classes_``); :meth:`predict` returns them. Samples have the model's
    features in its order (``feature_names``).
    """

    def __init__(
        self,
        X: npt.ArrayLike,
        y: npt.ArrayLike,
        classes: npt.ArrayLike,
        *,
        k: int,
        metric: str,
        weights: str = "uniform",
        feature_names: Sequence[str] | None = None,
        label: str | None = None,
        source: str = "",
        missing: str = "error",
        fill_values: npt.ArrayLike | None = None,
        scale: str = "none",
        other_columns: Sequence[str] = (),
        encoding: Encoding | None = None,
    ) -> None:
        self.X = np.ascontiguousarray(X, dtype=np.float64)
        self.y = np.ascontiguousarray(y, dtype=np.intp)
        self.classes = np.asarray(classes)
        if self.X.ndim != 2 or self.y.shape != (self.X.shape[0],):
            raise ValueError("X must be (rows, features) and y one code per row")
        try:
            metric = parse_metric(metric, "metric")
        except InputError as error:
            raise ValueError(str(error)) from None
        if weights not in WEIGHTS:
            raise ValueError(f"weights: unknown {weights!r}; choose from {', '.join(WEIGHTS)}")
        if not 1 <= k <= self.X.shape[0]:
            raise ValueError(f"k: {k} needs 1 <= k <= {self.X.shape[0]} (the training rows)")
        self.k, self.metric, self.weights = int(k), metric, weights
        names = list(feature_names) if feature_names else [f"x{i}" for i in range(self.X.shape[1])]
        if len(names) != self.X.shape[1]:
            raise ValueError(f"feature_names: {len(names)} names for {self.X.shape[1]} features")
        self.feature_names = names
        self.encoding = encoding if encoding is not None and encoding.text else None
        if self.encoding is not None and self.encoding.feature_names != names:
            raise ValueError("encoding: its encoded columns are not the feature names")
        self.label = label
        self.other_columns = list(other_columns)  # in the training file, neither feature nor label
        self.source = source
        self.missing = missing
        self.fill_values = None if fill_values is None else np.asarray(fill_values, np.float64)
        if scale not in SCALES:
            raise ValueError(f"scale: unknown {scale!r}; choose from {', '.join(SCALES)}")
        self.scale = scale
        # fitted on every training row, as the folds were; one-hot columns are not scaled
        one_hot = None if self.encoding is None else self.encoding.one_hot
        self.scaler = fit_scale(scale, self.X, keep=one_hot)
        self._inputs: ModelInputs | None = None

    @classmethod
    def from_dataset(
        cls, dataset: Dataset, params: Mapping[str, Any], *, missing: str = "error"
    ) -> KNNModel:
        """The model of ``params`` trained on every row of ``dataset``.

        With ``missing`` ``mean``/``median``, missing values are filled from all
        the rows (as each fold filled them from its training rows), and new
        samples are filled with the same values.
        """
        X, fill_values = dataset.X, None
        if missing in ("mean", "median") and np.isnan(X).any():
            fill_values = fit_fill_values(X, missing)
            X = np.where(np.isnan(X), fill_values, X)
        return cls(
            X,
            dataset.y,
            class_values(dataset.classes),
            k=int(params["k"]),
            metric=str(params["metric"]),
            weights=str(params.get("weights", "uniform")),
            feature_names=dataset.feature_names,
            label=dataset.label_name,
            source=dataset.source,
            missing=missing,
            fill_values=fill_values,
            scale=str(params.get("scale") or "none"),
            other_columns=dataset.other_columns,
            encoding=dataset.encoding,
        )

    # -- describing -------------------------------------------------------------------------

    @property
    def input_columns(self) -> list[str]:
        """The columns samples give: the features, or with text columns the raw ones."""
        return list(self.encoding.columns) if self.encoding else self.feature_names

    @property
    def n_features_in_(self) -> int:
        return len(self.input_columns)

    @property
    def class_names(self) -> list[str]:
        """The classes as text, for files and tables."""
        return [str(c) for c in self.classes.tolist()]

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"k": self.k, "metric": self.metric, "weights": self.weights}
        if self.scale != "none":
            params["scale"] = self.scale
        return params

    def __repr__(self) -> str:
        return (
            f"KNNModel(k={self.k}, metric={self.metric!r}, weights={self.weights!r}, "
            f"scale={self.scale!r}, "
            f"rows={self.X.shape[0]}, features={self.X.shape[1]}, classes={len(self.classes)})"
        )

    # -- predicting -------------------------------------------------------------------------

    def inputs(self) -> ModelInputs:
        """The worker inputs of this model with the arrays carried inline (threads)."""
        if self._inputs is None:
            self._inputs = self.worker_inputs(InlineArray)
        return self._inputs

    def worker_inputs(self, share: Any) -> ModelInputs:
        """Worker inputs with each array passed through ``share`` (e.g. ``SharedArrays.share``)."""
        rows = self.X if self.scaler is None else self.scaler.apply(self.X)
        X_t = transposed(rows)
        X_t.flags.writeable = False  # lets the kernels keep what they derive from it
        return ModelInputs(
            X_t=share(X_t),
            y=share(self.y),
            k=self.k,
            metric=self.metric,
            weights=self.weights,
            n_classes=len(self.classes),
            fill_values=None if self.fill_values is None else share(self.fill_values),
            scaler=self.scaler,
        )

    def block_rows(self, samples: int = 0, workers: int = 1) -> int:
        """Samples per block of work: about sixteen million distances, and at least four
        blocks per worker when there are ``samples`` to share, so all stay busy to the end."""
        # Blocks of 16 million distances, as a tuning unit's: a block is a task to
        # pickle, send and write back, and there is one vote per block, not per k.
        size = rows_per_block(self.X.shape[0], PAIRS_PER_UNIT)
        if samples > 0:
            size = min(size, -(-samples // (4 * workers)))
        return max(MIN_BLOCK_ROWS, size)

    def check_samples(self, X: npt.ArrayLike, name: str = "X") -> npt.NDArray[np.float64]:
        """``X`` as a float64 matrix of this model's features, or a clear :class:`InputError`.

        A DataFrame that names every feature is read by those names, in the model's order.
        """
        columns = getattr(X, "columns", None)
        if columns is not None and set(self.input_columns) <= {str(c) for c in columns}:
            by_name = {str(c): c for c in columns}
            frame: Any = X
            X = frame[[by_name[name] for name in self.input_columns]]
        if self.encoding is not None:  # text columns: one-hot, as the training rows were
            X = self.encoding.encode_raw(X, name)
        try:
            samples = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError):
            raise InputError(
                f"{name}: the samples are not numeric; convert them to numbers"
            ) from None
        if samples.ndim == 1 and self.X.shape[1] == 1:
            samples = samples[:, None]
        if samples.ndim != 2 or samples.shape[1] != self.X.shape[1]:
            raise InputError(
                f"{name}: samples of shape {samples.shape}, but the model has "
                f"{self.X.shape[1]} features ({', '.join(self.feature_names[:8])}"
                f"{', ...' if self.X.shape[1] > 8 else ''}); give one column per feature"
            )
        infinite = _first_cell(samples, np.isinf)
        if infinite is not None:
            row, column = infinite
            raise InputError(f"{name}: row {row}, column {column} is infinite; give finite numbers")
        missing = None if self.fill_values is not None else _first_cell(samples, np.isnan)
        if missing is not None:
            row, column = missing
            raise InputError(
                f"{name}: row {row}, column {column} is missing (NaN), and the model was trained "
                "with `missing` error or drop; fill it in, or tune with `missing` mean or median"
            )
        return samples

    def _map_blocks(
        self, fn: Any, samples: npt.NDArray[np.float64], n_jobs: int | None
    ) -> list[Any]:
        """``fn(block)`` for each block of samples, on up to ``n_jobs`` threads, in order."""
        workers = n_jobs if n_jobs and n_jobs > 0 else default_workers()
        size = self.block_rows(samples.shape[0], workers)
        blocks = [samples[start : start + size] for start in range(0, samples.shape[0], size)]
        workers = min(len(blocks), workers)
        if workers <= 1:
            return [fn(block) for block in blocks]
        with concurrent.futures.ThreadPoolExecutor(workers) as threads:
            return list(threads.map(fn, blocks))

    def predict_codes(self, X: npt.ArrayLike, *, n_jobs: int | None = None) -> npt.NDArray[np.intp]:
        """Class codes (indices into ``classes``) of each sample."""
        samples = self.check_samples(X)
        inputs = self.inputs()
        done = self._map_blocks(lambda b: classify_block(inputs, b).codes, samples, n_jobs)
        return np.concatenate(done) if done else np.empty(0, dtype=np.intp)

    def predict(self, X: npt.ArrayLike, *, n_jobs: int | None = None) -> npt.NDArray[Any]:
        """The class of each sample; a vote tie goes to the first class in ``classes``."""
        return self.classes[self.predict_codes(X, n_jobs=n_jobs)]

    def predict_proba(
        self, X: npt.ArrayLike, *, n_jobs: int | None = None
    ) -> npt.NDArray[np.float64]:
        """Vote shares per class, columns in ``classes`` order (scikit-learn's ``predict_proba``).

        ``uniform``: the fraction of the ``k`` neighbours in each class;
        ``distance``: the fraction of the 1/d weight; a sample that matches
        training rows exactly gets its shares from those rows only.
        """
        samples = self.check_samples(X)
        inputs = self.inputs()

        def shares(block: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
            proba = classify_block(inputs, block, proba=True).proba
            assert proba is not None
            return proba

        done = self._map_blocks(shares, samples, n_jobs)
        return np.concatenate(done) if done else np.empty((0, len(self.classes)))

    def kneighbors(
        self,
        X: npt.ArrayLike,
        n_neighbors: int | None = None,
        return_distance: bool = True,
        *,
        n_jobs: int | None = None,
    ) -> Any:
        """Distances and training-row indices of the nearest rows (scikit-learn's order)."""
        k = self.k if n_neighbors is None else int(n_neighbors)
        if not 1 <= k <= self.X.shape[0]:
            raise InputError(
                f"n_neighbors: {k} needs 1 <= n_neighbors <= {self.X.shape[0]} (the training rows)"
            )
        samples = self.check_samples(X)
        inputs = self.inputs()
        done = self._map_blocks(lambda b: neighbours_of_block(inputs, b, k), samples, n_jobs)
        distances = np.concatenate([d for d, _ in done]) if done else np.empty((0, k))
        indices = np.concatenate([i for _, i in done]) if done else np.empty((0, k), np.intp)
        return (distances, indices) if return_distance else indices

    # -- scikit-learn -----------------------------------------------------------------------

    def to_sklearn(self) -> Any:
        """A fitted scikit-learn estimator with this model's predictions.

        ``KNeighborsClassifier(algorithm="brute")``, or a ``Pipeline`` of
        ``SimpleImputer`` and the scaler before it when the model fills missing
        values or scales; fitted on the same rows and labels, so its
        ``classes_`` equal ``classes``. With text columns, a ``ColumnTransformer``
        (the numeric steps, ``OneHotEncoder``) comes first, and the pipeline takes
        DataFrames with the raw columns (pandas needed).
        """
        from sklearn.impute import SimpleImputer
        from sklearn.neighbors import KNeighborsClassifier
        from sklearn.pipeline import make_pipeline

        classifier = KNeighborsClassifier(
            n_neighbors=self.k,
            weights=self.weights,
            algorithm="brute",
            **sklearn_params(self.metric),
        )
        steps = [] if self.fill_values is None else [SimpleImputer(strategy=self.missing)]
        scaler = sklearn_scaler(self.scale)
        if scaler is not None:
            steps.append(scaler)
        labels = self.classes[self.y]
        if self.encoding is not None:
            return self._sklearn_with_text(steps, classifier).fit(self._raw_frame(), labels)
        if not steps:
            return classifier.fit(self.X, labels)
        return make_pipeline(*steps, classifier).fit(self.X, labels)

    def _sklearn_with_text(self, numeric_steps: list[Any], classifier: Any) -> Any:
        """``ColumnTransformer`` (numeric steps, ``OneHotEncoder``) then the classifier:
        the same columns, in the same order, as our encoded rows."""
        from sklearn.compose import ColumnTransformer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder

        assert self.encoding is not None
        numeric: Any = make_pipeline(*numeric_steps) if numeric_steps else "passthrough"
        encoder = OneHotEncoder(
            categories=[list(t.categories) for t in self.encoding.text],
            handle_unknown="ignore",
            sparse_output=False,
        )
        prepare = ColumnTransformer(
            [
                ("numeric", numeric, self.encoding.numeric_columns),
                ("text", encoder, [t.name for t in self.encoding.text]),
            ]
        )
        return make_pipeline(prepare, classifier)

    def _raw_frame(self) -> Any:
        """The training rows as a DataFrame with the raw columns' names: text columns are
        picked by name, so the scikit-learn pipeline takes DataFrames in any column order."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "to_sklearn of a model with text columns needs pandas: pip install pandas"
            ) from None
        assert self.encoding is not None
        return pd.DataFrame(self._raw_rows(), columns=list(self.encoding.columns))

    def _raw_rows(self) -> npt.NDArray[Any]:
        """The training rows as samples give them: numbers, and text for text columns."""
        assert self.encoding is not None
        raw = np.empty((self.X.shape[0], len(self.encoding.columns)), dtype=object)
        numeric = self.encoding.numeric_positions
        for c, at in enumerate(numeric):
            raw[:, at] = self.X[:, c]
        start = len(numeric)
        for column, at in zip(self.encoding.text, self.encoding.text_positions, strict=True):
            width = len(column.categories)
            codes = self.X[:, start : start + width].argmax(axis=1)
            raw[:, at] = np.asarray(column.categories, dtype=object)[codes]
            start += width
        return raw

    # -- files ------------------------------------------------------------------------------

    def _header(self) -> dict[str, Any]:
        return {
            "format": MODEL_FORMAT,
            "version": MODEL_VERSION if self.encoding else 1,
            "params": self.params(),
            "classes": [_json_scalar(c) for c in self.classes.tolist()],
            "feature_names": self.feature_names,
            "label": self.label,
            "source": self.source,
            "missing": self.missing,
            "scale": self.scale,
            "other_columns": self.other_columns,
            "rows": int(self.X.shape[0]),
            "features": int(self.X.shape[1]),
            **({"encoding": self.encoding.describe()} if self.encoding else {}),
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the model file atomically (a reader sees the old file or the new, never half)."""
        header = np.frombuffer(json.dumps(self._header()).encode("utf-8"), dtype=np.uint8)
        arrays: dict[str, npt.NDArray[Any]] = {
            "header": header,
            "X": self.X,
            "y": self.y.astype(np.int64),
        }
        if self.fill_values is not None:
            arrays["fill_values"] = self.fill_values

        def write(stream: BinaryIO) -> None:
            np.savez(stream, allow_pickle=False, **arrays)

        atomic_write(path, write)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> KNNModel:
        """Read a model file; refuse anything else with one :class:`ModelFileError` line."""
        where = os.fspath(path)
        if not os.path.isfile(where):
            raise ModelFileError(
                f"{where}: no such model file; give the path --save-model or KNNModel.save wrote"
            )
        if not zipfile.is_zipfile(where):
            with open(where, "rb") as stream:
                if stream.read(4) == b"PK\x03\x04":  # a zip's first entry, but no directory
                    raise ModelFileError(
                        f"{where}: damaged or truncated model file (the zip archive is "
                        "incomplete); save the model again"
                    )
            raise ModelFileError(
                f"{where}: not a knn-pipeline model file (not a zip archive); "
                "give a file written by --save-model or KNNModel.save"
            )
        try:
            with zipfile.ZipFile(where) as archive:
                return cls._from_archive(where, archive)
        except ModelFileError:
            raise
        except (
            OSError,
            EOFError,
            KeyError,
            ValueError,
            OverflowError,
            MemoryError,
            zipfile.BadZipFile,
            zlib.error,
        ) as error:
            reason = " ".join(str(error).split())[:200] or type(error).__name__
            raise ModelFileError(
                f"{where}: damaged or truncated model file ({reason}); save the model again"
            ) from None

    @classmethod
    def _from_archive(cls, where: str, archive: zipfile.ZipFile) -> KNNModel:
        """Check every member before reading it: names, stored (not compressed, so a
        member is never larger than the file), and each array's dtype and shape."""

        def refuse(why: str) -> ModelFileError:
            return ModelFileError(
                f"{where}: {why}; give a file written by --save-model or KNNModel.save"
            )

        members = {info.filename: info for info in archive.infolist()}
        if "header.npy" not in members:
            raise refuse("not a knn-pipeline model file (no header)")
        for name, info in members.items():
            if name not in _MEMBERS:
                raise refuse(f"unexpected member {name!r}")
            if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
                raise refuse(f"member {name!r} is compressed; model files store arrays as they are")

        def array(name: str, dtype: Any, shape: tuple[int, ...] | None) -> npt.NDArray[Any]:
            with archive.open(name) as stream:
                version = np.lib.format.read_magic(stream)
                read_header = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                found_shape, fortran, found_dtype = read_header(stream, max_header_size=4096)
                wanted = found_shape if shape is None else shape
                if found_dtype != np.dtype(dtype) or fortran or found_shape != wanted:
                    raise refuse(f"member {name!r} is not the {np.dtype(dtype)} array it should be")
                size = int(np.prod(wanted, dtype=np.int64)) * np.dtype(dtype).itemsize
                if size > members[name].file_size:
                    raise refuse(f"member {name!r} is shorter than its shape")
                data = stream.read(size)
                if len(data) != size:
                    raise refuse(f"member {name!r} is shorter than its shape")
                return np.frombuffer(data, dtype=dtype).reshape(wanted).copy()

        raw = array("header.npy", np.uint8, None)
        if raw.ndim != 1 or raw.size > _HEADER_LIMIT:
            raise refuse("not a knn-pipeline model file (the header is not JSON bytes)")
        try:
            header = json.loads(raw.tobytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise refuse("not a knn-pipeline model file (the header is not JSON)") from None
        if not isinstance(header, dict) or header.get("format") != MODEL_FORMAT:
            raise refuse("not a knn-pipeline model file (another format)")
        version = header.get("version")
        if not _whole(version) or version < 1:
            raise refuse(f"model format version {version!r} is not one this program wrote")
        if version > MODEL_VERSION:
            raise ModelFileError(
                f"{where}: written by a newer knn-pipeline (model format {version}; this one "
                f"reads up to {MODEL_VERSION}); upgrade knn-pipeline to read it"
            )
        rows, features = header.get("rows"), header.get("features")
        params, classes = header.get("params"), header.get("classes")
        if not (_whole(rows) and _whole(features) and rows >= 1 and features >= 1):
            raise refuse("the header's rows and features are not whole numbers of at least 1")
        if not isinstance(params, dict) or not isinstance(classes, list):
            raise refuse("the header misses params or classes")
        X = array("X.npy", np.float64, (rows, features))
        y = array("y.npy", np.int64, (rows,))
        fill_values = None
        if "fill_values.npy" in members:
            fill_values = array("fill_values.npy", np.float64, (features,))
            if not np.isfinite(fill_values).all():
                raise refuse("the fill values are not finite numbers")
        if not np.isfinite(X).all():
            raise refuse("the training rows are not finite numbers")
        if not classes or not all(isinstance(c, str | int | float) for c in classes):
            raise refuse("the classes are not a list of strings or numbers")
        if y.min() < 0 or y.max() >= len(classes):
            raise refuse("a label code does not name a class")
        missing = header.get("missing", "error")
        if missing not in MISSING_POLICIES or (fill_values is None) == (
            missing in ("mean", "median")
        ):
            raise refuse(f"missing-value policy {missing!r} does not fit the fill values")
        k = params.get("k")
        if not _whole(k):
            raise refuse(f"k {k!r} is not a whole number")
        try:
            return cls(
                X,
                y,
                np.asarray(classes),
                k=k,
                metric=str(params["metric"]),
                weights=str(params["weights"]),
                feature_names=[str(n) for n in header.get("feature_names") or []] or None,
                label=header.get("label") if isinstance(header.get("label"), str) else None,
                source=str(header.get("source", "")),
                missing=missing,
                fill_values=fill_values,
                scale=str(header.get("scale", "none")),
                other_columns=[str(c) for c in header.get("other_columns") or []],
                encoding=(
                    Encoding.from_description(header["encoding"])
                    if header.get("encoding") is not None
                    else None
                ),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise refuse(f"its parameters are not valid ({error})") from None


def _whole(value: Any) -> TypeGuard[int]:
    """A JSON whole number (not a bool, not a float such as Infinity), of a sane size."""
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**48


def _json_scalar(value: Any) -> str | int | float:
    if isinstance(value, str | int | float):
        return value
    raise InputError(
        f"classes: a label of type {type(value).__name__} cannot be saved; "
        "use strings or numbers as labels"
    )
