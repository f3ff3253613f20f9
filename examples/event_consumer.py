"""Follow a tuning's events from inside an application.

Two subscribers watch the same run: one reports every new best as it
happens, the other tallies event kinds. Neither can slow the run down: a
subscriber that falls behind loses progress events, never results.
Run: python examples/event_consumer.py
"""

from __future__ import annotations

import asyncio
from collections import Counter

from pipeline.events import RunFinished, Subscription
from stages import Tuning
from stages.events import NewBest


async def announce_bests(events: Subscription) -> None:
    async with events:
        async for event in events:
            if isinstance(event, NewBest):
                print(
                    f"new best after {event.folds_done} fold(s): {event.params} "
                    f"{event.mean_score:.4f}"
                )
            elif isinstance(event, RunFinished):
                print(f"finished in {event.seconds:.2f} s: {event.best}")


async def tally(events: Subscription) -> Counter[str]:
    async with events:
        return Counter([event.kind async for event in events])


async def main() -> None:
    tuning = Tuning("breast_cancer", k="1-31:2", weights="uniform,distance", workers=2)
    watchers = asyncio.gather(announce_bests(tuning.subscribe()), tally(tuning.subscribe()))
    result = await tuning.run()
    _, counts = await watchers
    print("events:", dict(sorted(counts.items())))
    print("top accuracy:", f"{result.candidates[0].mean_accuracy:.4f}")


if __name__ == "__main__":
    asyncio.run(main())
