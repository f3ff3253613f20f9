"""Ctrl-C, SIGTERM and SIGHUP end a command the same way at every moment.

Each raises KeyboardInterrupt (the command then cleans up and exits with
status 130), except while shielded: as the event loop shuts down (its tasks
cancelled, async generators and the default executor closed) an interruption
would leave that half done and print warnings, so one that arrives then is
held and raised after. Imports are shielded too: an interrupt raised inside
an extension module's own Python code marks it "unhandled", and the
interpreter then ends by SIGINT whatever the exit status; held, it is raised
once the import is done. ``python -m pipeline`` installs this before
importing anything else, so even its own imports end cleanly. It imports
only the standard library, for that reason.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Any

__all__ = ["TERMINATING", "Interrupts", "interrupts"]

TERMINATING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

Handlers = dict[signal.Signals, Any]
"""Each terminating signal's handler (a callable, ``SIG_DFL``, ``SIG_IGN`` or None)."""


class Interrupts:
    """The signal handler: KeyboardInterrupt, or held while :meth:`shield` is on."""

    def __init__(self) -> None:
        self.depth = 0  # shields open now (they nest)
        self.pending = False

    @property
    def shielded(self) -> bool:
        return self.depth > 0

    def __call__(self, signum: int, frame: object) -> None:
        if self.shielded:
            self.pending = True
            return
        raise KeyboardInterrupt

    def install(self) -> Handlers:
        """Handle the terminating signals left at their defaults; return what was there."""
        previous = {signum: signal.getsignal(signum) for signum in TERMINATING}
        for signum, handler in previous.items():
            if handler in (signal.SIG_DFL, signal.default_int_handler, None):
                signal.signal(signum, self)
        return previous

    @staticmethod
    def restore(previous: Handlers) -> None:
        for signum, handler in previous.items():
            if handler is not None:
                signal.signal(signum, handler)

    @contextlib.contextmanager
    def shield(self) -> Iterator[None]:
        """Hold interrupts for the block; one that came is raised as the outermost ends,
        even if the block itself raised (the user asked to stop)."""
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
            if self.depth == 0 and self.pending:
                self.pending = False
                raise KeyboardInterrupt


interrupts = Interrupts()
