"""Run one contender in a fresh subprocess and measure its time, CPU and peak memory.

CPU time comes from ``getrusage(RUSAGE_CHILDREN)``, which counts a process once
it has been waited for. Worker processes are waited for by their parents, but
a pool's helpers (the forkserver, the resource tracker) outlive the contender
and would be reparented to init, taking their CPU time with them; this
process therefore becomes a child subreaper (Linux) and reaps them itself.

Memory is sampled over the contender and all its descendants: every 20 ms
the sum of resident set sizes (shared pages counted once per process) and the
largest single process, every 100 ms the sum of proportional set sizes
(shared pages split between the processes that map them, so the total is
what the tree really occupies). The sampler is a thread of this process
taking some 7% of a core; a figure that is only a time (workers' scaling)
runs without it, as a two-worker run on two cores would pay that in full and a
one-worker run hardly at all.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from benchmarks.contenders import Task

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_SECONDS = 0.020
PSS_EVERY = 5  # samples: PSS every 100 ms
TREE_EVERY = 10  # samples: list the process tree every 200 ms
REAP_SECONDS = 10.0
PR_SET_CHILD_SUBREAPER = 36
MIB = 2**20


@dataclass(frozen=True)
class Memory:
    """Peaks over one run, in MiB."""

    rss_all: float
    pss_all: float
    rss_one: float


NOT_SAMPLED = Memory(math.nan, math.nan, math.nan)
"""The memory of a run measured for its time alone."""


@dataclass(frozen=True)
class Measurement:
    """One contender's run: work seconds, CPU seconds of the whole tree, memory, report."""

    seconds: float
    cpu: float
    memory: Memory
    report: dict[str, Any]

    @property
    def scores(self) -> dict[str, float]:
        return dict(self.report["scores"])


class PeakSampler:
    """Background thread recording peak memory of a process tree.

    Listing a tree scans every process on the machine (milliseconds of CPU),
    and a PSS reading walks the page tables; both run less often than the
    cheap RSS reading, so the sampler itself takes only a few percent of a core.
    """

    def __init__(self, pid: int) -> None:
        self._root = psutil.Process(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._tree: list[psutil.Process] = [self._root]
        self.rss_all = self.pss_all = self.rss_one = 0

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _refresh_tree(self) -> None:
        with contextlib.suppress(psutil.Error):
            self._tree = [self._root, *self._root.children(recursive=True)]

    def _sample_rss(self) -> None:
        total = 0
        for proc in self._tree:
            with contextlib.suppress(psutil.Error):  # exited since the tree was listed
                rss = proc.memory_info().rss
                total += rss
                self.rss_one = max(self.rss_one, rss)
        self.rss_all = max(self.rss_all, total)

    def _sample_pss(self) -> None:
        total = 0
        for proc in self._tree:
            with contextlib.suppress(psutil.Error):
                total += proc.memory_full_info().pss
        self.pss_all = max(self.pss_all, total)

    def _loop(self) -> None:
        tick = 0
        while not self._stop.is_set():
            if tick % TREE_EVERY == 0:
                self._refresh_tree()
            self._sample_rss()
            if tick % PSS_EVERY == 0:
                self._sample_pss()
            tick += 1
            self._stop.wait(SAMPLE_SECONDS)

    def peaks(self) -> Memory:
        return Memory(self.rss_all / MIB, self.pss_all / MIB, self.rss_one / MIB)


def become_subreaper() -> bool:
    """Adopt orphaned descendants (Linux only), so their CPU time can be counted."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def reap_orphans(deadline_seconds: float = REAP_SECONDS) -> None:
    """Wait for adopted descendants to exit, which adds their CPU time to RUSAGE_CHILDREN."""
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.01)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class ProcessRun:
    """One command run to its end: wall seconds from start to exit, CPU of its tree, memory."""

    wall: float
    cpu: float
    memory: Memory
    stderr: str


def run_measured(
    command: Sequence[str], *, cwd: Path = ROOT, sample_memory: bool = True
) -> ProcessRun:
    """Run ``command`` and measure it as a whole, start-up and exit included; raise if it fails.

    Without ``sample_memory`` no sampler thread competes with the command for
    the CPUs, and the memory is :data:`NOT_SAMPLED`.

    Standard error goes to a file rather than a pipe, so the clock stops when
    the process exits, not when the last helper holding the pipe lets go.
    """
    before = _children_cpu()
    with tempfile.TemporaryFile("w+", encoding="utf-8") as errors:
        started = time.perf_counter()
        proc = subprocess.Popen(list(command), cwd=cwd, stdout=subprocess.DEVNULL, stderr=errors)
        with PeakSampler(proc.pid) if sample_memory else contextlib.nullcontext() as sampler:
            proc.wait()
            wall = time.perf_counter() - started
        reap_orphans()
        errors.seek(0)
        stderr = errors.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])[:200]} failed ({proc.returncode}):\n{stderr}")
    memory = sampler.peaks() if sampler is not None else NOT_SAMPLED
    return ProcessRun(wall, _children_cpu() - before, memory, stderr)


def run_isolated(task: Task, *, sample_memory: bool = True) -> Measurement:
    """Run ``task`` in a fresh interpreter; raise if it fails (see :func:`run_measured`)."""
    with tempfile.TemporaryDirectory(prefix="knn_bench_") as scratch:
        out = Path(scratch) / "report.json"
        task = dataclasses.replace(task, out=str(out))
        command = [sys.executable, "-m", "benchmarks.contenders", task.to_json()]
        try:
            run = run_measured(command, sample_memory=sample_memory)
        except RuntimeError as error:
            raise RuntimeError(f"{task.contender} failed: {error}") from None
        report = json.loads(out.read_text(encoding="utf-8"))
    return Measurement(report["seconds"], run.cpu - report["setup_cpu"], run.memory, report)
