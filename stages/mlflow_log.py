"""Log a finished tuning to MLflow, the way MLflow's scikit-learn autologging logs a
``GridSearchCV``.

One parent run holds the search: the options as params, the best candidate's
parameters as ``best_<param>`` params, ``best_cv_score`` (and ``best_<scoring>``)
as metrics, the data's shape, and the given files (results JSON, report, saved
model) as artifacts. One child run per top-ranked candidate (tagged with
``mlflow.parentRunId``) holds its parameters, its ``rank`` and the ``mean_``,
``std_`` (and, for leave-one-out, ``pooled_``) value of every score, named as in
the results JSON. Scores a fold cannot define (``null`` in the JSON) are not
logged.

MLflow is an optional extra, imported only here. Logging never fails the
tuning: a tracking store that cannot be reached or refuses the run costs one
warning, and :func:`log_tuning` returns None.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import InputError

from .rank import RankedCandidate
from .results import TuningResult

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

__all__ = ["DEFAULT_EXPERIMENT", "INSTALL_HINT", "log_tuning", "tracking_uri"]

log = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "knn-pipeline"
INSTALL_HINT = "pip install 'knn-pipeline[mlflow]'"

_KNOBS = {
    # MLflow retries a failing request 7 times with exponential backoff, 120 s each: minutes
    # of waiting on a server that is down. With one retry and a 10 s timeout a refused
    # connection fails at once and a server that never answers in about 20 s.
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    # Keep stdout (the leaderboard) and stderr clean: no "View run at" lines, no progress bars.
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    # MLflow 3 refuses the ./mlruns file store unless told it is wanted.
    "MLFLOW_ALLOW_FILE_STORE": "true",
}
"""Environment settings for the duration of a call; a value already set in the environment
wins, so a user who wants longer timeouts sets them as MLflow documents."""

_NOISY_LOGGERS = ("mlflow", "urllib3", "alembic", "sqlalchemy", "huey")
"""Loggers silenced during a call: MLflow's own lines, and urllib3's "Retrying" warnings."""

_PARAMS_PER_BATCH = 100  # MLflow's limit on params and tags per log_batch request
_METRICS_PER_BATCH = 1000
_TRUNCATED = "..."
_KEY_CHARACTERS = re.compile(r"[^\w\-. /:]")  # what MLflow accepts in a key


def tracking_uri(uri: str | os.PathLike[str] | None = None) -> str:
    """The tracking URI for ``uri``: None (or empty) is ``./mlruns``, a path becomes a
    ``file:`` URI of its absolute path (MLflow would resolve a relative one against whatever
    directory it runs in later), a URI (``file:``, ``http(s)://``, ...) is kept."""
    text = "" if uri is None else os.fspath(uri)
    if not text:
        return (Path.cwd() / "mlruns").as_uri()
    if text.startswith("file:") or re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", text):
        return text
    return Path(text).expanduser().absolute().as_uri()


def log_tuning(
    result: TuningResult,
    *,
    options: Mapping[str, Any],
    uri: str | os.PathLike[str] | None = None,
    top: int = 5,
    artifacts: Sequence[str | os.PathLike[str]] = (),
    experiment: str = DEFAULT_EXPERIMENT,
    run_name: str | None = None,
) -> str | None:
    """Log ``result`` to the MLflow tracking store at ``uri``; return the parent run's id.

    ``options`` are the search options (e.g. :meth:`stages.Tuning.params`), logged as
    params; ``top`` candidates get a child run each; ``artifacts`` are files (or
    directories) logged to the parent run under their names. A store that cannot be
    reached or fails gives one warning and None, never an exception: the tuning's results
    are already on disk. Without MLflow installed, :class:`InputError` says what to install.

    While it runs it changes process-wide settings (MLflow's environment variables, log
    levels, warning filters), so call it from one thread at a time.
    """
    if top < 0:
        raise InputError(f"MLflow: the number of child runs must be 0 or more, not {top}")
    target = tracking_uri(uri)
    with _mlflow_settings():
        try:
            # The package first: a submodule already imported would be found on its own.
            import mlflow.tracking
        except ImportError as error:
            if (error.name or "").split(".")[0] == "mlflow":
                raise InputError(
                    f"MLflow is not installed; install it with {INSTALL_HINT}"
                ) from None
            log.warning("MLflow cannot be imported (%s); the tuning was not logged", error)
            return None
        with _silenced(_NOISY_LOGGERS):  # after the import, which sets MLflow's levels
            client_class = mlflow.tracking.MlflowClient
            return _log(client_class, target, result, options, top, artifacts, experiment, run_name)


def _log(
    client_class: type[MlflowClient],
    target: str,
    result: TuningResult,
    options: Mapping[str, Any],
    top: int,
    artifacts: Sequence[str | os.PathLike[str]],
    experiment: str,
    run_name: str | None,
) -> str | None:
    """The logging itself; any failure is the one warning."""
    from mlflow.tracking.context import registry

    runs = _Runs()
    try:
        files = [_artifact(path) for path in artifacts]
        client = client_class(tracking_uri=target)
        runs.client = client
        # user, source, git commit: what mlflow.start_run records, on the children too
        context = {**registry.resolve_tags()}
        parent_run = _log_parent(client, runs, result, options, experiment, run_name, context)
        parent: str = parent_run.info.run_id
        _log_children(client, runs, result, parent_run, top, context)
        used: set[str] = set()
        for index, path in enumerate(files):
            folder = None if path.name not in used else f"artifact_{index}"
            used.add(path.name)
            client.log_artifact(parent, os.fspath(path), artifact_path=folder)
        runs.finish(parent)
        return parent
    except Exception as error:
        safe = _safe(target)
        reason = _reason(error).replace(target, safe)
        log.warning("MLflow at %s: could not log the tuning (%s)", safe, reason)
        return None
    finally:
        runs.end_unfinished()


class _Runs:
    """The runs created so far, so that none is left RUNNING whatever fails."""

    def __init__(self) -> None:
        self.client: MlflowClient | None = None
        self.open: list[str] = []

    def started(self, run_id: str) -> str:
        self.open.append(run_id)
        return run_id

    def finish(self, run_id: str, end_time: int | None = None) -> None:
        assert self.client is not None
        self.client.set_terminated(run_id, "FINISHED", end_time=end_time)
        self.open.remove(run_id)

    def end_unfinished(self) -> None:
        """Mark what is still open FAILED; a store that is gone cannot be told, and that
        must not hide the first error."""
        if self.client is None:
            return
        for run_id in reversed(self.open):
            with contextlib.suppress(Exception):
                self.client.set_terminated(run_id, "FAILED")
        self.open.clear()


def _log_parent(
    client: MlflowClient,
    runs: _Runs,
    result: TuningResult,
    options: Mapping[str, Any],
    experiment: str,
    run_name: str | None,
    context: Mapping[str, str],
) -> Run:
    """The parent run: options, data, best candidate and score, the options in full."""
    from mlflow.entities import Metric, Param
    from mlflow.utils.mlflow_tags import MLFLOW_RUN_NOTE

    experiment_id = _experiment_id(client, experiment)
    tags = {
        **context,
        "estimator_name": "Tuning",
        "estimator_class": "stages.tuning.Tuning",
        "complete": str(result.complete).lower(),
        "dataset_source": str(result.dataset.get("source")),
        MLFLOW_RUN_NOTE: _note(result),
    }
    version = _package_version()
    if version is not None:
        tags["knn_pipeline_version"] = version
    run = client.create_run(experiment_id, tags=_tag_values(tags), run_name=run_name)
    parent = runs.started(run.info.run_id)

    params = {_key(name): value for name, value in options.items()}
    params.update(_facts(result))
    best = result.best
    if best is not None:
        params.update({f"best_{name}": value for name, value in best.candidate.params().items()})
    texts, truncated = _param_values(params)
    if truncated:
        texts["truncated_params"] = ",".join(truncated)[: _param_limit()]
    now = _millis()
    metrics = {"tuning_seconds": result.seconds}
    if best is not None:
        metrics["best_cv_score"] = best.mean_score
        metrics[f"best_{result.scoring}"] = best.mean_score
    _log_batch(
        client,
        parent,
        params=[Param(key, value) for key, value in texts.items()],
        metrics=[Metric(key, value, now, 0) for key, value in metrics.items() if _finite(value)],
    )
    # The options in full, whatever MLflow's length limit on a param cut off.
    full = json.dumps(dict(options), indent=2, default=str) + "\n"
    client.log_text(parent, full, "options.json")
    return run


def _log_children(
    client: MlflowClient,
    runs: _Runs,
    result: TuningResult,
    parent: Run,
    top: int,
    context: Mapping[str, str],
) -> None:
    """One child run per candidate of the ``top`` ranked, as autologging's
    ``_create_child_runs_for_parameter_search``: started when the parent started, the
    candidate's params, and every numeric field of its results JSON entry except the
    per-fold ones (``fold_``, as autologging leaves out ``split``)."""
    from mlflow.entities import Metric, Param
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    tags = _tag_values(
        {
            **context,
            MLFLOW_PARENT_RUN_ID: parent.info.run_id,
            "estimator_name": "KNNModel",
            "estimator_class": "stages.model.KNNModel",
        }
    )
    for row in result.candidates[:top]:
        params = row.candidate.params()
        name = ", ".join([f"k={params['k']}", *(str(v) for k, v in params.items() if k != "k")])
        child = runs.started(
            client.create_run(
                parent.info.experiment_id,
                start_time=parent.info.start_time,
                tags=tags,
                run_name=name,
            ).info.run_id
        )
        now = _millis()
        texts, _ = _param_values(params)
        _log_batch(
            client,
            child,
            params=[Param(key, value) for key, value in texts.items()],
            metrics=[
                Metric(key, float(value), now, 0) for key, value in _candidate_metrics(row).items()
            ],
        )
        runs.finish(child, end_time=now)


def _candidate_metrics(row: RankedCandidate) -> dict[str, float]:
    """The metrics of a candidate's child run: ``rank`` and the ``mean_``, ``std_`` and
    ``pooled_`` values of its results JSON entry that are defined."""
    entry = row.to_dict()
    return {
        key: float(value)
        for key, value in entry.items()
        if (key == "rank" or key.startswith(("mean_", "std_", "pooled_")))
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and _finite(value)
    }


def _experiment_id(client: MlflowClient, name: str) -> str:
    """The experiment named ``name``, created if need be (another run may create it first)."""
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    try:
        return str(client.create_experiment(name))
    except MlflowException:
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return str(found.experiment_id)


def _facts(result: TuningResult) -> dict[str, Any]:
    """What the result says of the data and folds, as params."""
    classes = result.dataset.get("classes")
    return {
        "scoring": result.scoring,
        "dataset_rows": result.dataset.get("rows"),
        "dataset_features": result.dataset.get("features"),
        "dataset_classes": len(classes) if isinstance(classes, list) else classes,
        "cv_kind": result.cv.get("kind"),
        "cv_folds": len(result.cv.get("folds", [])),
        "candidates": len(result.candidates),
        "workers": result.workers,
    }


def _note(result: TuningResult) -> str:
    """The run's description in the MLflow UI."""
    best = result.best
    where = f"k-NN tuning of {result.dataset.get('source')}: {len(result.candidates)} candidates"
    if best is None:
        return where + ", none scored."
    params = ", ".join(f"{key}={value}" for key, value in best.candidate.params().items())
    return f"{where}; best {params}, {result.scoring} {best.mean_score:.4f}."


def _param_values(params: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Params as MLflow keeps them (text), cut to its length limit; and the keys cut."""
    limit = _param_limit()
    texts: dict[str, str] = {}
    truncated: list[str] = []
    for key, value in params.items():
        text = _text(value)
        if len(text) > limit:
            text = text[: limit - len(_TRUNCATED)] + _TRUNCATED
            truncated.append(key)
        texts[key] = text
    return texts, truncated


def _text(value: Any) -> str:
    """Lists as the command line writes them (``1,3,5``), mappings as JSON, the rest str."""
    if isinstance(value, Mapping):
        return json.dumps(value, default=str)
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    return str(value)


def _tag_values(tags: Mapping[str, str]) -> dict[str, str]:
    limit = _tag_limit()
    return {
        key: value if len(value) <= limit else value[: limit - len(_TRUNCATED)] + _TRUNCATED
        for key, value in tags.items()
    }


def _param_limit() -> int:
    from mlflow.utils import validation

    return int(getattr(validation, "MAX_PARAM_VAL_LENGTH", 500))


def _tag_limit() -> int:
    from mlflow.utils import validation

    return int(getattr(validation, "MAX_TAG_VAL_LENGTH", 5000))


def _key(name: str) -> str:
    return _KEY_CHARACTERS.sub("_", str(name))[:250] or "_"


def _log_batch(client: MlflowClient, run_id: str, *, params: list[Any], metrics: list[Any]) -> None:
    """Params and metrics in as few requests as MLflow's batch limits allow."""
    for start in range(0, len(params), _PARAMS_PER_BATCH):
        client.log_batch(run_id, params=params[start : start + _PARAMS_PER_BATCH])
    for start in range(0, len(metrics), _METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=metrics[start : start + _METRICS_PER_BATCH])


def _artifact(path: str | os.PathLike[str]) -> Path:
    """Check an artifact up front, so that a missing file fails before any run is made."""
    artifact = Path(path)
    if not artifact.exists():
        raise FileNotFoundError(f"artifact {artifact}: no such file")
    return artifact


def _finite(value: Any) -> bool:
    return value is not None and math.isfinite(float(value))


def _millis() -> int:
    return int(time.time() * 1000)


def _package_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("knn-pipeline")
    except metadata.PackageNotFoundError:
        return None


def _safe(uri: str) -> str:
    """``uri`` without a password, for a message."""
    parts = urllib.parse.urlsplit(uri)
    if parts.password is None and parts.username is None:
        return uri
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _reason(error: BaseException) -> str:
    """The failure in a few words: the socket's error (connection refused, timed out, name
    unknown) when there is one under MLflow's and requests' wrappers, else the message."""
    cause: BaseException | None = error
    reason = str(error)
    seen: set[int] = set()
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and type(cause).__module__ in ("builtins", "socket"):
            reason = str(cause) or type(cause).__name__
        cause = cause.__cause__ or cause.__context__
    reason = " ".join(reason.split()) or type(error).__name__
    return reason if len(reason) <= 300 else reason[:297] + _TRUNCATED


@contextlib.contextmanager
def _mlflow_settings() -> Iterator[None]:
    """MLflow's settings for a quick, quiet call (see :data:`_KNOBS`), and its warnings
    (deprecations and the like) ignored; the environment put back afterwards."""
    import warnings

    saved = {name: os.environ.get(name) for name in _KNOBS}
    for name, value in _KNOBS.items():
        os.environ.setdefault(name, value)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for name, previous in saved.items():
            if previous is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = previous


@contextlib.contextmanager
def _silenced(families: Sequence[str]) -> Iterator[None]:
    """No log lines from these loggers (and those below them that set a level of their own,
    as MLflow does for ``sqlalchemy.engine``) until the block ends."""
    chosen = [logging.getLogger(name) for name in families]
    chosen += [
        logger
        for name, logger in list(logging.root.manager.loggerDict.items())
        if isinstance(logger, logging.Logger)
        and name.split(".")[0] in families
        and name not in families
        and logger.level != logging.NOTSET
    ]
    saved = {logger: logger.level for logger in chosen}
    try:
        for logger in saved:
            logger.setLevel(logging.CRITICAL + 1)
        yield
    finally:
        for logger, level in saved.items():
            logger.setLevel(level)
