"""Imported first in the workers' forkserver: NumPy loaded with one BLAS and OpenMP thread.

The server does no arithmetic, but OpenBLAS starts a thread per core when
NumPy is imported, and those threads take the cores from the server's own
start and from the process that owns the pool. So NumPy is imported here,
under a one-thread environment, and the environment is then put back, so
that what the server's children load later sees the caller's. Its children
keep OpenBLAS at one thread until they set their own count, as every worker
does (:func:`pipeline.worker.init_worker`). Only the forkserver imports this
module, by name, as its first preload.
"""

import os

_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

_saved = {name: os.environ.get(name) for name in _VARIABLES}
os.environ.update(dict.fromkeys(_VARIABLES, "1"))
try:
    import numpy  # noqa: F401  (loads OpenBLAS, which reads its thread count now)
finally:
    for _name, _value in _saved.items():
        if _value is None:
            os.environ.pop(_name, None)
        else:
            os.environ[_name] = _value
