"""Freed large arrays go back to the system in the processes the package owns."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.compute import ComputePool
from tests import workers

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="glibc's malloc: Linux only"
)


def _kept_in_a_fresh_interpreter(*, fixed: bool) -> float:
    setup = "from pipeline.heap import fix_mmap_threshold; assert fix_mmap_threshold(); "
    measure = "from tests import workers; print(workers.kept_after_free())"
    script = (setup if fixed else "") + measure
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    return float(done.stdout)


def test_a_fixed_threshold_returns_a_freed_array_that_the_adjusting_one_keeps() -> None:
    assert _kept_in_a_fresh_interpreter(fixed=False) > 12  # glibc's default keeps it
    assert _kept_in_a_fresh_interpreter(fixed=True) < 4


async def test_pool_workers_return_freed_arrays() -> None:
    async with ComputePool(workers=1) as pool:
        kept = await pool.run(workers.kept_after_free)
    assert kept < 4


def test_the_command_line_fixes_its_own_threshold() -> None:
    script = (
        "import runpy, sys; sys.argv = ['pipeline', '--version']\n"
        "from tests import workers\n"
        "try:\n    runpy.run_module('pipeline', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print(workers.kept_after_free())"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert float(done.stdout.split()[-1]) < 4
