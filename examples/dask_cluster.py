"""Scale out: run the tuning's units on a Dask cluster.

``dask=`` takes a scheduler's address (``tcp://HOST:PORT``), ``local:N`` to
start a cluster of N worker processes for the run, or a ``distributed.Client``
the application already has (left open for it). Either way the data reach
each worker once and the work is sized from the cluster's threads; the
command line's ``--dask`` does the same.
Needs ``pip install -e '.[dask]'``. Run: python examples/dask_cluster.py
"""

from __future__ import annotations

import asyncio

from distributed import Client, LocalCluster

from stages import Tuning


async def main() -> None:
    # A cluster for this run only: started, used, closed.
    first = await Tuning("wine", k="1-15:2", weights="uniform,distance", dask="local:2").run()

    # The application's own cluster and client, used as they are.
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": ":0"},  # its HTTP server: any free port
        ) as cluster,
        Client(cluster) as client,
    ):
        second = await Tuning("wine", k="1-15:2", weights="uniform,distance", dask=client).run()
    best = second.best
    assert best is not None and first.best is not None
    assert first.best.candidate == best.candidate
    print(f"dask: {len(second.candidates)} candidates on {second.workers} workers")
    print(f"best: {best.candidate.params()} accuracy {best.mean_accuracy:.4f}")


if __name__ == "__main__":
    asyncio.run(main())
