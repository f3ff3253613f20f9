"""A script that tunes at import time, without the main guard, is stopped at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = """
import asyncio
from stages import tune


async def main():
    result = await tune("iris", k="1-5", workers=2)
    print("best", result.best.candidate)


{call}
"""


def run_script(tmp_path: Path, call: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.py"
    script.write_text(SCRIPT.format(call=call))
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_an_unguarded_script_is_told_to_add_the_guard(tmp_path: Path) -> None:
    done = run_script(tmp_path, "asyncio.run(main())")
    assert done.returncode == 1
    assert 'put its top-level code under `if __name__ == "__main__":`' in done.stderr
    assert "died" not in done.stderr  # no worker was started, so none died


def test_a_guarded_script_runs(tmp_path: Path) -> None:
    done = run_script(tmp_path, 'if __name__ == "__main__":\n    asyncio.run(main())')
    assert done.returncode == 0, done.stderr
    assert "best" in done.stdout


def test_a_script_read_from_standard_input_is_told_to_become_a_file(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-"],
        input=SCRIPT.format(call='if __name__ == "__main__":\n    asyncio.run(main())'),
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "<stdin> is not a file" in done.stderr
    assert "save it to a file" in done.stderr
    assert "died" not in done.stderr and "FileNotFoundError" not in done.stderr
