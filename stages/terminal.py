"""Whether a stream is a terminal, told without importing rich when it plainly is not.

rich takes about 25 ms to import and 10 ms to draw a table, a tenth of a small
run; output to a file or a pipe needs neither. The answer follows rich's own
``Console.is_terminal``: ``TTY_COMPATIBLE=1`` or a non-empty ``FORCE_COLOR``
make any stream a terminal, so only then, or on a real terminal, does the caller
ask rich; ``TTY_COMPATIBLE=0`` makes every stream plain, as for rich.
"""

from __future__ import annotations

import os
from typing import TextIO

__all__ = ["plainly_not_a_terminal"]


def plainly_not_a_terminal(stream: TextIO) -> bool:
    """True when rich would call ``stream`` no terminal: ``TTY_COMPATIBLE=0``, or not a TTY
    and not forced to be one."""
    if os.environ.get("TTY_COMPATIBLE") == "0":
        return True
    if os.environ.get("TTY_COMPATIBLE") == "1" or os.environ.get("FORCE_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return isatty is None or not isatty()
    except ValueError:  # closed
        return True
