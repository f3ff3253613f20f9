"""Too little memory is one clear line and exit status 1, with nothing left behind.

What fails first under a memory limit depends on the machine (``ulimit -v 400M``
stops the pool's first thread here, and lets a run through elsewhere), so the
failures are raised where they happen, and the command's answer is checked.
"""

from __future__ import annotations

import importlib.abc
import sys
import threading

import pytest

from pipeline.compute import ComputePool
from stages.cli import main


def test_a_thread_that_cannot_start_is_one_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    assert main(["run", "--quiet", "--k", "1-3"]) == 1
    monkeypatch.undo()
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: out of memory (can't start new thread); lower --workers")


def test_memory_running_out_as_the_pool_starts_is_one_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def exhausted(self: ComputePool) -> None:
        raise MemoryError

    monkeypatch.setattr(ComputePool, "open", exhausted)
    assert main(["run", "--quiet", "--k", "1-3"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        "error: out of memory (MemoryError); lower --workers, the number of --k values or "
        "the data's size, or raise the memory limit (ulimit -v)"
    ]


class _Unmappable(importlib.abc.MetaPathFinder):
    """What the loader says when a limit leaves no room to map a compiled library."""

    def find_spec(self, name: str, *args: object) -> None:
        if name == "stages.tuning":
            raise ImportError(
                "libscipy_openblas-6cdc3b4a.so: failed to map segment from shared object"
            )


def test_a_library_that_cannot_be_mapped_is_one_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delitem(sys.modules, "stages.tuning", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_Unmappable(), *sys.meta_path])
    assert main(["run", "--quiet", "--k", "1-3"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: out of memory (libscipy_openblas-6cdc3b4a.so: failed")
