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
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any

from pipeline.compute import ComputePool
from pipeline.errors import InputError
from pipeline.events import (
    EventBus,
    RunFinished,
    Subscription,
)
from pipeline.runner import Pipeline
from pipeline.runs import observed_run
from pipeline.shared import SharedArrays

from .checkpoint import CheckpointFile
from .csv_text import CsvFormat
from .dataset import Dataset
from .flow import (
    RankStage,
    load_stage,
    neighbours_stage,
    partition_stage,
    plan_stage,
    score_stage,
)
from .missing import parse_missing
from .neighbours import WORKER_PRELOAD, parse_precision
from .partition import CvSpec, parse_cv
from .rank import RankedCandidate
from .results import TuningResult
from .score import SCORES
from .search_space import (
    METRICS,
    SearchSpace,
    k_values,
    parse_k,
    parse_metrics,
    parse_scales,
    parse_weights,
)

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

    Options take the command line's text forms or Python values:
    ``k="1-39:2"`` or ``k=[1, 3, 5]``; ``metrics="euclidean,manhattan"`` or a list;
    ``scale="none,standard"`` searches scalings fitted on each training fold
    (None: not searched, the features as they are).

    ``dask`` runs the units on a Dask cluster: a scheduler's address
    (``tcp://HOST:PORT``), ``local:N`` to start a cluster of N worker processes
    for this run, or a ``distributed.Client``; the data reach each worker once.
    """

    def __init__(
        self,
        data: str | os.PathLike[str] | Dataset | Any = "iris",
        *,
        k: str | Sequence[int] = "1-39:2",
        metrics: str | Sequence[str] = METRICS,
        weights: str | Sequence[str] = ("uniform",),
        scale: str | Sequence[str] | None = None,
        cv: str | CvSpec = "kfold:5",
        scoring: str = "accuracy",
        seed: int = 0,
        label: str | int | None = None,
        workers: int | None = None,
        executor: Executor | None = None,
        dask: Any = None,
        pool: ComputePool | None = None,
        max_in_flight: int | None = None,
        events: EventBus | None = None,
        on_update: Callable[[list[RankedCandidate]], None] | None = None,
        reuse_neighbours: bool = True,
        log_level: int = logging.INFO,
        missing: str = "error",
        precision: str = "float64",
        checkpoint: str | os.PathLike[str] | None = None,
        resume: bool = False,
        delimiter: str | None = None,
        header: bool | None = None,
        skip_rows: int = 0,
        drop: Sequence[str | int] = (),
        features: Sequence[str | int] = (),
        categorical: str = "onehot",
    ) -> None:
        self.data = data
        self.csv_format = CsvFormat(
            delimiter=delimiter,
            header=header,
            skip_rows=skip_rows,
            drop=tuple(drop),
            keep=tuple(features),
            categorical=categorical,
        )
        self.space = SearchSpace(
            ks=parse_k(k) if isinstance(k, str) else k_values(k),
            metrics=parse_metrics(metrics) if isinstance(metrics, str) else tuple(metrics),
            weights=parse_weights(weights) if isinstance(weights, str) else tuple(weights),
            scales=parse_scales(scale) if isinstance(scale, str) else tuple(scale or ()),
        )
        self.cv = parse_cv(cv) if isinstance(cv, str) else cv
        if scoring not in SCORES:
            raise InputError(f"--scoring: unknown {scoring!r}; choose from {', '.join(SCORES)}")
        self.scoring = scoring
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
            raise InputError(f"--seed: {seed!r} is not a whole number from 0 to 4294967295")
        self.seed = seed
        self.missing = parse_missing(missing)
        self.precision = parse_precision(precision)
        if resume and checkpoint is None:
            raise InputError("--resume needs --checkpoint FILE: the file to resume from")
        if checkpoint is not None and not resume and os.path.exists(checkpoint):
            raise InputError(
                f"--checkpoint {os.fspath(checkpoint)}: the file exists; add --resume to "
                "continue that run, or remove the file to start again"
            )
        self.checkpoint = CheckpointFile(checkpoint, resume=resume) if checkpoint else None
        self.label = label
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

    def _result_options(self) -> dict[str, Any]:
        """The options that decide the results (what a checkpoint must match)."""
        return {
            **self.space.describe(),
            "cv": str(self.cv),
            "seed": self.seed,
            "missing": self.missing,
            **self._precision_option(),
        }

    def _precision_option(self) -> dict[str, str]:
        """``precision`` only when it is not the exact default, so float64 runs look as ever."""
        return {} if self.precision == "float64" else {"precision": self.precision}

    def params(self) -> dict[str, Any]:
        if isinstance(self.data, Dataset):
            source = self.data.source
        elif isinstance(self.data, str | os.PathLike):
            source = os.fspath(self.data)
        else:
            source = f"<{type(self.data).__name__}>"
        return {
            "data": source,
            **self.space.describe(),
            "cv": str(self.cv),
            "seed": self.seed,
            "missing": self.missing,
            **self._precision_option(),
        }

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
                observed_run(self.events, self.log_level),
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
            precision=self.precision,
            training=plan.dataset,
            missing=self.missing,
            scoring=self.scoring,
        )

    def _build(self, shared: SharedArrays) -> Pipeline:
        group = self.cv.column if self.cv.kind == "column" else None
        pipe = Pipeline(name="knn-tuning", events=self.events)
        datasets, parts = pipe.channel("datasets", 1), pipe.channel("folds", 1)
        jobs = pipe.channel("units", 2 * self.pool.max_in_flight)
        outputs, scored = pipe.channel("predictions", 64), pipe.channel("scores", 64)
        pipe.stage(
            "load",
            load_stage,
            datasets.sender,
            self.data,
            label=self.label,
            group_column=group,
            missing=self.missing,
            csv_format=self.csv_format,
            events=pipe.events_for("load"),
        )
        pipe.stage(
            "partition",
            partition_stage,
            datasets.receiver,
            parts.sender,
            cv=self.cv,
            seed=self.seed,
            space=self.space,
            events=pipe.events_for("partition"),
        )
        pipe.stage(
            "plan",
            plan_stage,
            parts.receiver,
            jobs.sender,
            space=self.space,
            shared=shared,
            workers=self.pool.workers,
            task_seconds=self.pool.task_seconds,
            impute_with=self.missing if self.missing in ("mean", "median") else None,
            precision=self.precision,
            checkpoint=self.checkpoint,
            run_options=self._result_options(),
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
            self.scoring, events=pipe.events_for("rank"), on_update=self._on_update
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
