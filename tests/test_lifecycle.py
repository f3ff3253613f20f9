"""Cancellation, failures and cleanup of whole tuning runs."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline.errors import InputError
from pipeline.runner import StageFailed
from stages import Dataset, Tuning
from tests import workers
from tests.leaks import descendants, segments, wait_for_exit, wait_until_gone

ROOT = Path(__file__).resolve().parents[1]


def big_dataset(rows: int = 6000, features: int = 20) -> Dataset:
    rng = np.random.default_rng(1)
    return Dataset(
        X=rng.random((rows, features)),
        y=rng.integers(0, 3, rows).astype(np.intp),
        classes=["a", "b", "c"],
        source="random",
    )


async def test_cancelling_a_running_tuning_leaves_no_process_and_no_segment() -> None:
    tuning = Tuning(big_dataset(), k="1-50", weights="uniform,distance", workers=2)
    events = tuning.subscribe()
    task = asyncio.create_task(tuning.run())
    async for event in events:
        if event.kind == "unit_done":
            break
    assert segments(), "the data set should be in shared memory while running"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert wait_until_gone() == []
    assert segments() == set()
    partial = tuning.result()
    assert not partial.complete


async def test_run_failed_event_marks_an_interruption() -> None:
    tuning = Tuning(big_dataset(2000), k="1-5", workers=1)
    events = tuning.subscribe()
    task = asyncio.create_task(tuning.run())
    kinds = []
    async for event in events:
        kinds.append(event.kind)
        if event.kind == "run_started":
            task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert kinds[-1] == "run_failed"


async def test_a_failing_load_names_the_stage() -> None:
    with pytest.raises(StageFailed) as caught:
        await Tuning("/no/such/file.csv").run()
    assert caught.value.stage == "load"
    assert isinstance(caught.value.__cause__, InputError)


async def test_k_larger_than_a_training_fold_fails_in_partition() -> None:
    with pytest.raises(StageFailed) as caught:
        await Tuning("iris", k="1,121", executor=ThreadPoolExecutor(1)).run()
    assert caught.value.stage == "partition"
    assert "k <= 120" in str(caught.value.__cause__)


def neighbours_pipeline(pool: Any, shared: Any, space: Any, compute: Any) -> Any:
    """load -> partition -> plan -> neighbours on iris, with ``compute`` run per unit."""
    from pipeline import Pipeline
    from stages.flow import load_stage, neighbours_stage, partition_stage, plan_stage
    from stages.partition import parse_cv

    async def drain(inbox: Any) -> None:
        async for _ in inbox:
            pass

    pipe = Pipeline()
    datasets, folds, units = pipe.channel("d"), pipe.channel("f"), pipe.channel("u")
    outputs = pipe.channel("o", 100)
    pipe.stage("load", load_stage, datasets.sender, "iris")
    pipe.stage(
        "partition",
        partition_stage,
        datasets.receiver,
        folds.sender,
        cv=parse_cv("kfold:3"),
        seed=0,
        space=space,
    )
    pipe.stage(
        "plan", plan_stage, folds.receiver, units.sender, space=space, shared=shared, workers=2
    )
    pipe.stage(
        "neighbours", neighbours_stage, units.receiver, outputs.sender, pool=pool, compute=compute
    )
    pipe.stage("drain", drain, outputs.receiver)
    return pipe


def explode(*args: object) -> object:
    raise ArithmeticError("kernel blew up")


async def test_a_failing_unit_names_the_neighbours_stage() -> None:
    from pipeline import ComputePool, SharedArrays
    from stages.search_space import SearchSpace

    space = SearchSpace(ks=(1,), metrics=("euclidean",), weights=("uniform",))
    with ThreadPoolExecutor(2) as executor:
        async with ComputePool(executor) as pool:
            with SharedArrays(use_shared_memory=False) as shared:
                pipe = neighbours_pipeline(pool, shared, space, explode)
                with pytest.raises(StageFailed) as caught:
                    await pipe.run()
    assert caught.value.stage == "neighbours"
    assert isinstance(caught.value.__cause__, ArithmeticError)


async def test_a_thread_executor_gives_the_same_results_as_the_process_pool() -> None:
    options = {"k": "1-15", "weights": "uniform,distance"}
    with ThreadPoolExecutor(2) as executor:
        threaded = await Tuning("wine", executor=executor, **options).run()  # type: ignore[arg-type]
    processes = await Tuning("wine", workers=2, **options).run()  # type: ignore[arg-type]
    assert [c.to_dict() for c in threaded.candidates] == [c.to_dict() for c in processes.candidates]


def test_a_worker_starts_without_scikit_learn_scipy_or_asyncio() -> None:
    """What the forkserver preloads decides how long a cold pool takes to start."""
    listing = (
        "from pipeline.compute import _server_preload\n"
        "from stages.neighbours import WORKER_PRELOAD\n"
        "print(' '.join(_server_preload(WORKER_PRELOAD)))\n"
    )
    importing = (
        "import sys\n"
        "for name in sys.argv[1:]:\n"
        "    __import__(name)\n"
        "print(sorted(m for m in ('sklearn', 'scipy', 'asyncio') if m in sys.modules))\n"
    )
    preload = subprocess.run(
        [sys.executable, "-c", listing], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert preload.returncode == 0, preload.stderr
    names = preload.stdout.split()
    assert "stages.neighbours" in names
    done = subprocess.run(
        [sys.executable, "-c", importing, *names],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_cli_with_130_and_leaves_nothing(signum: int, tmp_path: Path) -> None:
    data = big_dataset(20000, 30)  # many seconds of work: the signal lands mid-run
    path = tmp_path / "big.npz"
    np.savez(path, X=data.X, y=data.y)
    out = tmp_path / "r.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline",
            "run",
            str(path),
            "--k",
            "1-60",
            "--weights",
            "uniform,distance",
            "--workers",
            "2",
            "--quiet",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: set[int] = set()
    deadline = time.monotonic() + 60
    while len(seen) < 3 and time.monotonic() < deadline and proc.poll() is None:
        seen.update(descendants(proc.pid))
        time.sleep(0.05)
    assert len(seen) >= 3, "expected the forkserver and two workers to start"
    time.sleep(0.5)
    seen.update(descendants(proc.pid))
    os.kill(proc.pid, signum)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert not out.exists()
    assert wait_for_exit(seen) == set()
    assert segments(owner=proc.pid) == set()


async def test_switching_neighbour_reuse_off_changes_nothing_but_the_work() -> None:
    options = {"k": "1-9:2", "weights": "uniform,distance", "metrics": "manhattan,sorensen"}
    with ThreadPoolExecutor(2) as executor:
        reused = await Tuning("wine", executor=executor, **options).run()  # type: ignore[arg-type]
        once_each = await Tuning(
            "wine",
            executor=executor,
            reuse_neighbours=False,
            **options,  # type: ignore[arg-type]
        ).run()
    assert [c.to_dict() for c in reused.candidates] == [c.to_dict() for c in once_each.candidates]


async def test_a_worker_killed_mid_run_changes_nothing_and_is_reported() -> None:
    data = big_dataset(6000, 10)  # enough units that the kill lands mid-run
    options = {"k": "1-20", "weights": "uniform,distance", "workers": 2}
    undisturbed = await Tuning(data, **options).run()  # type: ignore[arg-type]
    tuning = Tuning(data, **options)  # type: ignore[arg-type]
    warnings: list[str] = []
    async with tuning.subscribe() as events:
        task = asyncio.create_task(tuning.run())
        killed = False
        async for event in events:
            if event.kind == "unit_done" and not killed:
                victim = next(iter(tuning.pool.executor._processes))  # type: ignore[attr-defined]
                os.kill(victim, signal.SIGKILL)
                killed = True
            if event.kind == "log" and event.level == "WARNING":  # type: ignore[attr-defined]
                warnings.append(event.message)  # type: ignore[attr-defined]
        disturbed = await task
    assert tuning.pool.restarts >= 1
    assert any("worker process died" in message for message in warnings)
    assert [c.to_dict() for c in disturbed.candidates] == [
        c.to_dict() for c in undisturbed.candidates
    ]


async def test_a_unit_that_kills_its_worker_every_time_fails_the_run_naming_it() -> None:
    from pipeline import ComputePool, SharedArrays
    from pipeline.compute import WorkerCrashed
    from stages.search_space import SearchSpace

    space = SearchSpace(ks=(1, 3), metrics=("euclidean", "manhattan"), weights=("uniform",))
    async with ComputePool(workers=2, retries=2) as pool:
        with SharedArrays() as shared:
            pipe = neighbours_pipeline(pool, shared, space, workers.compute_unit_dying_on_unit_3)
            with pytest.raises(StageFailed) as caught:
                await pipe.run()
    assert caught.value.stage == "neighbours"
    crash = caught.value.__cause__
    assert isinstance(crash, WorkerCrashed)
    assert re.search(r"unit 3 \(fold \d, (euclidean|manhattan), test rows \d+\.\.\d+\)", str(crash))
    assert "died 2 times" in str(crash)


async def test_a_process_pool_of_the_caller_is_used_with_shared_memory_and_kept() -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    options = {"k": "1-9", "weights": "uniform,distance"}
    reference = await Tuning("wine", executor=ThreadPoolExecutor(2), **options).run()  # type: ignore[arg-type]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=context) as executor:
        tuning = Tuning("wine", executor=executor, **options)  # type: ignore[arg-type]
        result = await tuning.run()
        assert tuning.pool.local_processes
        assert executor.submit(pow, 2, 5).result() == 32  # still the caller's, still running
    assert segments() == set()
    assert [c.to_dict() for c in result.candidates] == [c.to_dict() for c in reference.candidates]


async def test_a_tuning_runs_once() -> None:
    tuning = Tuning("iris", k="1", metrics="euclidean", executor=ThreadPoolExecutor(1))
    await tuning.run()
    with pytest.raises(RuntimeError, match="already run"):
        await tuning.run()


async def test_one_warm_pool_serves_many_runs_and_outlives_a_failed_one() -> None:
    from stages import compute_pool

    options = {"k": "1-9", "weights": "uniform,distance"}
    reference = await Tuning("wine", executor=ThreadPoolExecutor(2), **options).run()  # type: ignore[arg-type]
    async with compute_pool(2) as pool:
        first = Tuning("wine", pool=pool, **options)  # type: ignore[arg-type]
        await first.run()
        worker_pids = descendants(os.getpid())
        with pytest.raises(StageFailed):  # k larger than a training fold
            await Tuning("iris", pool=pool, k="1-200").run()
        second = await Tuning("wine", pool=pool, **options).run()  # type: ignore[arg-type]
        assert pool.started
        assert descendants(os.getpid()) == worker_pids, "the same workers served every run"
        assert segments() == set(), "each run removes its own shared arrays"
    assert not pool.started
    assert wait_until_gone() == []
    for result in (first.result(), second):
        assert [c.to_dict() for c in result.candidates] == [
            c.to_dict() for c in reference.candidates
        ]


async def test_a_pool_is_handed_in_started_and_alone() -> None:
    from stages import compute_pool

    with pytest.raises(RuntimeError, match="not started"):
        await Tuning("iris", k="1", pool=compute_pool(1)).run()
    with pytest.raises(ValueError, match="not both"):
        Tuning("iris", pool=compute_pool(1), workers=2)


async def test_float32_runs_equal_float64_where_float32_is_exact() -> None:
    """Small integer features: distances are exact in float32 too, ties included."""
    rng = np.random.default_rng(6)
    data = Dataset(
        X=rng.integers(0, 6, (400, 4)).astype(np.float64),
        y=rng.integers(0, 3, 400).astype(np.intp),
        classes=["a", "b", "c"],
        source="integers",
    )
    options = {"k": "1-25", "metrics": "euclidean,manhattan,chebyshev", "workers": 2}
    exact = await Tuning(data, **options).run()  # type: ignore[arg-type]
    rounded = await Tuning(data, precision="float32", **options).run()  # type: ignore[arg-type]
    assert rounded.precision == "float32" and rounded.to_dict()["precision"] == "float32"
    assert [c.to_dict() for c in rounded.candidates] == [c.to_dict() for c in exact.candidates]
