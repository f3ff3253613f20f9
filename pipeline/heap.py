"""Large blocks straight from the system and back: fixed mmap and trim thresholds for glibc.

glibc's malloc maps a request of 128 KiB or more on its own when the heap has
no free room for it, and unmaps it when freed; but each such free of a block
up to 32 MiB raises that threshold to the block's size and the trim threshold
(how much free room at the heap's top is kept rather than returned) to twice
that. After a run has freed its first large arrays (a file's bytes, a fold's
copies), arrays of up to that size come from the heap, and up to twice that
of freed room stays in the process: on 100,000 rows the parent and each
worker kept 20-35 MiB more at their peak than they held. Setting both
thresholds turns that adjustment off: blocks of 16 MiB or more are mapped and
unmapped, and the heap's free top goes back past glibc's default 128 KiB, as
it would have before any adjustment. Arrays under 16 MiB (a unit's per-query
lists and distance blocks) still come from the heap.

A pool worker keeps more free room at its top, :data:`WORKER_TRIM_THRESHOLD`:
its units allocate and free arrays of the same sizes one after another. With
128 KiB, each unit's arrays went back to the system when freed and the next
unit's came as fresh pages, zeroed by the kernel a page fault at a time: on
bench S 15,000 of a run's 39,000 page faults, on bench M 100,000 of 160,000.

Only processes this package owns call it: the command line's and the pool's
workers. An application that embeds a run keeps its own allocator settings.
"""

from __future__ import annotations

import contextlib
import sys

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "WORKER_TRIM_THRESHOLD", "fix_mmap_threshold"]

MMAP_THRESHOLD = 16 * 2**20
"""Blocks of this size or more are mapped and unmapped on their own (glibc allows
up to 32 MiB)."""

TRIM_THRESHOLD = 128 * 2**10
"""Free room at the heap's top beyond this goes back to the system (glibc's default)."""

WORKER_TRIM_THRESHOLD = MMAP_THRESHOLD
"""A worker's free room kept for its next unit: no more than one block under the mmap
threshold, the largest its heap serves."""

# mallopt's parameter numbers, from glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD, trim: int = TRIM_THRESHOLD) -> bool:
    """Fix glibc's mmap and trim thresholds (bytes); False where there is no glibc.

    Freed blocks before the call may have moved both, so both are set.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes  # here: NumPy imports it anyway, but this may run before NumPy

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None)
        if libc.gnu_get_libc_version:  # glibc's own symbol: musl's mallopt does nothing
            mapped = libc.mallopt(_M_MMAP_THRESHOLD, threshold)
            trimmed = libc.mallopt(_M_TRIM_THRESHOLD, trim)
            return bool(mapped and trimmed)
    return False
