"""Bytes that reach a Dask cluster's workers, counted in Dask's TCP layer.

Dask keeps no total of the bytes its comms move, so each worker counts what
its TCP comms read (every message body: task specifications, scattered data,
data fetched from other workers) by wrapping the one function that reads
them, ``distributed.comm.tcp.read_bytes_rw``. Installed on first use; the
counts only grow, so callers take differences.
"""

from __future__ import annotations

from typing import Any

__all__ = ["received_bytes"]

_received = [0]


def _count_reads() -> int:
    """Run on a worker: install the counter once, return the bytes read so far."""
    from distributed.comm import tcp

    read = tcp.read_bytes_rw
    if not getattr(read, "counting", False):

        async def counted(stream: Any, n: int) -> Any:
            _received[0] += n
            return await read(stream, n)

        counted.counting = True  # type: ignore[attr-defined]
        tcp.read_bytes_rw = counted
    return _received[0]


def received_bytes(client: Any) -> dict[str, int]:
    """Bytes each worker of ``client``'s cluster has read from its TCP comms."""
    counts: dict[str, int] = client.run(_count_reads)
    return counts
