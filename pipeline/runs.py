"""What every observed run does around its pipeline: log records in, a terminal event out.

A job (tuning, prediction) wraps its work in :func:`observed_run`: while it
runs, records of the named loggers (from this process and, forwarded, from
pool workers) become ``log`` events; if it fails or is cancelled, exactly one
``run_failed`` is emitted, naming the stage, and the bus is closed. On
success the job emits its own ``run_finished`` and closes the bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

from .events import EventBus, EventLogHandler, RunFailed
from .runner import StageFailed

__all__ = ["LOGGERS", "observed_run"]

LOGGERS = ("pipeline",)
"""Loggers whose records (from this process and from pool workers) become ``log`` events
unless a job names its own too (the framework's: a job adds its package's logger)."""


@contextlib.asynccontextmanager
async def observed_run(
    events: EventBus, log_level: int = logging.INFO, loggers: Sequence[str] = LOGGERS
) -> AsyncIterator[None]:
    """Forward log records to ``events`` for the block; report a failure as ``run_failed``."""
    handler = EventLogHandler(events, asyncio.get_running_loop(), log_level)
    for name in loggers:
        logging.getLogger(name).addHandler(handler)
    try:
        yield
    except BaseException as error:
        interrupted = isinstance(error, asyncio.CancelledError | KeyboardInterrupt)
        cause = error.error if isinstance(error, StageFailed) else error
        events.emit(
            RunFailed(
                run_id=events.run_id,
                error=f"{type(cause).__name__}: {cause}" if not interrupted else "interrupted",
                stage=error.stage if isinstance(error, StageFailed) else None,
                interrupted=interrupted,
            )
        )
        events.close()
        raise
    finally:
        for name in loggers:
            logging.getLogger(name).removeHandler(handler)
    await asyncio.sleep(0)  # let log records forwarded at shutdown reach the bus first
