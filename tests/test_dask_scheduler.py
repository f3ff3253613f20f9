"""The command line on a cluster started with Dask's own ``dask scheduler`` and
``dask worker`` commands on 127.0.0.1: results, Ctrl-C, a scheduler lost
mid-run, and workers that lack this package."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from distributed import Client

from tests.leaks import descendants, segments, wait_until_gone
from tests.test_predict_cli import cli

ROOT = Path(__file__).resolve().parents[1]
DASK = str(Path(sys.executable).with_name("dask"))
OPTIONS = ["--k", "1-30", "--weights", "uniform,distance", "--quiet"]
BLOCK_THIS_PACKAGE = '''
"""A worker preload that hides this package, as on a machine without it."""
import sys

class _Missing:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("stages", "pipeline"):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None

sys.meta_path.insert(0, _Missing())
'''


CLUSTERS: list[Cluster] = []
"""Every cluster the tests started; those still running are not leaks."""


@dataclass
class Cluster:
    address: str
    processes: list[subprocess.Popen[bytes]]
    running: bool = True

    def pids(self) -> set[int]:
        return {p.pid for p in self.processes} | {
            pid for p in self.processes for pid in descendants(p.pid)
        }

    def stop(self) -> None:
        """Asked to end (Dask's processes then unlink their semaphores), killed if not."""
        self.running = False
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


def start_cluster(
    directory: Path, workers: int, *worker_options: str, wait: bool = True
) -> Cluster:
    """``dask scheduler`` on a free port and ``workers`` worker processes under one nanny."""
    scheduler_file = directory / "scheduler.json"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "start_new_session": True}
    scheduler = subprocess.Popen(
        [
            DASK,
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--dashboard-address",
            ":0",  # its HTTP server on any free port
            "--scheduler-file",
            str(scheduler_file),
        ],
        **quiet,  # type: ignore[call-overload]
    )
    cluster = Cluster("", [scheduler])
    CLUSTERS.append(cluster)
    deadline = time.monotonic() + 60
    while not scheduler_file.exists() or not scheduler_file.read_text().strip():
        assert time.monotonic() < deadline, "dask scheduler did not start"
        time.sleep(0.1)
    cluster.address = json.loads(scheduler_file.read_text())["address"]
    worker = subprocess.Popen(
        [
            DASK,
            "worker",
            cluster.address,
            "--nworkers",
            str(workers),
            "--nthreads",
            "1",
            "--no-dashboard",
            "--host",
            "127.0.0.1",
            *worker_options,
        ],
        cwd=directory,
        **quiet,  # type: ignore[call-overload]
    )
    cluster.processes.append(worker)
    if wait:
        with Client(cluster.address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(workers, timeout=60)
    return cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    started = start_cluster(tmp_path_factory.mktemp("cluster"), 2)
    yield started
    started.stop()


@pytest.fixture(autouse=True)
def nothing_left_behind() -> Iterator[None]:
    """The suite's leak check, not counting the processes of clusters still running."""
    before = segments()
    yield
    allowed = set().union(*(c.pids() for c in CLUSTERS if c.running))
    deadline = time.monotonic() + 10
    left = [p for p in wait_until_gone(0) if p.pid not in allowed]
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [p for p in wait_until_gone(0) if p.pid not in allowed]
    assert not left, f"processes left behind: {[p.pid for p in left]}"
    assert segments() - before == set()


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(5)
    path = tmp_path_factory.mktemp("data") / "data.npz"
    np.savez(path, X=rng.random((2500, 16)), y=rng.integers(0, 3, 2500))
    return path


@pytest.fixture(scope="module")
def undisturbed(data_file: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("local") / "results.json"
    done = run(str(data_file), *OPTIONS, "--workers", "2", "--out", str(out))
    assert done.returncode == 0, done.stderr
    return without_timing(out)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return cli("run", *args)


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def without_timing(path: Path) -> dict[str, Any]:
    results: dict[str, Any] = json.loads(path.read_text())
    results.pop("timing")
    return results


def wait_for_units(checkpoint: Path, units: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while not checkpoint.exists() or checkpoint.read_bytes().count(b"\n") - 1 < units:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.02)


def test_a_run_on_the_cluster_equals_a_local_run(
    cluster: Cluster, data_file: Path, undisturbed: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "results.json"
    done = run(str(data_file), *OPTIONS, "--dask", cluster.address, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert without_timing(out) == undisturbed
    assert "on 2 workers" in done.stdout


def test_ctrl_c_cancels_the_runs_tasks_and_leaves_the_cluster_running(
    cluster: Cluster, data_file: Path, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "run.ckpt"
    process = start(
        str(data_file), *OPTIONS, "--k", "1-60", "--dask", cluster.address,
        "--checkpoint", str(checkpoint),
    )  # fmt: skip
    wait_for_units(checkpoint, 2, process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    with Client(cluster.address, timeout=30, set_as_default=False) as client:
        assert len(client.nthreads()) == 2  # the cluster lives on

        def tasks_left() -> int:
            return int(client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)))

        deadline = time.monotonic() + 20
        while tasks_left() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert tasks_left() == 0  # nothing of the run is computed or kept


def test_a_lost_scheduler_is_one_line_and_the_run_resumes_locally(
    data_file: Path, undisturbed: dict[str, Any], tmp_path: Path
) -> None:
    doomed = start_cluster(tmp_path, 1)
    checkpoint, out = tmp_path / "run.ckpt", tmp_path / "results.json"
    try:
        process = start(
            str(data_file), *OPTIONS, "--dask", doomed.address, "--checkpoint", str(checkpoint)
        )
        wait_for_units(checkpoint, 2, process)
        scheduler = doomed.processes[0]
        os.killpg(scheduler.pid, signal.SIGKILL)
        _, stderr = process.communicate(timeout=120)
    finally:
        doomed.stop()
    assert process.returncode == 1, stderr
    assert "lost the Dask scheduler" in stderr
    assert stderr.strip().count("\n") == 0, stderr  # one line
    done = run(
        str(data_file), *OPTIONS, "--checkpoint", str(checkpoint), "--resume", "--out", str(out)
    )
    assert done.returncode == 0, done.stderr
    assert without_timing(out) == undisturbed


def test_workers_without_the_package_are_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "without_package.py").write_text(BLOCK_THIS_PACKAGE)
    bare = start_cluster(tmp_path, 1, "--preload", str(tmp_path / "without_package.py"))
    try:
        done = run("--k", "1-5", "--quiet", "--dask", bare.address)
    finally:
        bare.stop()
    assert done.returncode == 2, done.stderr
    assert "cannot import stages" in done.stderr and "install knn-pipeline" in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
