"""The public entry point: tune a k-NN classifier inside your own event loop.

    result = await tune("iris", k="1-39:2", cv="kfold:5")
    print(result.best.candidate)

:class:`Tuning` is the same run as an object, for applications that want its
events while it runs, a partial leaderboard after a cancellation, or their own
executor (any :class:`concurrent.futures.Executor`, e.g. Dask's
``Client.get_executor()``).

An application that tunes more than once keeps one warm pool for all its runs
(starting the worker processes takes a third of a second or more; a run on a
few thousand rows can take less)::

    async with compute_pool() as pool:
        first = await Tuning(data, pool=pool).run()
        second = await Tuning(other, pool=pool).run()
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from pipeline.channel import Channel
from pipeline.compute import ComputePool
from pipeline.errors import OptionError
from pipeline.events import (
    EventBus,
    RunFinished,
    Subscription,
)
from pipeline.runner import Pipeline
from pipeline.runs import observed_run
from pipeline.shared import SharedArrays

from .checkpoint import CheckpointFile
from .dataset import Dataset
from .events import LOGGERS
from .flow import (
    Partitioned,
    Plan,
    RankStage,
    load_stage,
    neighbours_stage,
    partition_stage,
    plan_stage,
    score_stage,
)
from .neighbours import WORKER_PRELOAD, UnitOutput
from .options import TuningOptions, data_source
from .plan import WorkUnit
from .rank import RankedCandidate
from .results import TuningResult
from .score import FoldScores

__all__ = ["Tuning", "compute_pool", "tune"]


def compute_pool(
    workers: int | None = None, *, log_level: int = logging.INFO, **options: Any
) -> ComputePool:
    """A process pool for many tuning runs: ``async with compute_pool() as pool``.

    Hand it to each :class:`Tuning` as ``pool=``; the runs share its workers,
    and whoever entered it shuts it down. ``options`` go to :class:`ComputePool`.
    """
    return ComputePool(workers=workers, preload=WORKER_PRELOAD, log_level=log_level, **options)


class Tuning:
    """One tuning run: configure, then ``await run()``.

    The options are a :class:`TuningOptions`, or its keywords (see
    :meth:`TuningOptions.of`), in the command line's text forms or as Python
    values: ``k="1-39:2"`` or ``k=[1, 3, 5]``; ``metrics="euclidean,manhattan"``
    or a list; ``scale="none,standard"`` searches scalings fitted on each
    training fold. The other keywords say where and how it runs.

    ``dask`` runs the units on a Dask cluster: a scheduler's address
    (``tcp://HOST:PORT``), ``local:N`` to start a cluster of N worker processes
    for this run, or a ``distributed.Client``; the data reach each worker once.
    """

    def __init__(
        self,
        data: str | os.PathLike[str] | Dataset | Any = "iris",
        options: TuningOptions | None = None,
        *,
        workers: int | None = None,
        executor: Executor | None = None,
        dask: Any = None,
        pool: ComputePool | None = None,
        max_in_flight: int | None = None,
        events: EventBus | None = None,
        on_update: Callable[[list[RankedCandidate]], None] | None = None,
        reuse_neighbours: bool = True,
        log_level: int = logging.INFO,
        checkpoint: str | os.PathLike[str] | None = None,
        resume: bool = False,
        **option_values: Any,
    ) -> None:
        if options is not None and option_values:
            raise TypeError(
                f"give the options as a TuningOptions or as keywords, not both "
                f"(got options and {', '.join(option_values)})"
            )
        self.data = data
        self.options = options if options is not None else TuningOptions.of(**option_values)
        if resume and checkpoint is None:
            raise OptionError("resume", "needs `checkpoint`: the file to resume from")
        self.checkpoint = CheckpointFile(checkpoint, resume=resume) if checkpoint else None
        self.events = events or EventBus()
        self.pool, self._owns_pool = ComputePool.given_or_new(
            pool,
            executor,
            workers,
            dask=dask,
            max_in_flight=max_in_flight,
            preload=WORKER_PRELOAD,
            log_level=log_level,
        )
        self.log_level = log_level
        self._on_update = on_update
        self.reuse_neighbours = reuse_neighbours
        self._rank: RankStage | None = None
        self._started = 0.0
        self.pipeline: Pipeline | None = None

    @property
    def run_id(self) -> str:
        return self.events.run_id

    def subscribe(self, limit: int | None = None) -> Subscription:
        """Events of this run, for ``async for event in tuning.subscribe()``."""
        return self.events.subscribe(limit)

    def params(self) -> dict[str, Any]:
        """The run's parameters, as its ``run_started`` event announces them."""
        return {"data": data_source(self.data), **self.options.describe()}

    async def run(self) -> TuningResult:
        """Run the whole tuning; raise :class:`StageFailed` naming the stage that failed.

        A :class:`Tuning` runs once (its event stream ends with the run); make
        a new one to run again.
        """
        if self._started:
            raise RuntimeError("this Tuning has already run; create a new one to run again")
        self._started = time.perf_counter()
        try:
            async with (
                observed_run(self.events, self.log_level, LOGGERS),
                contextlib.AsyncExitStack() as stack,
            ):
                if self._owns_pool:
                    await stack.enter_async_context(self.pool)
                elif not self.pool.started:
                    raise RuntimeError("the pool handed in is not started: 'async with' it first")
                with self.pool.placement() as shared:
                    self.pipeline = self._build(shared)
                    await self.pipeline.run()
        finally:
            if self.checkpoint is not None:
                self.checkpoint.close()
        result = self.result()
        best = result.best
        self.events.emit(
            RunFinished(
                run_id=self.run_id,
                seconds=result.seconds,
                best=best.candidate.params() if best else None,
                best_score=best.mean_score if best else None,
                candidates=len(result.candidates),
                events_dropped=self.events.dropped,
            )
        )
        self.events.close()
        return result

    def result(self) -> TuningResult:
        """The leaderboard so far (``complete`` is False before the run has finished)."""
        plan = self._rank.plan if self._rank is not None else None
        if self._rank is None or plan is None:
            raise RuntimeError("the tuning has not planned any work yet")
        return TuningResult(
            dataset=plan.dataset.describe(),
            cv=plan.folds.describe(),
            candidates=self._rank.ranked(),
            seconds=time.perf_counter() - self._started,
            workers=self.pool.workers,
            complete=self._rank.complete,
            precision=self.options.precision,
            training=plan.dataset,
            missing=self.options.missing,
            scoring=self.options.scoring,
            options=self.options.describe(),
        )

    def _build(self, shared: SharedArrays) -> Pipeline:
        pipe = Pipeline(name="knn-tuning", events=self.events)
        datasets: Channel[Dataset] = pipe.channel("datasets", 1)
        parts: Channel[Partitioned] = pipe.channel("folds", 1)
        jobs: Channel[Plan | WorkUnit] = pipe.channel("units", 2 * self.pool.max_in_flight)
        outputs: Channel[Plan | UnitOutput] = pipe.channel("predictions", 64)
        scored: Channel[Plan | FoldScores] = pipe.channel("scores", 64)
        pipe.stage(
            "load",
            load_stage,
            datasets.sender,
            self.data,
            label=self.options.label,
            group_column=self.options.group_column,
            missing=self.options.missing,
            csv_format=self.options.csv_format,
            rows_numbered=self.options.cv.kind == "splits",
            events=pipe.events_for("load"),
        )
        pipe.stage(
            "partition",
            partition_stage,
            datasets.receiver,
            parts.sender,
            cv=self.options.cv,
            seed=self.options.seed,
            space=self.options.space,
            events=pipe.events_for("partition"),
        )
        pipe.stage(
            "plan",
            plan_stage,
            parts.receiver,
            jobs.sender,
            space=self.options.space,
            shared=shared,
            workers=self.pool.workers,
            task_seconds=self.pool.task_seconds,
            impute_with=self.options.impute_with,
            precision=self.options.precision,
            checkpoint=self.checkpoint,
            run_options=self.options.describe(),
            announce=self.params(),
            events=pipe.events_for("plan"),
        )
        pipe.stage(
            "neighbours",
            neighbours_stage,
            jobs.receiver,
            outputs.sender,
            pool=self.pool,
            events=pipe.events_for("neighbours"),
            reuse_neighbours=self.reuse_neighbours,
            checkpoint=self.checkpoint,
        )
        pipe.stage(
            "score",
            score_stage,
            outputs.receiver,
            scored.sender,
            events=pipe.events_for("score"),
        )
        self._rank = RankStage(
            self.options.scoring, events=pipe.events_for("rank"), on_update=self._on_update
        )
        pipe.stage("rank", self._rank, scored.receiver)
        return pipe


async def tune(
    data: str | os.PathLike[str] | Dataset | Any = "iris", **options: Any
) -> TuningResult:
    """Tune a k-NN classifier on ``data``; see :class:`Tuning` for the options.

    ``data`` is a built-in name, a CSV/``.npy``/``.npz`` path (``-``: a CSV on
    standard input), an ``(X, y)`` pair, a pandas DataFrame (``label=`` names
    its label column) or a :class:`Dataset`.
    """
    return await Tuning(data, **options).run()
