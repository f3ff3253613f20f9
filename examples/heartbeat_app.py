"""An application that keeps serving while a tuning runs in the same event loop.

The heartbeat ticks every 10 ms; the tuning's CPU work happens in the process
pool, so the ticks keep coming. Run: python examples/heartbeat_app.py [DATA]
"""

from __future__ import annotations

import asyncio
import sys
import time

from stages import tune


async def heartbeat(interval: float, lags: list[float], stop: asyncio.Event) -> None:
    """Tick every ``interval`` seconds and record how late each tick was."""
    expected = time.perf_counter() + interval
    while not stop.is_set():
        await asyncio.sleep(max(0.0, expected - time.perf_counter()))
        lags.append(max(0.0, time.perf_counter() - expected))
        expected += interval


async def main(data: str) -> None:
    lags: list[float] = []
    stop = asyncio.Event()
    beating = asyncio.create_task(heartbeat(0.010, lags, stop))
    result = await tune(data, k="1-15:2", metrics="euclidean,manhattan", workers=2)
    stop.set()
    await beating
    best = result.best
    assert best is not None
    print(f"best: {best.candidate.params()} accuracy {best.mean_accuracy:.4f}")
    print(f"heartbeat: {len(lags)} ticks during the run, max lag {1000 * max(lags):.1f} ms")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "iris"))
