"""The plain progress lines (stderr not a terminal): their last line names the run's leader."""

from __future__ import annotations

import asyncio
import io

from pipeline.events import EventBus, RunFinished, RunStarted, UnitDone
from stages.events import NewBest
from stages.progress import show_progress


async def test_the_last_plain_line_names_the_leader_the_final_table_shows() -> None:
    """The last unit is done before its scores are ranked: a leader announced then, or one
    the final exact ranking settles, must be the one the last line names."""
    bus = EventBus("r")
    screen = io.StringIO()
    shown = asyncio.create_task(show_progress(bus.subscribe(), screen, live=False))
    await asyncio.sleep(0)
    bus.emit(RunStarted(run_id="r", job="tune", params={}, units_total=2, workers=1))
    bus.emit(NewBest(run_id="r", params={"k": 1}, mean_score=0.5, folds_done=1))
    for done in (1, 2):
        bus.emit(UnitDone(run_id="r", unit=f"u{done}", seconds=0.1, done=done, total=2))
    bus.emit(NewBest(run_id="r", params={"k": 3}, mean_score=0.8, folds_done=2))
    bus.emit(RunFinished(run_id="r", seconds=1.0, best={"k": 5}, best_score=0.9, candidates=3))
    bus.close()
    await shown
    lines = screen.getvalue().splitlines()
    assert lines[-1].startswith("progress: 2/2 units (100%)")
    assert lines[-1].endswith("best k=5 (0.9000)")
    assert sum("(100%)" in line for line in lines) == 1
