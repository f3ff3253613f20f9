"""Files that are either whole or absent: write to a temporary file, then rename.

Only a regular file (or a path where none is yet) is replaced so. A symlink is
followed, and the file it points to replaced, so the link stays a link. Any
other target (a device such as ``/dev/null`` or ``/dev/full``, a FIFO,
``/dev/stdout``) is written through as it is: renaming a file over it would
destroy it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import stat
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import aiofiles

from .abandonable import run_abandonable

__all__ = [
    "atomic_text_file",
    "atomic_write",
    "atomic_write_text",
    "file_identity",
    "is_special_file",
]


def file_identity(path: str | os.PathLike[str]) -> tuple[int, int] | str | None:
    """What makes two paths one file: device and inode of an existing regular
    file (symlinks, hard links and relative paths alike), the resolved path of
    one not yet written; None for devices and FIFOs, which may be shared."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        return os.path.realpath(path)
    except OSError:
        return None
    if not stat.S_ISREG(status.st_mode):
        return None
    return status.st_dev, status.st_ino


def is_special_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` (symlinks followed) exists and is not a regular file or directory."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _replaced(path: str | os.PathLike[str]) -> Path:
    """The regular file a write to ``path`` replaces: symlinks followed to their end."""
    target = Path(path)
    return Path(os.path.realpath(target)) if target.is_symlink() else target


def _new_file_mode() -> int:
    """The mode ``open`` would give a new file (0666 less the umask): ``mkstemp`` makes 0600."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(stream)`` so a reader of ``path`` sees the old file or the new one, never half.

    The temporary file sits in the same directory (a rename across file
    systems would not be atomic), is fsynced before the rename, and is removed
    if anything goes wrong, including cancellation. A device or FIFO is written
    through instead (see the module's docstring).
    """
    if is_special_file(path):
        with open(path, "wb") as stream:
            write(stream)
            stream.flush()
        return
    target = _replaced(path)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or "."
    )
    try:
        os.chmod(temporary, _new_file_mode())
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically, as :func:`atomic_write` does."""
    data = text.encode("utf-8")

    def write(stream: BinaryIO) -> None:
        stream.write(data)

    atomic_write(path, write)


class _WrittenThrough:
    """A device or FIFO written through, each call in an abandonable thread: a FIFO's
    ``open`` waits for a reader and its writes for a reader that keeps up, and neither
    may keep an interrupted command alive (as threads of aiofiles' executor would)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    @classmethod
    async def open(cls, path: str | os.PathLike[str]) -> _WrittenThrough:
        opening = functools.partial(open, path, "w", encoding="utf-8", newline="")
        return cls(await run_abandonable(opening))

    async def write(self, text: str) -> int:
        return await run_abandonable(self._stream.write, text)

    async def flush(self) -> None:
        await run_abandonable(self._stream.flush)

    async def close(self) -> None:
        await run_abandonable(self._stream.close)


@contextlib.asynccontextmanager
async def atomic_text_file(path: str | os.PathLike[str]) -> AsyncIterator[Any]:
    """An :mod:`aiofiles` text stream whose file appears at ``path`` only once complete.

    For output written piece by piece from an event loop: the pieces go to a
    temporary file beside ``path``, which is fsynced and renamed when the
    block ends, and removed if it ends with an error or a cancellation.
    """
    if is_special_file(path):
        through = await _WrittenThrough.open(path)
        # Closed only after a whole write: after an error or a cancellation a write may
        # still be blocked holding the stream, and closing it would wait for that write.
        # The abandoned stream ends with the process.
        yield through
        await through.flush()
        await through.close()
        return
    target = _replaced(path)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or "."
    )
    os.close(handle)
    try:
        os.chmod(temporary, _new_file_mode())
        async with aiofiles.open(temporary, "w", encoding="utf-8", newline="") as stream:
            yield stream
            await stream.flush()
            await asyncio.to_thread(os.fsync, stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
