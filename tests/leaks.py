"""Helpers that find what a run left behind: worker processes and shared-memory segments."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil

from pipeline.shared import janitor_pid, segment_prefix

SHM_DIR = Path("/dev/shm")


def segments(owner: int | None = None) -> set[str]:
    """This package's shared-memory segments owned by ``owner`` (default: this process)."""
    if not SHM_DIR.is_dir():
        return set()
    prefix = f"{segment_prefix}{owner or os.getpid()}_"
    return {p.name for p in SHM_DIR.iterdir() if p.name.startswith(prefix)}


def _helper_pids() -> set[int]:
    """Long-lived helpers (the forkserver, the resource tracker, the segment janitor):
    not leaks."""
    from multiprocessing import forkserver, resource_tracker

    pids = set()
    server = getattr(forkserver, "_forkserver", None)
    if server is not None and getattr(server, "_forkserver_pid", None):
        pids.add(server._forkserver_pid)
    tracker = getattr(resource_tracker, "_resource_tracker", None)
    if tracker is not None and getattr(tracker, "_pid", None):
        pids.add(tracker._pid)
    janitor = janitor_pid()
    if janitor is not None:
        pids.add(janitor)
    return pids


def worker_processes() -> list[psutil.Process]:
    """Descendants of this process other than multiprocessing's helpers, still alive."""
    helpers = _helper_pids()
    alive = []
    for child in psutil.Process(os.getpid()).children(recursive=True):
        try:
            if child.pid in helpers or child.status() == psutil.STATUS_ZOMBIE:
                continue
            alive.append(child)
        except psutil.NoSuchProcess:
            continue
    return alive


def wait_for_exit(pids: set[int], deadline_seconds: float = 10.0) -> set[int]:
    """Those of ``pids`` still running (not zombies) after up to ``deadline_seconds``."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        alive = set()
        for pid in pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.add(pid)
            except psutil.NoSuchProcess:
                continue
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def wait_until_gone(deadline_seconds: float = 10.0) -> list[psutil.Process]:
    """Worker processes still alive after giving terminated ones time to exit."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        left = worker_processes()
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid``."""
    try:
        return {p.pid for p in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def wait_for_segments_gone(owner: int, deadline_seconds: float = 10.0) -> set[str]:
    """``owner``'s segments still present after up to ``deadline_seconds``.

    A killed owner cannot unlink its segments; multiprocessing's resource
    tracker does it once the last process using them has exited.
    """
    deadline = time.monotonic() + deadline_seconds
    while segments(owner) and time.monotonic() < deadline:
        time.sleep(0.05)
    return segments(owner)
