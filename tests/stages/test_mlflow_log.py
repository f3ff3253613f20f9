"""A tuning logged to MLflow reads back as the result says; a failing store costs one warning."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import InputError
from stages import Tuning
from stages.mlflow_log import log_tuning, tracking_uri
from stages.results import TuningResult

mlflow = pytest.importorskip("mlflow")
from mlflow.entities import Run  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402
from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH  # noqa: E402

KNOBS = (
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR",
    "MLFLOW_ALLOW_FILE_STORE",
)


@pytest.fixture(scope="module")
def tuned() -> tuple[TuningResult, dict[str, Any]]:
    """A real small tuning with every kind of parameter (a scale too), and its options."""
    tuning = Tuning(
        "iris",
        k=[1, 3, 5],
        metrics="euclidean,manhattan",
        weights="uniform,distance",
        scale="none,standard",
        workers=1,
    )
    result = asyncio.run(tuning.run())
    return result, {**tuning.params(), "scoring": result.scoring}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """None of MLflow's knobs set, so each test sees what a fresh shell would."""
    for name in KNOBS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def files(tuned: tuple[TuningResult, dict[str, Any]], tmp_path: Path) -> list[Path]:
    result, _ = tuned
    out, model = tmp_path / "results.json", tmp_path / "model.knn"
    result.write_json(out)
    result.model().save(model)
    return [out, model]


@contextlib.contextmanager
def reading(uri: str) -> Iterator[MlflowClient]:
    """A client on the file store (which MLflow 3 opens only when allowed to)."""
    previous = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        yield MlflowClient(tracking_uri=uri)
    finally:
        if previous is None:
            del os.environ["MLFLOW_ALLOW_FILE_STORE"]
        else:
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = previous


def children(client: MlflowClient, parent: Run) -> list[Run]:
    return client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )


def text(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)


def expected_metrics(entry: dict[str, Any]) -> dict[str, float]:
    """rank and every defined mean_/std_/pooled_ value of a results JSON entry."""
    return {
        key: float(value)
        for key, value in entry.items()
        if (key == "rank" or key.split("_")[0] in ("mean", "std", "pooled")) and value is not None
    }


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def finishes(call: Callable[[], Any], limit: float = 60.0) -> Any:
    """``call()``'s value; fails (rather than hanging the suite) if it does not return."""
    outcome: list[Any] = []
    thread = threading.Thread(target=lambda: outcome.append(call()), daemon=True)
    thread.start()
    thread.join(limit)
    assert not thread.is_alive(), "log_tuning hung"
    return outcome[0]


class Listener(logging.Handler):
    """Every record that reaches it: MLflow's loggers do not propagate to caplog's."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_parent_run_holds_the_options_the_best_candidate_and_the_data(
    tuned: tuple[TuningResult, dict[str, Any]], files: list[Path], tmp_path: Path
) -> None:
    result, options = tuned
    uri = (tmp_path / "mlruns").as_uri()
    run_id = log_tuning(result, options=options, uri=uri, artifacts=files, run_name="iris knn")
    assert run_id is not None
    assert mlflow.active_run() is None
    best = result.best
    assert best is not None and "scale" in best.candidate.params()
    with reading(uri) as client:
        run = client.get_run(run_id)
        assert client.get_experiment(run.info.experiment_id).name == "knn-pipeline"
        assert run.info.status == "FINISHED" and run.info.end_time is not None
        assert run.info.run_name == "iris knn"
        params = run.data.params
        for key, value in options.items():
            assert params[key] == text(value), key
        for key, value in best.candidate.params().items():
            assert params[f"best_{key}"] == str(value)
        assert params["dataset_rows"] == str(result.dataset["rows"])
        assert params["dataset_features"] == str(result.dataset["features"])
        assert params["dataset_classes"] == str(len(result.dataset["classes"]))
        assert params["cv_folds"] == str(len(result.cv["folds"]))
        assert params["candidates"] == str(len(result.candidates))
        metrics = run.data.metrics
        assert metrics["best_cv_score"] == best.mean_score
        assert metrics[f"best_{result.scoring}"] == best.mean_score
        assert best.mean_score == result.to_dict()["candidates"][0][f"mean_{result.scoring}"]
        assert run.data.tags["estimator_name"] == "Tuning"
        assert run.data.tags["complete"] == "true"
        assert "mlflow.parentRunId" not in run.data.tags

        logged = {a.path for a in client.list_artifacts(run_id)}
        assert logged == {path.name for path in files} | {"options.json"}
        for path in files:
            copy = client.download_artifacts(run_id, path.name, str(tmp_path))
            assert Path(copy).read_bytes() == path.read_bytes()
        copy = client.download_artifacts(run_id, "options.json", str(tmp_path))
        assert json.loads(Path(copy).read_text()) == json.loads(json.dumps(options, default=str))


@pytest.mark.parametrize("top", [0, 3, 100])
def test_a_child_run_per_top_candidate_with_its_params_and_scores(
    tuned: tuple[TuningResult, dict[str, Any]], tmp_path: Path, top: int
) -> None:
    result, options = tuned
    uri = (tmp_path / "mlruns").as_uri()
    run_id = log_tuning(result, options=options, uri=uri, top=top)
    assert run_id is not None
    with reading(uri) as client:
        parent = client.get_run(run_id)
        runs = children(client, parent)
    assert len(runs) == min(top, len(result.candidates))
    entries = result.to_dict()["candidates"][:top]
    by_params = {
        frozenset((key, str(value)) for key, value in entry["params"].items()): entry
        for entry in entries
    }
    assert len(by_params) == len(entries)
    for child in runs:
        entry = by_params.pop(frozenset(child.data.params.items()))
        assert child.data.metrics == expected_metrics(entry)
        assert child.data.metrics["rank"] == entry["rank"]
        assert child.info.status == "FINISHED"
        assert child.info.experiment_id == parent.info.experiment_id
        assert child.data.tags["estimator_name"] == "KNNModel"
    assert by_params == {}, "a top candidate has no child run"


def test_a_path_or_nothing_is_a_local_file_store(
    tuned: tuple[TuningResult, dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result, options = tuned
    monkeypatch.chdir(tmp_path)
    assert tracking_uri() == tracking_uri("") == (tmp_path / "mlruns").as_uri()
    assert tracking_uri("store") == (tmp_path / "store").as_uri()
    assert tracking_uri("http://tracking:5000") == "http://tracking:5000"
    assert tracking_uri("file:///somewhere/mlruns") == "file:///somewhere/mlruns"
    first = log_tuning(result, options=options, top=1)
    second = log_tuning(result, options=options, uri="store", top=1)
    assert first is not None and second is not None
    with reading((tmp_path / "mlruns").as_uri()) as client:
        assert client.get_run(first).info.status == "FINISHED"
    with reading((tmp_path / "store").as_uri()) as client:
        assert client.get_run(second).info.status == "FINISHED"


def test_a_long_option_is_cut_to_mlflows_limit_and_kept_whole_in_an_artifact(
    tuned: tuple[TuningResult, dict[str, Any]], tmp_path: Path
) -> None:
    result, options = tuned
    long = "x" * (MAX_PARAM_VAL_LENGTH + 100)
    uri = (tmp_path / "mlruns").as_uri()
    run_id = log_tuning(result, options={**options, "note": long}, uri=uri, top=0)
    assert run_id is not None
    with reading(uri) as client:
        params = client.get_run(run_id).data.params
        assert len(params["note"]) == MAX_PARAM_VAL_LENGTH
        assert long.startswith(params["note"].removesuffix("..."))
        assert params["truncated_params"] == "note"
        copy = client.download_artifacts(run_id, "options.json", str(tmp_path))
    assert json.loads(Path(copy).read_text())["note"] == long


def test_logging_is_quiet(
    tuned: tuple[TuningResult, dict[str, Any]],
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    result, options = tuned
    listener = Listener()
    heard = listener.records
    mlflow_logger = logging.getLogger("mlflow")
    level = mlflow_logger.level
    mlflow_logger.addHandler(listener)
    capfd.readouterr()
    caplog.set_level(logging.DEBUG)
    try:
        assert log_tuning(result, options=options, uri=(tmp_path / "m").as_uri()) is not None
    finally:
        mlflow_logger.removeHandler(listener)
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    assert heard == []
    assert warnings_of(caplog) == []
    assert mlflow_logger.level == level, "MLflow's log level is put back"
    for name in KNOBS:
        assert name not in os.environ, f"{name} left set"


def test_an_unreachable_server_is_one_warning_and_no_result(
    tuned: tuple[TuningResult, dict[str, Any]],
    files: list[Path],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result, options = tuned
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")  # a setting of the user's wins
    uri = f"http://user:secret@127.0.0.1:{closed_port()}"
    caplog.set_level(logging.DEBUG)
    got = finishes(lambda: log_tuning(result, options=options, uri=uri, artifacts=files))
    assert got is None
    [warning] = warnings_of(caplog)
    message = warning.getMessage()
    assert warning.name == "stages.mlflow_log" and warning.exc_info is None
    assert uri.replace("user:secret@", "") in message and "secret" not in message
    assert "\n" not in message
    assert mlflow.active_run() is None
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "3"
    for name in KNOBS:
        if name != "MLFLOW_HTTP_REQUEST_TIMEOUT":
            assert name not in os.environ, f"{name} left set"


def test_a_server_that_never_answers_times_out_with_one_warning(
    tuned: tuple[TuningResult, dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A listening socket nobody reads: connections open, requests get no reply."""
    result, options = tuned
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}"
        got = finishes(lambda: log_tuning(result, options=options, uri=uri))
    assert got is None
    [warning] = warnings_of(caplog)
    assert uri in warning.getMessage() and "timed out" in warning.getMessage()


def test_a_failure_midway_leaves_no_run_running(
    tuned: tuple[TuningResult, dict[str, Any]],
    files: list[Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result, options = tuned

    log_artifact = MlflowClient.log_artifact

    def full_disk(
        client: MlflowClient, run_id: str, local_path: str, *args: Any, **kwargs: Any
    ) -> None:
        """The model, the last file, does not fit: the children are logged by then."""
        if Path(local_path).name == files[-1].name:
            raise OSError(28, "No space left on device")
        log_artifact(client, run_id, local_path, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, "log_artifact", full_disk)
    uri = (tmp_path / "mlruns").as_uri()
    assert log_tuning(result, options=options, uri=uri, artifacts=files, top=2) is None
    [warning] = warnings_of(caplog)
    assert "No space left on device" in warning.getMessage()
    monkeypatch.undo()
    with reading(uri) as client:
        experiment = client.get_experiment_by_name("knn-pipeline")
        assert experiment is not None
        runs = client.search_runs([experiment.experiment_id])
    statuses = sorted((run.info.status, "mlflow.parentRunId" in run.data.tags) for run in runs)
    assert statuses == [("FAILED", False), ("FINISHED", True), ("FINISHED", True)]


def test_a_missing_artifact_fails_before_any_run(
    tuned: tuple[TuningResult, dict[str, Any]], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    result, options = tuned
    gone = tmp_path / "gone.json"
    uri = (tmp_path / "mlruns").as_uri()
    assert log_tuning(result, options=options, uri=uri, artifacts=[gone]) is None
    [warning] = warnings_of(caplog)
    assert str(gone) in warning.getMessage()
    assert not (tmp_path / "mlruns").exists()


def test_without_mlflow_the_error_says_what_to_install(
    tuned: tuple[TuningResult, dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, options = tuned
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(InputError, match=r"pip install 'knn-pipeline\[mlflow\]'") as raised:
        log_tuning(result, options=options, uri=(tmp_path / "mlruns").as_uri())
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "mlruns").exists()


def test_a_negative_number_of_child_runs_is_refused(
    tuned: tuple[TuningResult, dict[str, Any]], tmp_path: Path
) -> None:
    result, options = tuned
    with pytest.raises(InputError, match="0 or more"):
        log_tuning(result, options=options, uri=(tmp_path / "mlruns").as_uri(), top=-1)


def test_run_with_mlflow_logs_the_tuning_and_the_files_it_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from stages.cli import main

    store, results = tmp_path / "store", tmp_path / "results.json"
    command = ["run", "--k", "1-5", "--quiet", "--top", "1", "--out", str(results)]
    assert main([*command, f"--mlflow={store}", "--mlflow-top", "2"]) == 0
    assert capsys.readouterr().err == ""
    written = json.loads(results.read_text())
    with reading(tracking_uri(store)) as client:
        (experiment,) = [e for e in client.search_experiments() if e.name == "knn-pipeline"]
        runs = client.search_runs([experiment.experiment_id])
        (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
        assert parent.info.status == "FINISHED"
        best = written["candidates"][0]
        assert parent.data.params["best_k"] == str(best["params"]["k"])
        assert parent.data.metrics["best_cv_score"] == best["mean_accuracy"]
        names = {a.path for a in client.list_artifacts(parent.info.run_id)}
        assert "results.json" in names
        assert len(children(client, parent)) == 2


def test_mlflow_top_below_zero_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    from stages.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["run", "--mlflow", "--mlflow-top", "-1"])
    assert exited.value.code == 2
    assert "--mlflow-top: '-1' must be 0 or more" in capsys.readouterr().err


def test_data_taken_for_the_mlflow_uri_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """``--mlflow`` takes an optional value: ``run --mlflow wine`` would tune Iris."""
    from stages.cli import main

    assert main(["run", "--mlflow", "wine"]) == 2
    error = capsys.readouterr().err
    assert "--mlflow wine: looks like the data" in error and "--mlflow=URI" in error
