"""Starting the workers' forkserver ahead of the pool, from a module that imports
nothing heavy.

The forkserver is a fresh interpreter that imports the workers' modules
(NumPy, the kernels) once and forks every worker from there: about a sixth
of a second that no parallelism shortens. A command line starts it first
thing, before its own imports of asyncio, NumPy and the stages, so that the
two overlap; :mod:`pipeline.compute` imports this module's functions, and a
pool started later forks from the same server.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from multiprocessing import forkserver

__all__ = ["leave_arithmetic_to_workers", "prestart_forkserver", "server_preload", "start_method"]

WORKER_MODULE = "pipeline.worker"
"""The module whose initializer every worker runs first (:mod:`pipeline.worker`)."""

WORKER_LIBRARIES = ("threadpoolctl",)
"""What that initializer imports when it runs, not when its module is imported (the
pool's owner imports the module too): the server imports them, so workers fork with them."""

SERVER_ENVIRONMENT = "pipeline.forkserver_env"
"""Imported first in the server, before NumPy: one BLAS thread there (and so in every
worker until its initializer sets the pool's count), whoever starts the server."""

SERVER_FROZEN = "pipeline.forkserver_frozen"
"""Imported last in the server: everything preloaded is frozen out of its garbage
collections, which after the first fork would copy every page they walk."""

_BLAS_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def start_method() -> str:
    """``forkserver`` where the platform has it, else ``spawn`` (never ``fork``)."""
    methods = multiprocessing.get_all_start_methods()
    return "forkserver" if "forkserver" in methods else "spawn"


def server_preload(preload: Sequence[str]) -> list[str]:
    """``preload`` after the module whose initializer every worker runs first, and what
    that initializer imports; then the module that freezes it all."""
    first = [SERVER_ENVIRONMENT, WORKER_MODULE, *WORKER_LIBRARIES]
    own = [*first, SERVER_FROZEN]
    return [*first, *(n for n in preload if n not in own), SERVER_FROZEN]


def prestart_forkserver(preload: Sequence[str]) -> None:
    """Start the forkserver now, in the background, importing ``preload``.

    A command line that will need a pool soon calls this first: the server's
    imports then overlap the caller's own (and its reading of the data)
    instead of following them. Pools started later fork from the same server.
    A no-op where workers are spawned instead, or when the server runs already.
    """
    if start_method() != "forkserver":
        return
    multiprocessing.get_context("forkserver").set_forkserver_preload(server_preload(preload))
    forkserver.ensure_running()


def leave_arithmetic_to_workers() -> None:
    """One BLAS and OpenMP thread in this process, unless its environment names a
    number; call it before NumPy is imported.

    A command line whose arithmetic all runs on the pool's workers (each pinned
    to its own threads by :func:`pipeline.worker.init_worker`) needs no BLAS
    threads of its own, and OpenBLAS would start one per core at NumPy's import
    and keep them spinning a while, on the cores the forkserver and the workers
    are starting on.
    """
    for name in _BLAS_VARIABLES:
        os.environ.setdefault(name, "1")
