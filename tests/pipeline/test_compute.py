from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from pipeline.compute import ComputePool, WorkerCrashed
from tests import workers


async def test_runs_functions_on_worker_processes() -> None:
    async with ComputePool(workers=2) as pool:
        results = await asyncio.gather(*(pool.run(workers.square, i) for i in range(20)))
        pids = set(await asyncio.gather(*(pool.run(workers.pid) for _ in range(8))))
    assert results == [i * i for i in range(20)]
    assert psutil.Process().pid not in pids


async def test_default_pool_never_forks_a_threaded_parent() -> None:
    async with ComputePool(workers=1) as pool:
        method = pool.executor._mp_context.get_start_method()  # type: ignore[attr-defined]
    assert method in {"forkserver", "spawn"}
    assert method in multiprocessing.get_all_start_methods()


async def test_worker_error_is_the_original_exception_with_remote_traceback() -> None:
    async with ComputePool(workers=1) as pool:
        with pytest.raises(ValueError, match="boom") as caught:
            await pool.run(workers.fail, "boom")
    assert "raise ValueError(message)" in str(caught.value.__cause__)


async def test_workers_ignore_sigint_run_blas_single_threaded_and_yield_the_cpu() -> None:
    async with ComputePool(workers=1, niceness=3) as pool:
        assert await pool.run(workers.sigint_handler_is_ignore)
        threads = await pool.run(workers.blas_threads)
        worker_niceness = await pool.run(workers.niceness)
    assert threads and all(n == 1 for n in threads)
    assert worker_niceness == min(os.nice(0) + 3, 19)


async def test_workers_leave_what_they_inherit_out_of_their_garbage_collections() -> None:
    # The forkserver's modules and NumPy's objects: a full collection would write to
    # each of their pages, copying them all from the server into every worker.
    async with ComputePool(workers=1) as pool:
        walked, frozen = await pool.run(workers.walked_and_frozen)
    assert frozen > 10_000
    assert walked < frozen / 4


async def test_any_executor_handed_in_is_used_and_left_running() -> None:
    workers.reset_gate()
    with ThreadPoolExecutor(8) as executor:
        pool = ComputePool(executor, max_in_flight=3)
        async with pool:
            assert not pool.local_processes
            tasks = [asyncio.create_task(pool.run(workers.gated, i)) for i in range(10)]
            while pool.in_flight < 3:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
            assert pool.in_flight == 3
            workers.open_gate()
            peaks = await asyncio.gather(*tasks)
        assert max(peaks) == 3  # never more than max_in_flight at once
        assert executor.submit(workers.square, 3).result() == 9  # still usable by its owner


async def test_cancelling_stops_in_flight_work_and_leaves_no_workers() -> None:
    async with ComputePool(workers=2) as pool:
        worker_pids = set(await asyncio.gather(*(pool.run(workers.pid) for _ in range(4))))
        task = asyncio.ensure_future(  # noqa: RUF006
            asyncio.gather(*(pool.run(workers.sleep, 30) for _ in range(6)))
        )
        while pool.in_flight < 4:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await pool.aclose(abort=True)
    for worker_pid in worker_pids:
        assert not psutil.pid_exists(worker_pid) or psutil.Process(worker_pid).status() == "zombie"


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="workers"):
        ComputePool(workers=0)
    with pytest.raises(ValueError, match="max_in_flight"):
        ComputePool(workers=1, max_in_flight=0)


async def test_a_task_that_kills_its_worker_every_time_fails_alone() -> None:
    async with ComputePool(workers=2, retries=2) as pool:
        innocent = [asyncio.create_task(pool.run(workers.square_slowly, i)) for i in range(8)]
        with pytest.raises(WorkerCrashed, match="died 2 times"):
            await pool.run(workers.die)
        assert await asyncio.gather(*innocent) == [i * i for i in range(8)]
        assert pool.restarts >= 2
        assert await pool.run(workers.square, 7) == 49  # the rebuilt pool works


async def test_a_worker_killed_from_outside_loses_no_task() -> None:
    async with ComputePool(workers=2) as pool:
        tasks = [asyncio.create_task(pool.run(workers.square_slowly, i)) for i in range(40)]
        while pool.in_flight < 2:
            await asyncio.sleep(0.01)
        victim = next(iter(pool.executor._processes))  # type: ignore[attr-defined]
        os.kill(victim, signal.SIGKILL)
        assert await asyncio.gather(*tasks) == [i * i for i in range(40)]
        assert pool.restarts == 1


async def test_a_prestarted_forkserver_is_the_one_pools_fork_from() -> None:
    from multiprocessing import forkserver

    from pipeline.compute import prestart_forkserver

    prestart_forkserver(["tests.workers"])
    server = forkserver._forkserver._forkserver_pid  # type: ignore[attr-defined]
    assert server is not None and psutil.pid_exists(server)
    async with ComputePool(workers=2) as pool:
        parents = {await pool.run(os.getppid) for _ in range(4)}
    assert parents == {server}, "workers fork from the server started ahead"


async def test_aborting_after_half_a_result_leaves_no_thread_waiting(tmp_path: Path) -> None:
    """A worker stopped mid-send must not leave the executor's thread (and exit) hanging."""
    flag = tmp_path / "sent"
    pool = ComputePool(workers=1)
    await pool.__aenter__()
    executor = pool.executor
    task = asyncio.create_task(pool.run(workers.send_half_a_result_then_hang, str(flag)))
    while not flag.exists():
        await asyncio.sleep(0.02)
    manager = executor._executor_manager_thread  # type: ignore[attr-defined]
    task.cancel()
    await pool.aclose(abort=True)
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.to_thread(manager.join, 10)
    assert not manager.is_alive(), "the executor's manager thread still waits for the result"


async def test_a_worker_killed_while_sending_its_result_is_noticed_and_retried(
    tmp_path: Path,
) -> None:
    """Half a message and a held lock would leave every task waiting forever."""
    flag = tmp_path / "dying"
    async with ComputePool(workers=2) as pool:
        other = asyncio.create_task(pool.run(workers.return_after, 0.5))
        result = await pool.run(workers.die_while_sending_a_result, str(flag))
        assert result == "second try"
        assert await other == 0.5
        assert pool.restarts >= 1


async def test_tasks_that_may_run_here_use_this_process_while_the_workers_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("pipeline.compute._ready", workers.slow_ready)  # a second to start
    async with ComputePool(workers=1, niceness=3) as pool:
        here = [pool.run(workers.where_and_when, 0.05, may_run_here=True) for _ in range(30)]
        elsewhere = [pool.run(workers.where_and_when, 0.0) for _ in range(3)]
        results = await asyncio.gather(*here, *elsewhere)
    ran_here = [r for r in results[:30] if r[0] == os.getpid()]
    assert 5 <= len(ran_here) < 30, "here while the workers start, then on them"
    assert all(r[0] != os.getpid() for r in results[30:]), "only tasks that allow it"
    spans = sorted((start, end) for _, _, start, end, _ in ran_here)
    assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(spans))
    assert {r[4] for r in ran_here} == {min(os.nice(0) + 3, 19)}, "at the workers' priority"
    assert os.nice(0) != min(os.nice(0) + 3, 19), "this thread's priority is its own"
    helper_threads = {r[1] for r in ran_here}
    assert not any(t.native_id in helper_threads and t.is_alive() for t in threading.enumerate())


async def test_a_warm_pool_runs_every_task_on_its_workers() -> None:
    async with ComputePool(workers=1) as pool:
        await pool.run(os.getpid)  # started
        results = await asyncio.gather(
            *(pool.run(workers.where_and_when, 0.0, may_run_here=True) for _ in range(8))
        )
    assert all(r[0] != os.getpid() for r in results)


async def test_a_cancelled_task_running_here_is_waited_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("pipeline.compute._ready", workers.slow_ready)
    async with ComputePool(workers=1) as pool:
        task = asyncio.create_task(
            pool.run(workers.sleep_then_mark, 0.3, "cancelled", may_run_here=True)
        )
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert "cancelled" in workers.MARKS, "its thread ended before the cancel did"
        assert pool.in_flight == 0


async def test_a_task_that_kills_its_worker_never_runs_here_while_the_pool_restarts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with ComputePool(workers=1, retries=2) as pool:
        await pool.run(os.getpid)  # warm: the first try goes to the worker
        monkeypatch.setattr("pipeline.compute._ready", workers.slow_ready)  # slow restarts
        with pytest.raises(WorkerCrashed):
            await pool.run(workers.die_unless_in, os.getpid(), may_run_here=True)
        assert pool.restarts >= 2
