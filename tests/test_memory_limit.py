"""Too little memory is one clear line and exit status 1, with nothing left behind."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 400 * 2**20  # address space: enough to import, not to start the pool's threads


def limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))


def test_a_memory_limit_too_low_is_one_line_and_exit_1() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limited,
    )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: out of memory"), done.stderr
    assert "Traceback" not in done.stderr
