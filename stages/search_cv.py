"""``GridSearchCV(KNeighborsClassifier(), param_grid)`` on this package's pipeline.

A scikit-learn user changes one import::

    from stages import KNNSearchCV

    search = KNNSearchCV({"n_neighbors": [1, 3, 5], "metric": ["euclidean", "manhattan"]})
    search.fit(X, y)
    search.best_params_, search.cv_results_["mean_test_score"], search.predict(X_new)

The parameters, the fitted attributes and their meanings are GridSearchCV's
(``cv_results_`` keys, rank rule, ``best_index_``, ``refit``). What differs
is the work: GridSearchCV fits and scores every candidate on every split,
while here one :class:`~stages.tuning.Tuning` over the union of the grid's
``k``, metrics and weightings computes each (split, metric)'s distances once
and scores every ``k`` and weighting from that one neighbour list. On data
without distance ties the scores are scikit-learn's, to the last bit.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import numbers
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from numpy.ma import MaskedArray
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import check_scoring
from sklearn.model_selection import ParameterGrid, check_cv
from sklearn.neighbors import KNeighborsClassifier
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from pipeline.compute import default_workers
from pipeline.runner import StageFailed

from .dataset import Dataset
from .metrics import METRIC_REGISTRY, from_sklearn
from .model import KNNModel
from .partition import CvSpec
from .results import TuningResult
from .score import SCORES
from .tuning import Tuning

__all__ = ["KNNSearchCV"]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

SEARCHED = ("n_neighbors", "metric", "weights", "p")
"""The KNeighborsClassifier parameters a grid may hold."""
_DEFAULTS: dict[str, Any] = {"n_neighbors": 5, "metric": "minkowski", "p": 2, "weights": "uniform"}
"""KNeighborsClassifier's defaults, for candidates whose dict leaves a parameter out."""

_SKLEARN_NAMES = ", ".join(
    repr(info.sklearn) for info in METRIC_REGISTRY.values() if not info.takes_power
)
"""The registry's metrics by their scikit-learn names, for the refusal message."""
_WEIGHTS = {"uniform": "uniform", "distance": "distance", None: "uniform"}

_SCORERS = SCORES
"""Scorer names the tuning computes (from its per-fold confusion matrices)."""

Split = tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]
Key = tuple[int, str, str]


def _refused(what: str, why: str) -> ValueError:
    return ValueError(f"param_grid: {what} cannot be searched; {why}")


def _candidate(params: Mapping[str, Any]) -> Key:
    """``(k, metric, weights)`` of one ParameterGrid candidate, or a ValueError naming the value."""
    for name in params:
        if name not in SEARCHED:
            raise _refused(repr(name), f"KNNSearchCV searches {', '.join(SEARCHED)}")
    given = {**_DEFAULTS, **params}
    k = given["n_neighbors"]
    if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1:
        raise _refused(f"n_neighbors={k!r}", "n_neighbors is a whole number of at least 1")
    metric, p = given["metric"], given["p"]
    if p is not None and (
        not isinstance(p, numbers.Real) or isinstance(p, bool) or not float(p) > 0
    ):
        raise _refused(f"p={p!r}", "p is a number greater than 0")
    # The registry's reading of scikit-learn's names; as there, p only matters to minkowski.
    ours = from_sklearn(metric, None if p is None else float(p))
    if isinstance(metric, str) and metric == "minkowski" and (ours is None or p is None):
        raise _refused(
            f"p={p!r} with metric='minkowski'", "p is a number of at least 1 (inf: chebyshev)"
        )
    if ours is None:
        raise _refused(
            f"metric={metric!r}",
            f"metric is one of {_SKLEARN_NAMES} (or a synonym: l1, l2, cityblock, "
            "infinity; sorensen for braycurtis), or 'minkowski' with p >= 1",
        )
    weights = given["weights"]
    if not (weights is None or isinstance(weights, str)) or weights not in _WEIGHTS:
        raise _refused(f"weights={weights!r}", "weights is 'uniform', 'distance' or None")
    return int(k), ours, _WEIGHTS[weights]


def _scorer_names(scoring: Any) -> tuple[list[str], bool]:
    """The ``cv_results_`` suffix of each scorer, and whether the scoring is multi-metric."""
    return list(_scorers(scoring)), not (scoring is None or isinstance(scoring, str))


def _scorers(scoring: Any) -> dict[str, str]:
    """Each ``cv_results_`` suffix and the scorer it names (``score``: the one scorer)."""

    def check(name: Any) -> str:
        if not isinstance(name, str) or name not in _SCORERS:
            raise ValueError(
                f"scoring: {name!r} is not supported; KNNSearchCV scores "
                f"{', '.join(repr(s) for s in _SCORERS)} (a name, a list or a dict of them)"
            )
        return name

    if scoring is None:
        return {"score": "accuracy"}
    if isinstance(scoring, str):
        return {"score": check(scoring)}
    if isinstance(scoring, list | tuple | set):
        if not scoring:
            raise ValueError("scoring: an empty list was given; name at least one scorer")
        if len(set(scoring)) != len(scoring):
            raise ValueError(f"scoring: {list(scoring)!r} names a scorer twice; list each once")
        return {check(name): name for name in scoring}
    if isinstance(scoring, Mapping):
        if not scoring:
            raise ValueError("scoring: an empty dict was given; name at least one scorer")
        for key in scoring:
            if not isinstance(key, str):
                raise ValueError(f"scoring: the key {key!r} is not a string")
        return {key: check(name) for key, name in scoring.items()}
    raise ValueError(
        f"scoring: {scoring!r} is not supported; give None, 'accuracy', ['accuracy'] "
        "or {'name': 'accuracy'}"
    )


def _masked_params(candidate_params: Sequence[Mapping[str, Any]]) -> dict[str, MaskedArray]:
    """``param_<name>`` columns, masked where a candidate lacks the parameter.

    Built exactly as GridSearchCV builds them (``_yield_masked_array_for_each_param``
    in scikit-learn's ``model_selection/_search.py``), so the dtypes and masks match.
    """
    by_name: dict[str, dict[int, Any]] = {}
    for index, params in enumerate(candidate_params):
        for name, value in params.items():
            by_name.setdefault(f"param_{name}", {})[index] = value
    columns = {}
    for key, values in by_name.items():
        dtype: np.dtype[Any] = np.dtype(object)
        try:
            inferred = np.array(list(values.values()))
        except ValueError:
            pass  # sequences of different lengths
        else:
            if inferred.dtype.kind != "U" and inferred.ndim == 1:
                dtype = inferred.dtype
        column = MaskedArray(np.empty(len(candidate_params), dtype=dtype), mask=True)
        for index, value in values.items():
            column[index] = value  # setting a value unmasks it
        columns[key] = column
    return columns


def _store(
    results: dict[str, Any],
    key: str,
    values: npt.ArrayLike,
    shape: tuple[int, int],
    *,
    splits: bool = False,
    rank: bool = False,
) -> None:
    """Per-split columns, mean, std and rank of ``key``, as GridSearchCV's ``_format_results``."""
    array = np.array(values, dtype=np.float64).reshape(shape)
    if splits:
        for split in range(shape[1]):
            results[f"split{split}_{key}"] = array[:, split]
    means = np.average(array, axis=1)
    results[f"mean_{key}"] = means
    results[f"std_{key}"] = np.sqrt(np.average((array - means[:, np.newaxis]) ** 2, axis=1))
    if rank:  # an undefined mean (NaN) ties with the worst, as GridSearchCV ranks it
        if np.isnan(means).all():
            results[f"rank_{key}"] = np.ones(means.shape, dtype=np.int32)
        else:
            defined = np.nan_to_num(means, nan=np.nanmin(means) - 1)
            results[f"rank_{key}"] = rankdata(-defined, method="min").astype(np.int32, copy=False)


def _run_sync(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from synchronous code, even inside a running loop.

    A thread that already runs an event loop (a notebook cell) cannot
    ``asyncio.run``; the coroutine then runs on a fresh loop in a helper
    thread, and this thread waits for it.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    started: concurrent.futures.Future[tuple[asyncio.AbstractEventLoop, asyncio.Task[T]]]
    started = concurrent.futures.Future()

    async def main() -> T:
        task = asyncio.ensure_future(make())
        started.set_result((asyncio.get_running_loop(), task))
        return await task

    with ThreadPoolExecutor(1, thread_name_prefix="KNNSearchCV") as helper:
        done = helper.submit(asyncio.run, main())
        try:
            return done.result()
        except BaseException:  # Ctrl-C in the caller's thread: stop the search, then wait
            if not done.done() and started.done():
                loop, task = started.result()
                loop.call_soon_threadsafe(task.cancel)
            raise


def _if_refitted(attr: str) -> Callable[[F], F]:
    """The method exists only with ``refit`` (GridSearchCV's rule, and its message)."""

    def check(search: KNNSearchCV) -> bool:
        search._check_refit(attr)
        return True

    decorator: Callable[[F], F] = available_if(check)
    return decorator


class KNNSearchCV(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Exhaustive search over k-NN parameters by cross-validation: GridSearchCV's surface.

    Parameters are GridSearchCV's (without ``estimator``: it is always a
    k-nearest-neighbour classifier):

    ``param_grid``
        A dict, or a list of dicts, of KNeighborsClassifier parameters:
        ``n_neighbors``, ``metric`` (every metric of :mod:`stages.metrics` by
        its scikit-learn name: euclidean, manhattan, chebyshev, braycurtis,
        cosine, minkowski with ``p >= 1``; the synonyms l2, l1, cityblock,
        infinity; our name sorensen for braycurtis), ``weights`` (uniform,
        distance) and ``p``. Anything else is refused at :meth:`fit` with a
        ValueError naming it as it was written.
    ``scoring``
        None (accuracy), a scorer name of :data:`stages.score.SCORES`
        (accuracy, balanced_accuracy, f1_macro, f1_weighted,
        precision_macro, recall_macro, roc_auc_ovr, neg_log_loss), or a list
        or dict of them (multi-metric keys in ``cv_results_``); other
        scorers are refused at :meth:`fit`.
    ``cv``
        None (5 folds), an int (``StratifiedKFold(n)`` without shuffling, as
        ``check_cv`` makes it), a splitter, or an iterable of ``(train, test)``.
    ``refit``
        True, a scorer name (multi-metric), a callable of ``cv_results_``
        returning ``best_index_``, or False (no ``best_estimator_``, no predict).
    ``n_jobs``
        Threads that run the neighbour searches: None or -1 all CPUs
        (GridSearchCV's None is one), -2 all but one, ... The compiled kernel
        releases the GIL, so threads use the cores as processes would, with no
        pool to start and nothing for a script to guard.
    ``pre_dispatch``
        Kept for GridSearchCV's signature: the pool bounds the work in flight itself.
    ``error_score``
        Kept for GridSearchCV's signature; it is never used, because the grid
        runs whole or fails: a parameter that cannot be searched, or a
        ``n_neighbors`` larger than a split's training rows, is refused at
        :meth:`fit` before any work starts.
    ``return_train_score``
        Only False: training scores are not computed.
    ``verbose``
        Above 0, print GridSearchCV's one-line summary of the work.

    After :meth:`fit`: ``cv_results_``, ``best_index_``, ``best_params_``,
    ``best_score_``, ``best_estimator_`` (a fitted
    ``KNeighborsClassifier(algorithm="brute")`` with the best parameters,
    metric under its canonical name), ``model_`` (the :class:`KNNModel` that
    :meth:`predict` and friends run on), ``classes_``, ``n_features_in_``,
    ``feature_names_in_`` (DataFrames), ``n_splits_``, ``refit_time_``,
    ``scorer_``, ``multimetric_``; all with GridSearchCV's meanings.
    ``classes_`` and ``n_features_in_`` are set even with ``refit=False``.

    ``mean_score_time`` in ``cv_results_`` is the search's wall time split
    evenly over candidates and splits (one shared neighbour search cannot be
    attributed to one candidate), and ``mean_fit_time`` is 0: fitting a k-NN
    classifier only stores the rows; the neighbour search happens when scoring.
    """

    def __init__(
        self,
        param_grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Sequence[Any]]],
        *,
        scoring: str | Sequence[str] | Mapping[str, str] | None = None,
        n_jobs: int | None = None,
        refit: bool | str | Callable[[dict[str, Any]], int] = True,
        cv: int | Any | Iterable[tuple[Any, Any]] | None = None,
        verbose: int = 0,
        pre_dispatch: int | str = "2*n_jobs",
        error_score: float | str = np.nan,
        return_train_score: bool = False,
    ) -> None:
        self.param_grid = param_grid
        self.scoring = scoring
        self.n_jobs = n_jobs
        self.refit = refit
        self.cv = cv
        self.verbose = verbose
        self.pre_dispatch = pre_dispatch
        self.error_score = error_score
        self.return_train_score = return_train_score

    # -- fitting ----------------------------------------------------------------------------

    def _workers(self) -> int:
        """``n_jobs`` as a number of workers, with joblib's meaning of negative values."""
        n_jobs = self.n_jobs
        if n_jobs is None:
            return default_workers()
        if not isinstance(n_jobs, numbers.Integral) or isinstance(n_jobs, bool) or n_jobs == 0:
            raise ValueError(f"n_jobs: {n_jobs!r} is not a number of workers; give e.g. 1, 4 or -1")
        if n_jobs < 0:
            return max(1, default_workers() + 1 + int(n_jobs))
        return int(n_jobs)

    def _check_options(self) -> tuple[list[str], bool]:
        """Validate the options that need no data; return the scorer names and multi-metric."""
        names, multimetric = _scorer_names(self.scoring)
        if self.return_train_score:
            raise ValueError(
                "return_train_score=True is not supported: KNNSearchCV scores the test "
                "splits only; leave return_train_score=False"
            )
        if not (
            isinstance(self.error_score, numbers.Real)
            or (isinstance(self.error_score, str) and self.error_score == "raise")
        ):
            raise ValueError(f"error_score: {self.error_score!r} is not 'raise' or a number")
        if multimetric and not (self.refit is False or callable(self.refit) or self.refit in names):
            # GridSearchCV's message, word for word
            raise ValueError(
                "For multi-metric scoring, the parameter refit must be set to a "
                "scorer key or a callable to refit an estimator with the best "
                "parameter setting on the whole data and make the best_* "
                "attributes available for that metric. If this is not needed, "
                f"refit should be set to False explicitly. {self.refit!r} was passed."
            )
        return names, multimetric

    def _scorer(self, names: list[str], multimetric: bool) -> Any:
        """``scorer_`` as GridSearchCV sets it: one scorer, or a dict of them."""
        if not multimetric:
            return check_scoring(KNeighborsClassifier(), self.scoring)
        given = self.scoring if isinstance(self.scoring, Mapping) else dict.fromkeys(names)
        return {name: check_scoring(KNeighborsClassifier(), given[name] or name) for name in names}

    def fit(self, X: Any, y: Any, groups: Any = None) -> KNNSearchCV:
        """Search every candidate of ``param_grid`` by cross-validation, then refit the best.

        ``X``: array-like or DataFrame of numbers; ``y``: class labels of any
        type ``np.unique`` can sort; ``groups``: for group splitters (GroupKFold).
        A fit that fails leaves the estimator unfitted, never half-fitted.
        """
        self._forget_fit()
        try:
            return self._fit(X, y, groups)
        except BaseException:
            self._forget_fit()
            raise

    def _forget_fit(self) -> None:
        """Remove every fitted attribute, so nothing of one fit outlives the next."""
        for name in [n for n in vars(self) if n.endswith("_") and not n.startswith("__")]:
            delattr(self, name)

    def _fit(self, X: Any, y: Any, groups: Any) -> KNNSearchCV:
        names, multimetric = self._check_options()
        workers = self._workers()
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        classes, codes = np.unique(y, return_inverse=True)
        if classes.size < 2:
            raise ValueError(
                f"y holds one class ({classes[0]!r}); a classifier needs at least two classes"
            )
        candidate_params = list(ParameterGrid(self.param_grid))
        keys = [_candidate(params) for params in candidate_params]
        splits = self._splits(X, y, groups)
        smallest = min(train.size for train, _ in splits)
        for params, (k, _, _) in zip(candidate_params, keys, strict=True):
            if k > smallest:
                raise ValueError(
                    f"param_grid: n_neighbors={params.get('n_neighbors', k)!r} is larger than "
                    f"the smallest training split ({smallest} rows); use n_neighbors <= {smallest}"
                )
        n_splits = len(splits)
        if self.verbose > 0:
            print(
                f"Fitting {n_splits} folds for each of {len(candidate_params)} candidates, "
                f"totalling {n_splits * len(candidate_params)} fits"
            )

        dataset = Dataset(
            X=X,
            y=codes.astype(np.intp),
            classes=[str(c) for c in classes],
            source="KNNSearchCV.fit(X, y)",
            feature_names=[str(n) for n in getattr(self, "feature_names_in_", [])],
        )
        folds = CvSpec.from_splits(splits)  # type: ignore[arg-type]  # it takes index arrays
        result = self._tune(dataset, keys, folds, workers)
        scorers = _scorers(self.scoring)

        shape = (len(candidate_params), n_splits)
        results: dict[str, Any] = {}
        _store(results, "fit_time", np.zeros(shape), shape)
        _store(results, "score_time", np.full(shape, result.seconds / np.prod(shape)), shape)
        results.update(_masked_params(candidate_params))
        results["params"] = candidate_params
        for name in names:
            scores = self._fold_scores(result, keys, n_splits, scorers[name])
            _store(results, f"test_{name}", scores, shape, splits=True, rank=True)

        self.classes_ = classes
        self.multimetric_ = multimetric
        self.n_splits_ = n_splits
        refit_metric = self.refit if multimetric else "score"
        if self.refit or not multimetric:
            self.best_index_ = self._best_index(results, refit_metric)
            if not callable(self.refit):
                self.best_score_ = results[f"mean_test_{refit_metric}"][self.best_index_]
            self.best_params_ = results["params"][self.best_index_]
        if self.refit:
            started = time.perf_counter()
            k, metric, weights = keys[self.best_index_]
            self.model_ = KNNModel(
                X,
                codes,
                classes,
                k=k,
                metric=metric,
                weights=weights,
                feature_names=dataset.feature_names or None,
                source=dataset.source,
            )
            self.best_estimator_ = self.model_.to_sklearn()
            if hasattr(self, "feature_names_in_"):
                # Fitted on the DataFrame's values: let it take DataFrames as GridSearchCV's does.
                self.best_estimator_.feature_names_in_ = self.feature_names_in_
            self.refit_time_ = time.perf_counter() - started
        self.scorer_ = self._scorer(names, multimetric)
        self.cv_results_ = results
        return self

    def _splits(self, X: Any, y: Any, groups: Any) -> list[Split]:
        """The ``(train, test)`` row indices of ``cv``, as GridSearchCV draws them, checked."""
        cv = check_cv(self.cv, y, classifier=True)
        n_splits = cv.get_n_splits(X, y, groups)
        splits = [(np.asarray(train), np.asarray(test)) for train, test in cv.split(X, y, groups)]
        if len(splits) != n_splits:
            raise ValueError(
                "cv.split and cv.get_n_splits return inconsistent results. "
                f"Expected {n_splits} splits, got {len(splits)}"
            )
        if not splits:
            raise ValueError("cv: no splits given; give at least one (train, test) pair")
        rows = len(y)
        for number, (train, test) in enumerate(splits):
            for name, part in (("train", train), ("test", test)):
                if part.size == 0:
                    raise ValueError(f"cv: split {number} has no {name} rows")
                if part.ndim != 1 or part.dtype.kind not in "iu":
                    raise ValueError(
                        f"cv: the {name} part of split {number} is not an array of row indices"
                    )
                if part.min() < 0 or part.max() >= rows:
                    raise ValueError(
                        f"cv: the {name} rows of split {number} are not all in 0..{rows - 1}"
                    )
                if np.unique(part).size != part.size:
                    raise ValueError(f"cv: the {name} rows of split {number} name a row twice")
            if np.intersect1d(train, test).size:
                raise ValueError(
                    f"cv: split {number} tests rows it also trains on; give disjoint rows"
                )
        return splits

    def _best_index(self, results: dict[str, Any], metric: Any) -> int:
        """GridSearchCV's rule: ``refit(results)``, or the first candidate ranked 1."""
        if callable(self.refit):
            best = self.refit(results)
            if not isinstance(best, numbers.Integral):
                raise TypeError("best_index_ returned is not an integer")
            if best < 0 or best >= len(results["params"]):
                raise IndexError("best_index_ index out of range")
            return int(best)
        return int(results[f"rank_test_{metric}"].argmin())

    def _tune(self, dataset: Dataset, keys: list[Key], cv: CvSpec, workers: int) -> TuningResult:
        """One tuning over the union of the grid's ``k``, metrics and weightings."""
        ks = sorted({k for k, _, _ in keys})
        metrics = list(dict.fromkeys(m for _, m, _ in keys))
        weights = list(dict.fromkeys(w for _, _, w in keys))

        async def tune() -> TuningResult:
            # Threads of this process, not worker processes: the kernel releases the GIL,
            # so they share the cores as processes would, and there is no pool to start
            # (a second or more, each fit) and no script for workers to import again, so
            # a script needs no ``if __name__ == "__main__":`` guard for it.
            with ThreadPoolExecutor(workers, thread_name_prefix="KNNSearchCV") as executor:
                tuning = Tuning(
                    dataset, k=ks, metrics=metrics, weights=weights, cv=cv, executor=executor
                )
                return await tuning.run()

        try:
            return _run_sync(tune)
        except StageFailed as failure:
            if isinstance(failure.error, ValueError):
                raise failure.error from None  # bad input: the user's error, not the stage's
            raise

    @staticmethod
    def _fold_scores(
        result: TuningResult, keys: list[Key], n_splits: int, scorer: str
    ) -> npt.NDArray[Any]:
        """Per-split ``scorer`` of each grid candidate, picked out of the tuning's leaderboard."""
        if not result.complete:
            raise RuntimeError("the tuning ended without scoring every split")
        by_key = {
            (c.candidate.k, c.candidate.metric, c.candidate.weights): c.fold_scores[scorer]
            for c in result.candidates
        }
        scores = np.array([by_key[key] for key in keys], dtype=np.float64)
        assert scores.shape == (len(keys), n_splits)
        return scores

    # -- the refitted model -----------------------------------------------------------------

    def _check_refit(self, attr: str) -> None:
        if not self.refit:
            raise AttributeError(
                f"This {type(self).__name__} instance was initialized with `refit=False`. "
                f"{attr} is available only after refitting on the best parameters. "
                "You can refit an estimator manually using the `best_params_` attribute"
            )

    def _samples(self, X: Any) -> npt.NDArray[np.float64]:
        check_is_fitted(self)
        samples: npt.NDArray[np.float64] = validate_data(self, X, reset=False, dtype=np.float64)
        return samples

    @_if_refitted("predict")
    def predict(self, X: Any) -> npt.NDArray[Any]:
        """The class of each sample, from ``classes_``, by the best candidate's model."""
        samples = self._samples(X)
        return self.model_.predict(samples, n_jobs=self._workers())

    @_if_refitted("predict_proba")
    def predict_proba(self, X: Any) -> npt.NDArray[np.float64]:
        """Vote shares per class, columns in ``classes_`` order."""
        samples = self._samples(X)
        return self.model_.predict_proba(samples, n_jobs=self._workers())

    @_if_refitted("kneighbors")
    def kneighbors(
        self, X: Any = None, n_neighbors: int | None = None, return_distance: bool = True
    ) -> Any:
        """Distances and training-row indices of the nearest rows, as KNeighborsClassifier's.

        With ``X=None``, the neighbours of each training row other than itself.
        """
        check_is_fitted(self)
        k = self.model_.k if n_neighbors is None else n_neighbors
        if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1:
            raise ValueError(f"n_neighbors: {k!r} is not a whole number of at least 1")
        if X is not None:
            return self.model_.kneighbors(
                self._samples(X), int(k), return_distance, n_jobs=self._workers()
            )
        rows = self.model_.X.shape[0]
        if k >= rows:
            raise ValueError(
                f"Expected n_neighbors < n_samples_fit, but n_neighbors = {k}, "
                f"n_samples_fit = {rows}, n_samples = {rows}"
            )
        distances, indices = self.model_.kneighbors(
            self.model_.X, int(k) + 1, True, n_jobs=self._workers()
        )
        # Drop each row itself (scikit-learn's rule: if an exact duplicate came first
        # and the row is not among the k + 1, drop the first neighbour instead).
        keep = indices != np.arange(rows)[:, None]
        keep[keep.all(axis=1), 0] = False
        indices = indices[keep].reshape(rows, int(k))
        distances = distances[keep].reshape(rows, int(k))
        return (distances, indices) if return_distance else indices

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """The refit scorer of the refitted model on ``(X, y)``, as GridSearchCV's ``score``."""
        self._check_refit("score")
        check_is_fitted(self)
        if self.scoring is None:  # scorer_ then passes through to this very method
            return float(super().score(X, y, sample_weight=sample_weight))
        scorer = self.scorer_[self.refit] if self.multimetric_ else self.scorer_
        if sample_weight is not None:
            return float(scorer(self, X, y, sample_weight=sample_weight))
        return float(scorer(self, X, y))
