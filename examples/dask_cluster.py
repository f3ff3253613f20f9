"""Scale out: run the tuning's units on a Dask cluster through its executor.

Any ``concurrent.futures.Executor`` can run the units; Dask's
``Client.get_executor()`` is one. Here the cluster is local (two worker
processes); point the ``Client`` at a scheduler address to use a real one.
Needs ``pip install -e '.[dask]'``. Run: python examples/dask_cluster.py
"""

from __future__ import annotations

import asyncio

from distributed import Client, LocalCluster

from stages import Tuning


async def main() -> None:
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        executor = client.get_executor()
        workers = len(cluster.workers)
        result = await Tuning(
            "wine", k="1-15:2", weights="uniform,distance", executor=executor
        ).run()
    best = result.best
    assert best is not None
    print(f"dask: {len(result.candidates)} candidates on {workers} workers")
    print(f"best: {best.candidate.params()} accuracy {best.mean_accuracy:.4f}")


if __name__ == "__main__":
    asyncio.run(main())
