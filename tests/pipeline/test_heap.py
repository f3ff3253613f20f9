"""Freed large arrays go back to the system in the processes the package owns."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from pipeline.compute import ComputePool
from tests import workers

pytestmark = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="glibc's malloc and its thresholds"
)


_FIX = "from pipeline.heap import fix_mmap_threshold; assert fix_mmap_threshold()\n"


def _kept_by(script: str) -> float:
    """The MiB that ``script``, run in a fresh interpreter, prints last."""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    return float(done.stdout.split()[-1])


def _kept_in_a_fresh_interpreter(*, fixed: bool) -> float:
    measure = "from tests import workers; print(workers.kept_after_free())"
    return _kept_by((_FIX if fixed else "") + measure)


def test_a_fixed_threshold_returns_a_freed_array_that_the_adjusting_one_keeps() -> None:
    assert _kept_in_a_fresh_interpreter(fixed=False) > 12  # glibc's default keeps it
    assert _kept_in_a_fresh_interpreter(fixed=True) < 4


def test_the_heap_is_trimmed_even_after_large_frees_before_the_fix() -> None:
    # A freed 30 MiB block raised the trim threshold to 60 MiB before the fix; a 10 MiB
    # array, under the mmap threshold, comes from the heap, and its room must go back.
    script = (
        "import numpy as np; freed = np.ones(30 * 2**17); del freed\n"
        + _FIX
        + "from tests import workers; print(workers.kept_after_free(0, 10))"
    )
    assert _kept_by(script) < 4


async def test_pool_workers_return_freed_arrays() -> None:
    async with ComputePool(workers=1) as pool:
        kept = await pool.run(workers.kept_after_free)
    assert kept < 4


async def test_pool_workers_keep_a_freed_units_room_for_the_next() -> None:
    # 10 MiB, under the mmap threshold: from the heap, kept (not faulted in again)
    async with ComputePool(workers=1) as pool:
        kept = await pool.run(workers.kept_after_free, 0, 10)
    assert kept > 8


def test_the_command_line_fixes_its_own_threshold() -> None:
    # --help: the command line sets the threshold before it parses its arguments
    script = (
        "import runpy, sys; sys.argv = ['pipeline', '--help']\n"
        "from tests import workers\n"
        "try:\n    runpy.run_module('pipeline', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print(workers.kept_after_free())"
    )
    assert _kept_by(script) < 4
