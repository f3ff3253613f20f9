"""Tuning and prediction on a real Dask ``LocalCluster`` of worker processes.

Each test starts its own cluster, so the suite's leak check also proves the
cluster's processes are gone once it is closed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from distributed import Client, LocalCluster

from benchmarks.cluster_wire import received_bytes
from pipeline.cluster import DaskCluster, parse_local
from pipeline.compute import default_workers
from pipeline.errors import InputError
from stages import KNNModel, Tuning
from stages.predicting import Prediction
from tests.test_predict_cli import cli

ROOT = Path(__file__).resolve().parents[1]
GRID: dict[str, Any] = {
    "k": "1-15:2",
    "metrics": "euclidean,manhattan",
    "weights": "uniform,distance",
    "scale": "none,standard",
}


def local_cluster(workers: int = 2, threads: int = 1) -> LocalCluster:
    """A cluster of worker processes, quiet, its HTTP server on any free port."""
    return LocalCluster(
        n_workers=workers,
        threads_per_worker=threads,
        processes=True,
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": ":0"},
        silence_logs=50,
    )


@pytest.fixture
def client() -> Iterator[Client]:
    with local_cluster() as cluster, Client(cluster, set_as_default=False) as client:
        yield client


def comparable(result: Any) -> dict[str, Any]:
    """The results JSON without what may differ between equal runs (timing, workers)."""
    document = result.to_dict()
    document.pop("timing")
    return {key: value for key, value in document.items() if key != "workers"}


def blobs(
    rows: int, features: int, seed: int = 3
) -> tuple[np.ndarray[Any, np.dtype[np.float64]], np.ndarray[Any, np.dtype[np.int64]]]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (3, features))
    y = rng.integers(0, 3, rows)
    return centres[y] + rng.normal(0, 1.5, (rows, features)), y


async def test_a_run_on_a_cluster_equals_a_run_on_the_local_pool(client: Client) -> None:
    local = await Tuning("wine", workers=2, **GRID).run()
    tuning = Tuning("wine", dask=client, **GRID)
    remote = await tuning.run()
    assert comparable(remote) == comparable(local)
    assert tuning.pool.workers == 2  # the cluster's threads, read from the scheduler
    assert client.status == "running"  # a client handed in is left open


async def test_the_data_reach_each_worker_once(client: Client) -> None:
    """Tasks carry a future of the scattered inputs, not the data set."""
    data = blobs(20_000, 32)
    data_bytes = data[0].nbytes + data[1].nbytes
    before = sum(received_bytes(client).values())
    result = await Tuning(data, k="1-5", metrics="manhattan", executor=client.get_executor()).run()
    received = sum(received_bytes(client).values()) - before
    workers = len(client.nthreads())
    assert result.workers == workers == 2
    # Scattered once to each worker; pickled into every task it would be about
    # 20 times this (one copy a unit).
    assert received <= 3 * data_bytes * workers, (received, data_bytes)
    assert received >= data_bytes * workers  # the counter counts what is sent


async def test_a_cluster_gets_fewer_larger_units_than_the_local_pool(client: Client) -> None:
    """A task costs more on a cluster (the scheduler's and client's share), so the plan
    makes units larger there, keeping that cost the same small part of their work."""
    data = blobs(20_000, 32)

    async def planned_units(tuning: Tuning) -> int:
        async with tuning.subscribe() as events:
            task = asyncio.create_task(tuning.run())
            units = [e.units_total async for e in events if e.kind == "run_started"]
            await task
        return units[0]

    options: dict[str, Any] = {"k": "1-5", "metrics": "manhattan"}
    local = await planned_units(Tuning(data, workers=2, **options))
    remote = await planned_units(Tuning(data, dask=client, **options))
    assert 8 <= remote < local


async def test_a_killed_worker_is_replaced_and_the_results_stay_the_same(
    client: Client,
) -> None:
    data = blobs(6_000, 16)
    options: dict[str, Any] = {"k": "1-40", "weights": "uniform,distance", "metrics": "manhattan"}
    local = await Tuning(data, workers=2, **options).run()
    tuning = Tuning(data, dask=client, max_in_flight=2, **options)
    killed = asyncio.Event()
    warnings: list[str] = []

    async def kill_a_worker_after_the_first_unit() -> None:
        async for event in tuning.subscribe():
            if event.kind == "unit_done" and not killed.is_set():
                pid = next(iter(client.run(os.getpid).values()))
                os.kill(pid, signal.SIGKILL)
                killed.set()
            if event.kind == "log" and event.level == "WARNING":
                warnings.append(event.message)

    watcher = asyncio.create_task(kill_a_worker_after_the_first_unit())
    result = await tuning.run()
    await watcher
    assert killed.is_set()
    assert comparable(result) == comparable(local)
    assert any("left the cluster" in message for message in warnings), warnings


async def test_a_client_from_an_address_is_closed_after_the_run(client: Client) -> None:
    def clients() -> set[str]:
        return set(client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.clients)))

    before = clients()
    tuning = Tuning("iris", k="1-9", dask=client.scheduler.address)
    await tuning.run()
    for _ in range(100):  # the scheduler hears of a closed client a moment later
        if clients() == before:
            break
        await asyncio.sleep(0.05)
    assert clients() == before  # the run's own client is gone
    assert len(client.nthreads()) == 2  # the cluster itself still runs


async def test_prediction_on_a_cluster_equals_the_local_pool(client: Client) -> None:
    data = blobs(3_000, 8)
    model = (await Tuning(data, k="1-9", workers=2).run()).model()
    samples = blobs(5_000, 8, seed=4)[0]
    local = Prediction(model, samples, workers=2, proba=True)
    await local.run()
    remote = Prediction(model, samples, dask=client, proba=True)
    summary = await remote.run()
    assert summary.workers == 2
    np.testing.assert_array_equal(remote.codes, local.codes)
    assert remote.shares is not None and local.shares is not None
    np.testing.assert_array_equal(remote.shares, local.shares)


def test_local_addresses_name_their_worker_count() -> None:
    assert parse_local("local:3") == 3
    assert parse_local("local") == default_workers()
    assert parse_local("tcp://127.0.0.1:8786") is None
    with pytest.raises(InputError, match="at least 1 worker"):
        parse_local("local:0")
    with pytest.raises(InputError, match="local:N for N workers"):
        parse_local("local:abc")


@pytest.mark.parametrize("address", ["foo", "", "tcp://host", "127.0.0.1"])
async def test_what_is_no_scheduler_address_is_refused_at_once(address: str) -> None:
    with pytest.raises(InputError, match="not a scheduler address"):
        await DaskCluster.connect(address)


async def test_an_unreachable_scheduler_is_one_clear_error() -> None:
    with pytest.raises(InputError, match=r"cannot reach a Dask scheduler.*dask scheduler"):
        await DaskCluster.connect("tcp://127.0.0.1:1", timeout=0.5)


def test_a_cluster_and_a_worker_count_are_refused_together() -> None:
    with pytest.raises(InputError, match="local:N"):
        Tuning("iris", dask="local:2", workers=2)


def test_the_command_line_starts_and_closes_a_local_cluster(tmp_path: Path) -> None:
    """``--dask local:2``: the same results JSON and model as a local run, nothing left."""
    on_dask, here = tmp_path / "dask.json", tmp_path / "here.json"
    model = tmp_path / "model.json"
    options = ["--k", "1-9", "--weights", "uniform,distance", "--quiet"]
    done = cli("run", "wine", *options, "--dask", "local:2", "--out", str(on_dask))
    assert done.returncode == 0, done.stderr
    assert "2 workers" in done.stdout
    done = cli("run", "wine", *options, "--out", str(here), "--save-model", str(model))
    assert done.returncode == 0, done.stderr
    first, second = (json.loads(p.read_text()) for p in (on_dask, here))
    first.pop("timing"), second.pop("timing")
    assert first == second
    samples = tmp_path / "samples.npy"
    np.save(samples, KNNModel.load(model).X[:50] + 0.25)
    predicted = {}
    for where, extra in (("dask", ["--dask", "local:2"]), ("here", [])):
        out = tmp_path / f"{where}.csv"
        done = cli("predict", str(model), str(samples), "--out", str(out), "--quiet", *extra)
        assert done.returncode == 0, done.stderr
        predicted[where] = out.read_text()
    assert predicted["dask"] == predicted["here"]


def test_the_command_line_refuses_workers_with_a_cluster() -> None:
    done = cli("run", "--dask", "local:2", "--workers", "2")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "--dask" in done.stderr


async def test_the_pool_follows_workers_that_join_a_cluster_of_threads() -> None:
    """Sized by threads (one process of two threads, then three such processes), and a
    worker's threads run units side by side with the results unchanged. (That the
    stages then put more units in flight is map_concurrently's test.)"""
    from pipeline.compute import ComputePool

    with (
        local_cluster(workers=1, threads=2) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        async with ComputePool(dask=client, preload=("stages.neighbours",)) as pool:
            assert (pool.workers, pool.max_in_flight) == (2, 4)
            threaded = await Tuning("wine", pool=pool, **GRID).run()
            await asyncio.to_thread(cluster.scale, 3)
            await asyncio.to_thread(client.wait_for_workers, 3, 60)
            for _ in range(100):
                if pool.workers == 6:
                    break
                await asyncio.sleep(0.1)
            assert (pool.workers, pool.max_in_flight) == (6, 12)
    local = await Tuning("wine", workers=2, **GRID).run()
    assert comparable(threaded) == comparable(local)


def one_worker() -> LocalCluster:
    return local_cluster(workers=1)


async def test_data_lost_with_the_only_worker_are_placed_again() -> None:
    """One worker holds the only copy of the scattered data: killed, it takes them along."""
    data = blobs(6_000, 16)
    options: dict[str, Any] = {"k": "1-40", "weights": "uniform,distance", "metrics": "manhattan"}
    local = await Tuning(data, workers=2, **options).run()
    with one_worker() as cluster, Client(cluster, set_as_default=False) as client:
        tuning = Tuning(data, dask=client, max_in_flight=1, **options)
        warnings: list[str] = []

        async def kill_the_worker_after_the_first_unit() -> None:
            killed = False
            async for event in tuning.subscribe():
                if event.kind == "unit_done" and not killed:
                    os.kill(next(iter(client.run(os.getpid).values())), signal.SIGKILL)
                    killed = True
                if event.kind == "log" and event.level == "WARNING":
                    warnings.append(event.message)

        watcher = asyncio.create_task(kill_the_worker_after_the_first_unit())
        result = await tuning.run()
        await watcher
    assert comparable(result) == comparable(local)
    assert any("placing it again" in message for message in warnings), warnings


async def test_a_task_that_kills_every_worker_is_a_crash() -> None:
    from pipeline.compute import ComputePool, WorkerCrashed

    with one_worker() as cluster, Client(cluster, set_as_default=False) as client:
        async with ComputePool(dask=client) as pool:
            with pytest.raises(WorkerCrashed, match="Dask worker died each time"):
                await pool.run(os._exit, 1)


def test_ctrl_c_at_the_terminal_ends_a_local_cluster_quietly(tmp_path: Path) -> None:
    """The terminal sends SIGINT to the whole process group, the cluster's workers too."""
    data, events = tmp_path / "data.npz", tmp_path / "events.jsonl"
    X, y = blobs(40_000, 32)
    np.savez(data, X=np.abs(X), y=y)  # non-negative, as sorensen wants: no warning
    command = [sys.executable, "-m", "pipeline", "run", str(data), "--k", "1-50", "--quiet"]
    process = subprocess.Popen(
        [*command, "--weights", "uniform,distance", "--dask", "local:2", "--events", str(events)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while '"unit_done"' not in (events.read_text() if events.exists() else ""):
        assert process.poll() is None and time.monotonic() < deadline, "no unit finished"
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGINT)  # the cluster started, units running
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert stderr.strip() == "interrupted", stderr


_WORKER_LOGS = """
import asyncio, logging, sys
from pipeline.cluster import DaskCluster


def log_in_the_worker():
    logging.getLogger("distributed.worker").error("a worker's own error line")
    logging.getLogger("tornado.application").error("a library's error line")
    return True


async def main():
    cluster = await DaskCluster.connect("local:1")
    try:
        logged = await asyncio.to_thread(cluster.client.run, log_in_the_worker)
        print(list(logged.values()), file=sys.stdout)
    finally:
        await cluster.aclose()

asyncio.run(main())
"""


def test_a_local_clusters_workers_keep_their_log_lines_off_the_terminal() -> None:
    """Dask's ``silence_logs`` holds only while a worker runs: its teardown after a
    Ctrl-C printed broken-connection tracebacks onto the terminal it shares."""
    done = subprocess.run(
        [sys.executable, "-c", _WORKER_LOGS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[True]"
    assert done.stderr == "", done.stderr


def _worker_priority_and_ctrl_c() -> tuple[int, int, bool]:
    return os.getpid(), os.nice(0), signal.getsignal(signal.SIGINT) == signal.SIG_IGN


async def test_local_workers_are_nicer_and_deaf_to_ctrl_c_even_when_restarted() -> None:
    """A worker the nanny restarts (here after kill -9) is set up as the first ones were."""
    ours = os.nice(0)
    cluster = await DaskCluster.connect("local:1")
    try:
        client = cluster.client
        (first,) = (await asyncio.to_thread(client.run, _worker_priority_and_ctrl_c)).values()
        assert first[1:] == (ours + 5, True)
        os.kill(first[0], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while True:
            states = await asyncio.to_thread(
                client.run, _worker_priority_and_ctrl_c, on_error="ignore"
            )
            if states and all(state[0] != first[0] for state in states.values()):
                break
            assert time.monotonic() < deadline, "the nanny did not restart the worker"
            await asyncio.sleep(0.2)
        (restarted,) = states.values()
        assert restarted[1:] == (ours + 5, True)
    finally:
        await cluster.aclose()
