"""Log records from worker processes, forwarded into the parent's logging.

Each worker sends its records through a multiprocessing queue
(:class:`logging.handlers.QueueHandler`); a thread in the parent hands each
one to the logger of the same name, so a worker's records reach the same
handlers as the parent's, the event stream's included. ``record.process``
keeps the worker's pid.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import threading
from multiprocessing.context import BaseContext
from typing import Any

__all__ = ["WorkerLogForwarder", "install_worker_logging"]

_STOP = "stop"
_JOIN_SECONDS = 1.0


def install_worker_logging(queue: Any, level: int) -> None:
    """In a worker: send every record at ``level`` or above to the parent."""
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(queue)]
    root.setLevel(level)


class WorkerLogForwarder:
    """The parent's end: a queue for the workers and a thread that drains it."""

    def __init__(self, context: BaseContext) -> None:
        self.queue: Any = context.Queue()
        self._thread = threading.Thread(target=self._drain, name="worker-logs", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _drain(self) -> None:
        while True:
            try:
                record = self.queue.get()
            except (EOFError, OSError):  # the queue was closed under us
                return
            if record == _STOP:
                return
            if isinstance(record, logging.LogRecord):
                logging.getLogger(record.name).handle(record)

    def stop(self) -> None:
        """Drain what the workers sent, then stop the thread and close the queue."""
        with contextlib.suppress(OSError, ValueError):
            self.queue.put(_STOP)
        self._thread.join(_JOIN_SECONDS)
        with contextlib.suppress(OSError, ValueError):
            self.queue.close()
            self.queue.join_thread()
