"""Plain-text output: the run's header and fixed-width tables.

Plain text rather than a rich table, so the output can be pasted into a
report or an issue as it is, and read by the smoke test.
"""

from __future__ import annotations

import datetime
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

Row = Sequence[str]
TIMES = "\u00d7"


def table(headers: Row, rows: Sequence[Row], *, left: int = 1) -> str:
    """Columns padded to their widest cell; the first ``left`` columns left-aligned."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Row) -> str:
        parts = [
            str(c).ljust(w) if i < left else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def load_average() -> str:
    """The 1-minute load average: how busy the machine was, this run included."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "n/a"


def _cpus() -> str:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return f"{os.cpu_count()} CPUs" + (f" ({usable} usable)" if usable is not None else "")


def _versions() -> str:
    import numpy
    import scipy
    import sklearn

    from stages.kernels import VECTOR_ISA

    return (
        f"Python {platform.python_version()}, numpy {numpy.__version__}, "
        f"scipy {scipy.__version__}, scikit-learn {sklearn.__version__}, "
        f"our kernel compiled for {VECTOR_ISA}"
    )


def revision(root: Path) -> str:
    """The commit measured, and whether the project's code differs from it (read-only git)."""
    git = ["git", "-C", str(root), "--no-optional-locks"]
    try:
        commit = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            [*git, "status", "--porcelain", "--", "stages", "pipeline"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    paths = [line[3:] for line in changed.splitlines() if line.strip()]  # "XY path"
    if not paths:
        return commit
    shown = ", ".join(paths[:8]) + (f" and {len(paths) - 8} more" if len(paths) > 8 else "")
    return f"{commit} with uncommitted changes in stages/ or pipeline/ ({shown})"


def header(title: str, root: Path) -> str:
    """Date, machine, versions and the exact command, so a result can be reproduced."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    command = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
    return "\n".join(
        [
            title,
            f"date:     {now}",
            f"machine:  {_cpus()}, {platform.system()} {platform.release()}, "
            f"{platform.processor() or platform.machine()}",
            f"software: {_versions()}",
            f"load:     1-minute load average {load_average()} at start "
            "(other processes may share the CPUs: compare ratios within this run)",
            f"code:     {revision(root)}",
            f"command:  {command}",
        ]
    )


def seconds(value: float) -> str:
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def fine_seconds(value: float) -> str:
    """Milliseconds matter in the kernel table."""
    return f"{value:.3f}"


def mib(value: float) -> str:
    return f"{value:.0f}"


def ratio(value: float) -> str:
    return f"{value:.1f}{TIMES}" if value < 100 else f"{value:.0f}{TIMES}"


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"
