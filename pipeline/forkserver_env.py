"""Imported first in the workers' forkserver, before NumPy: one BLAS and OpenMP thread.

The server does no arithmetic, but OpenBLAS starts a thread per core when
NumPy is imported, and those threads spin for a while, taking the cores from
the server's own start and from the process that owns the pool. Workers set
their own thread count as they start (:func:`pipeline.worker.init_worker`).
Only the forkserver imports this module, by name, as its first preload.
"""

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"
