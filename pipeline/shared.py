"""Arrays placed once in shared memory and referenced by small handles.

A task never carries the data set: it carries an :class:`ArrayRef`. For a
local process pool that is a :class:`SharedArrayHandle` (segment name, shape,
dtype) which each worker attaches once and caches; for executors whose workers
cannot see this machine's shared memory (threads need no copy, a distributed
cluster cannot attach) it is an :class:`InlineArray` carrying the array itself. On a
Dask cluster, :meth:`SharedArrays.publish` then places the whole bundle of a
run's inputs on every worker once, and tasks carry the bundle's future.

:class:`SharedArrays` owns the segments and unlinks every one on exit,
including on error and cancellation. It is written here rather than using
:class:`multiprocessing.managers.SharedMemoryManager` because that starts a
server process of its own, one more process to clean up after Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass
from multiprocessing import shared_memory
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from .cluster import DaskCluster

__all__ = [
    "ArrayRef",
    "InlineArray",
    "SharedArrayHandle",
    "SharedArrays",
    "guard_semaphores",
    "janitor_pid",
    "segment_prefix",
]

segment_prefix = "knnp_"
"""Segment names are ``knnp_<owner pid>_<random>``, so a leak can be traced to its owner."""

_ATTACHED_LIMIT = 8
"""Segments a worker keeps attached (two runs' arrays); older ones are released, so a
long-lived pool that serves many runs does not keep their data mapped."""

_attached: OrderedDict[str, tuple[shared_memory.SharedMemory, npt.NDArray[Any]]] = OrderedDict()

_JANITOR = """
import sys, _multiprocessing, _posixshmem
names = set()
for line in sys.stdin:
    name = line.strip()
    if name.startswith("-"):
        names.discard(name[1:])
    elif name:
        names.add(name)
for name in names:
    try:
        if name.startswith("sem:"):
            _multiprocessing.sem_unlink(name[4:])
        else:
            _posixshmem.shm_unlink("/" + name)
    except OSError:
        pass
"""
"""Run in a process of its own session: reads the names of segments created (``-name``:
unlinked by their owner) and of semaphores (``sem:name``) until its input ends, when the
owner has exited or died, and unlinks what is left (already gone: nothing to do)."""


class _Janitor:
    """Unlinks this process's segments even if every process of its group is killed.

    multiprocessing's resource tracker does the same after a crash, but it runs
    in the owner's process group: ``kill -9`` of the group (what ``docker kill``,
    systemd and ``timeout -s KILL`` do) takes it along, and the segments stay in
    /dev/shm until reboot. This survivor runs in a session of its own and learns
    each name as it is created; when its pipe from the owner closes, for
    whatever reason, it unlinks those the owner did not.
    """

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._pid = 0
        self._lock = threading.Lock()  # one janitor, whichever thread shares first
        self._names: set[str] = set()  # told to it: a new janitor is told again

    def _pipe(self) -> Any:
        if self._pid != os.getpid():
            self._process, self._names = None, set()  # a forked child: its own janitor
        if self._process is None or self._process.poll() is not None:
            self._process = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _JANITOR],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # out of reach of signals sent to our group
            )
            self._pid = os.getpid()
            assert self._process.stdin is not None
            self._process.stdin.write(b"".join(n.encode() + b"\n" for n in self._names))
        return self._process.stdin

    def _tell(self, line: str) -> None:
        with (
            self._lock,
            contextlib.suppress(OSError, ValueError),
        ):  # gone: the tracker still cleans up
            pipe = self._pipe()
            pipe.write(line.encode() + b"\n")
            pipe.flush()

    def created(self, name: str) -> None:
        """Called before the segment exists, so no segment is ever unknown to it."""
        self._names.add(name)
        self._tell(name)

    def semaphore(self, name: str) -> None:
        """A named semaphore of this process's pool; unlinked at exit by multiprocessing,
        and by the janitor if the whole group dies."""
        self.created(f"sem:{name}")

    def unlinked(self, name: str) -> None:
        self._names.discard(name)
        self._tell(f"-{name}")

    @property
    def pid(self) -> int | None:
        """The running janitor's process id (a helper, like the resource tracker)."""
        running = self._process is not None and self._process.poll() is None
        return self._process.pid if running and self._process is not None else None


_janitor = _Janitor()


def guard_semaphores(*queues: object) -> None:
    """Have the janitor unlink the named semaphores of these multiprocessing queues
    should every process of the group be killed, the resource tracker with them.

    The names are read from the queues' locks (``_rlock``, ``_wlock``, ``_sem``, as
    CPython's ``Queue`` and ``SimpleQueue`` hold them): multiprocessing offers no other
    way to learn them.
    """
    for queue in queues:
        for attribute in ("_rlock", "_wlock", "_sem"):
            semlock = getattr(getattr(queue, attribute, None), "_semlock", None)
            name = getattr(semlock, "name", None)
            if isinstance(name, str) and name:
                _janitor.semaphore(name)


def janitor_pid() -> int | None:
    """The process that unlinks this process's segments should it die (None: not started)."""
    return _janitor.pid


class ArrayRef(Protocol):
    """Something a worker can turn into a read-only array."""

    def attach(self) -> npt.NDArray[Any]: ...


@dataclass(frozen=True)
class InlineArray:
    """An array carried by value (thread pools, remote executors)."""

    array: npt.NDArray[Any]

    def attach(self) -> npt.NDArray[Any]:
        return self.array


@dataclass(frozen=True)
class SharedArrayHandle:
    """Name, shape and dtype of an array in a shared-memory segment."""

    name: str
    shape: tuple[int, ...]
    dtype: str

    def attach(self) -> npt.NDArray[Any]:
        """Map the segment read-only, once per process, and return the array view."""
        hit = _attached.get(self.name)
        if hit is not None:
            _attached.move_to_end(self.name)
            return hit[1]
        segment = shared_memory.SharedMemory(name=self.name, create=False)
        view: npt.NDArray[Any] = np.ndarray(
            self.shape, dtype=np.dtype(self.dtype), buffer=segment.buf
        )
        view.flags.writeable = False
        _attached[self.name] = (segment, view)
        while len(_attached) > _ATTACHED_LIMIT:
            _, (old_segment, old_view) = _attached.popitem(last=False)
            del old_view
            _release(old_segment)
        return view


def _release(segment: shared_memory.SharedMemory) -> None:
    with contextlib.suppress(BufferError):  # a view still alive keeps the mapping
        segment.close()


class SharedArrays:
    """Owner of the segments of one run: ``share`` arrays in, ``close`` unlinks all.

    With ``use_shared_memory=False`` arrays are passed inline instead.
    """

    def __init__(
        self, *, use_shared_memory: bool = True, cluster: DaskCluster | None = None
    ) -> None:
        self.use_shared_memory = use_shared_memory
        self._segments: list[shared_memory.SharedMemory] = []
        self._cluster = cluster
        self._published: list[Any] = []

    async def publish(self, value: Any) -> Any:
        """``value`` as tasks should take it: itself, or on a Dask cluster a handle
        of it placed on every worker once (the pool hands tasks its future, and
        Dask the tasks the value)."""
        if self._cluster is None:
            return value
        published = await self._cluster.broadcast(value)
        self._published.append(published)
        return published

    def share(self, array: npt.ArrayLike) -> ArrayRef:
        """Copy ``array`` into a new segment (once) and return its handle."""
        data = np.ascontiguousarray(array)
        if not self.use_shared_memory:
            data.flags.writeable = False
            return InlineArray(data)
        name = f"{segment_prefix}{os.getpid()}_{secrets.token_hex(6)}"
        _janitor.created(name)
        segment = shared_memory.SharedMemory(name=name, create=True, size=max(data.nbytes, 1))
        self._segments.append(segment)
        target: npt.NDArray[Any] = np.ndarray(data.shape, dtype=data.dtype, buffer=segment.buf)
        target[...] = data
        del target
        return SharedArrayHandle(name=name, shape=tuple(data.shape), dtype=data.dtype.str)

    @property
    def segment_names(self) -> list[str]:
        return [s.name for s in self._segments]

    def close(self) -> None:
        """Unlink every segment and release what was published; safe to call more than once."""
        while self._published:
            self._published.pop().release()
        while self._segments:
            segment = self._segments.pop()
            _attached.pop(segment.name, None)
            _release(segment)
            with contextlib.suppress(FileNotFoundError):
                segment.unlink()
            _janitor.unlinked(segment.name)

    def __enter__(self) -> SharedArrays:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
