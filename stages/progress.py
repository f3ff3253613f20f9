"""The progress display: a live bar on a terminal, plain lines otherwise.

It only reads events (``run_started``, ``unit_done``, ``new_best``,
``run_finished``, ``run_failed``), so it never slows the compute, and works
for any job that reports its units of work.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TextIO

from pipeline.events import RunFinished, RunStarted, Subscription, UnitDone

from .events import NewBest
from .terminal import plainly_not_a_terminal

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["show_progress"]

PLAIN_INTERVAL_SECONDS = 2.0


def _describe_best(params: Mapping[str, Any], score: float) -> str:
    shown = " ".join(f"{key}={value}" for key, value in params.items())
    return f"best {shown} ({score:.4f})"


async def show_progress(events: Subscription, stream: TextIO, *, live: bool | None = None) -> None:
    """Show the run's progress on ``stream`` until its last event.

    ``live`` picks the rich bar (default: when ``stream`` is a terminal).
    """
    if live is False or (live is None and plainly_not_a_terminal(stream)):
        await _plain(events, stream)
        return
    from rich.console import Console

    console = Console(file=stream, stderr=True)
    if live or console.is_terminal:
        await _live(events, console)
    else:
        await _plain(events, stream)


async def _live(events: Subscription, console: Console) -> None:
    from rich.progress import (  # only on a terminal: a plain run need not import it
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[best]}"),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("units", total=None, rate="", best="")
        started = time.monotonic()
        async for event in events:
            if isinstance(event, RunStarted):
                bar.update(task, total=event.units_total)
            elif isinstance(event, UnitDone):
                rate = event.done / max(time.monotonic() - started, 1e-9)
                bar.update(task, completed=event.done, total=event.total, rate=f"{rate:.1f}/s")
            elif isinstance(event, NewBest):
                bar.update(task, best=_describe_best(event.params, event.mean_score))
            elif isinstance(event, RunFinished) and event.best and event.best_score is not None:
                bar.update(task, best=_describe_best(event.best, event.best_score))


async def _plain(events: Subscription, stream: TextIO) -> None:
    """A line every couple of seconds, and the last one when the run has finished: the
    last units' scores can still change the leader, so only ``run_finished`` names the
    one the final table shows."""
    started = time.monotonic()
    last_line = started
    best = ""
    done = total = 0
    async for event in events:
        if isinstance(event, NewBest):
            best = _describe_best(event.params, event.mean_score)
        elif isinstance(event, RunFinished):
            if event.best is not None and event.best_score is not None:
                best = _describe_best(event.best, event.best_score)
            if total:
                _write_line(stream, done, total, time.monotonic() - started, best)
        elif isinstance(event, UnitDone):
            done, total = event.done, event.total
            now = time.monotonic()
            if now - last_line >= PLAIN_INTERVAL_SECONDS and done != total:
                last_line = now
                _write_line(stream, done, total, now - started, best)


def _write_line(stream: TextIO, done: int, total: int, elapsed: float, best: str) -> None:
    rate = done / max(elapsed, 1e-9)
    eta = (total - done) / rate if rate > 0 else 0.0
    stream.write(
        f"progress: {done}/{total} units ({100 * done / total:.0f}%), "
        f"{rate:.1f} units/s, ETA {eta:.0f} s; {best}\n"
    )
    stream.flush()
