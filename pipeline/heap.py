"""Large blocks straight from the system and back: a fixed mmap threshold for glibc's malloc.

glibc serves a block of 128 KiB or more with its own ``mmap`` and unmaps it
when freed, but every such free raises that threshold to the block's size
(up to 32 MiB). After a run has freed its first large arrays (a file's bytes,
a fold's copies), arrays of up to that size come from the heap, and what is
freed there stays in the process: on 100,000 rows the parent and each worker
kept 20-35 MiB more at their peak than they held. Fixing the threshold turns
that adjustment off. Arrays under it (a unit's per-query lists and distance
blocks) still come from the heap, whose free top glibc returns to the system
past its default trim threshold (128 KiB), as it did before any adjustment.

Only processes this package owns call it: the command line's and the pool's
workers. An application that embeds a run keeps its own allocator settings.
"""

from __future__ import annotations

import contextlib
import sys

__all__ = ["MMAP_THRESHOLD", "fix_mmap_threshold"]

MMAP_THRESHOLD = 16 * 2**20
"""Blocks of this size or more are mapped and unmapped on their own."""

_M_MMAP_THRESHOLD = -3  # mallopt's parameter number, from glibc's malloc.h


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Set glibc's mmap threshold to ``threshold`` bytes; False where there is no glibc."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes  # here: NumPy imports it anyway, but this may run before NumPy

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None)
        if libc.gnu_get_libc_version:  # glibc's own symbol: musl's mallopt does nothing
            return bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold))
    return False
