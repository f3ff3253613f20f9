"""How long Ctrl-C (or SIGTERM) takes to stop a running tuning: signal to process exit.

Run: python benchmarks/stop_latency.py [--rows 20000] [--after 6]
Prints, per signal, the seconds from the signal to the exit, the exit status,
and whether any of the run's processes outlived it.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]


def stop_once(data: Path, signum: signal.Signals, after: float) -> tuple[float, int, int]:
    """Seconds to stop, exit status, processes left alive afterwards."""
    command = [
        sys.executable,
        "-m",
        "pipeline",
        "run",
        str(data),
        "--k",
        "1-50",
        "--weights",
        "uniform,distance",
        "--quiet",
    ]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(after)
    tree = {p.pid for p in psutil.Process(proc.pid).children(recursive=True)}
    started = time.perf_counter()
    proc.send_signal(signum)
    proc.wait()
    seconds = time.perf_counter() - started
    time.sleep(1.0)
    left = sum(
        1
        for pid in tree
        if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    )
    return seconds, proc.returncode, left


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--after", type=float, default=6.0, help="seconds of running first")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "data.npz"
        np.savez(data, X=rng.random((args.rows, 32)), y=rng.integers(0, 3, args.rows))
        for signum in (signal.SIGINT, signal.SIGTERM):
            seconds, status, left = stop_once(data, signum, args.after)
            print(
                f"{signum.name}: stopped in {seconds:.2f} s, exit {status}, {left} processes left"
            )


if __name__ == "__main__":
    main()
