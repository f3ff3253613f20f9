"""Assemble the tuning pipeline by hand from the stages, and watch its events.

This is what :class:`stages.Tuning` does for you; wiring it yourself lets you
add stages, change channel sizes, or share one compute pool between jobs.
Run: python examples/hand_built_pipeline.py
"""

from __future__ import annotations

import asyncio

from pipeline import ComputePool, EventBus, Pipeline, SharedArrays
from stages.flow import (
    RankStage,
    load_stage,
    neighbours_stage,
    partition_stage,
    plan_stage,
    score_stage,
)
from stages.partition import parse_cv
from stages.search_space import SearchSpace


async def main() -> None:
    space = SearchSpace(
        ks=(1, 3, 5, 7, 9), metrics=("euclidean", "chebyshev"), weights=("uniform", "distance")
    )
    bus = EventBus()

    async def count_events() -> dict[str, int]:
        counts: dict[str, int] = {}
        async for event in bus.subscribe():
            counts[event.kind] = counts.get(event.kind, 0) + 1
        return counts

    counting = asyncio.create_task(count_events())
    async with ComputePool(workers=2) as pool:
        with SharedArrays() as shared:
            pipe = Pipeline(name="hand-built", events=bus)
            datasets, folds = pipe.channel("datasets", 1), pipe.channel("folds", 1)
            units, predictions, scores = (
                pipe.channel("units", 8),
                pipe.channel("predictions"),
                pipe.channel("scores"),
            )
            pipe.stage("load", load_stage, datasets.sender, "wine")
            pipe.stage(
                "partition",
                partition_stage,
                datasets.receiver,
                folds.sender,
                cv=parse_cv("kfold:3"),
                seed=1,
                space=space,
            )
            pipe.stage(
                "plan",
                plan_stage,
                folds.receiver,
                units.sender,
                space=space,
                shared=shared,
                workers=pool.workers,
            )
            pipe.stage(
                "neighbours",
                neighbours_stage,
                units.receiver,
                predictions.sender,
                pool=pool,
                events=pipe.events_for("neighbours"),
            )
            pipe.stage("score", score_stage, predictions.receiver, scores.sender)
            rank = RankStage(events=pipe.events_for("rank"))  # owns the leaderboard
            pipe.stage("rank", rank, scores.receiver)
            await pipe.run()
    bus.close()
    counts = await counting
    for row in rank.ranked()[:3]:
        print(
            f"{row.rank:>2}  k={row.candidate.k:<2} {row.candidate.metric:<10} "
            f"{row.candidate.weights:<8} {row.mean_accuracy:.4f}"
        )
    print("events:", ", ".join(f"{kind}={n}" for kind, n in sorted(counts.items())))


if __name__ == "__main__":
    asyncio.run(main())
