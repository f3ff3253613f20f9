"""The k-NN tuning stages as async functions joined by channels.

Each function is one stage: it reads its inbox (a channel's receiver), writes
its outbox (a channel's sender) and closes the outbox when done.
:class:`stages.tuning.Tuning` wires them together, and an application can wire
them itself (see ``examples/hand_built_pipeline.py``).

    load ─▶ partition ─▶ plan ─▶ neighbours ─▶ score ─▶ rank

From the plan stage on, a stream begins with the run's :class:`Plan`, once,
and each later stage passes it on before its own items: the context travels
once, not with every message. Each stage keeps its own state; the rank
stage's leaderboard is read through :class:`RankStage`'s snapshots.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from pipeline.channel import EndOfStream, Receiver, Sender
from pipeline.compute import ComputePool, WorkerCrashed
from pipeline.errors import InputError, OptionError, option_name
from pipeline.events import SILENT, RunStarted, StageEvents, UnitDone
from pipeline.operators import map_concurrently
from pipeline.shared import SharedArrays

from .checkpoint import CheckpointFile, Finished, fingerprint
from .csv_text import CsvFormat
from .dataset import Dataset
from .events import CandidateScored, NewBest
from .load import load_dataset
from .metrics import largest_summable, metric_info
from .missing import drop_incomplete_rows
from .neighbours import UnitInputs, UnitOutput, compute_unit, release_run
from .partition import CvSpec, Folds, make_folds
from .plan import LOCAL_TASK_SECONDS, MASKED, WorkUnit, pairs_for, plan_units
from .rank import Leaderboard, RankedCandidate
from .score import CONFUSION_CLASSES, SCORES, FoldScores, Scoreboard
from .search_space import SearchSpace
from .vote import VoteShares, share_width

T = TypeVar("T")
log = logging.getLogger(__name__)

__all__ = [
    "Partitioned",
    "Plan",
    "RankStage",
    "load_stage",
    "neighbours_stage",
    "partition_stage",
    "plan_stage",
    "score_stage",
]


@dataclass(frozen=True)
class Partitioned:
    dataset: Dataset
    folds: Folds


@dataclass(frozen=True)
class Plan:
    """Everything the later stages need to know about the run's work."""

    dataset: Dataset
    folds: Folds
    space: SearchSpace
    inputs: UnitInputs
    test_order: npt.NDArray[np.intp]
    units: list[WorkUnit]
    resumed: dict[int, Finished] = dataclasses.field(default_factory=dict)
    published: Any = None  # ``inputs`` as tasks take them, if placed apart (a Dask future)

    @property
    def task_inputs(self) -> Any:
        """What each unit's task is given for ``inputs``."""
        return self.inputs if self.published is None else self.published

    def unit_label(self, unit: WorkUnit) -> str:
        return unit.label([f.id for f in self.folds.folds])


async def _opened(inbox: Receiver[Plan | T], kind: type[T]) -> tuple[Plan, AsyncIterator[T]] | None:
    """The stream's :class:`Plan` (its first item) and the ``kind`` items after it; None
    if the stream ended with nothing (its producer left without planning: nothing to do)."""
    try:
        plan = await inbox.receive()
    except EndOfStream:
        return None
    if not isinstance(plan, Plan):
        raise TypeError(f"a stream must begin with its Plan, not {type(plan).__name__}")

    async def rest() -> AsyncIterator[T]:
        async for item in inbox:
            if not isinstance(item, kind):
                raise TypeError(f"expected {kind.__name__} after the plan, got {type(item)}")
            yield item

    return plan, rest()


async def load_stage(
    outbox: Sender[Dataset],
    source: str | Dataset | Any,
    *,
    label: str | int | None = None,
    group_column: str | None = None,
    missing: str = "error",
    csv_format: CsvFormat | None = None,
    rows_numbered: bool = False,
    events: StageEvents = SILENT,
) -> None:
    """Read the data set (or pass through one already in memory).

    ``source`` is what :func:`stages.load.load_dataset` reads, or a :class:`Dataset`.

    ``missing`` is the policy for missing feature values: ``error``, ``drop``
    (their rows), or ``mean``/``median`` (imputed later, per training fold).
    ``rows_numbered``: the folds name rows by their index (``cv`` given as
    (train, test) splits), so ``drop`` may not renumber them; a data set
    without missing values has nothing to drop and runs as it is.
    """
    async with outbox:
        events.progress(0, 1)
        if isinstance(source, Dataset):
            dataset = source
        else:
            dataset = await load_dataset(
                source,
                label=label,
                group_column=group_column,
                allow_missing=missing != "error",
                csv_format=csv_format,
            )
        if np.isinf(dataset.X).any():  # files are checked as they load; arrays in memory here
            row, column = (int(i) for i in np.argwhere(np.isinf(dataset.X))[0])
            raise InputError(
                f"{dataset.source}: row {row}, column {column} is infinite; "
                "features must be finite numbers"
            )
        if missing == "drop" and rows_numbered and np.isnan(dataset.X).any():
            raise OptionError(
                "missing",
                f"drop would take rows of {dataset.source} out before the folds, so the "
                "(train, test) row indices given as `cv` would point at other rows; drop "
                "the incomplete rows before splitting, or use mean or median",
            )
        if missing == "drop":
            dataset = drop_incomplete_rows(dataset)
        elif missing == "error" and np.isnan(dataset.X).any():
            raise InputError(
                f"{dataset.source}: features miss values; use `missing` drop, mean or median"
            )
        events.progress(1, 1)
        await outbox.send(dataset)


async def partition_stage(
    inbox: Receiver[Dataset],
    outbox: Sender[Partitioned],
    *,
    cv: CvSpec,
    seed: int,
    space: SearchSpace,
    events: StageEvents = SILENT,
) -> None:
    """Split into folds; refuse a ``k`` larger than the smallest training fold."""
    async with outbox:
        async for dataset in inbox:
            events.progress(0, 1)
            _warn_of_identifier_labels(dataset)
            folds = await asyncio.to_thread(make_folds, dataset, cv, seed)
            _check_vote_memory(dataset, folds, space)
            if space.k_max > folds.smallest_train:
                raise OptionError(
                    "k",
                    f"k={space.k_max} is larger than the smallest training fold "
                    f"({folds.smallest_train} rows of {dataset.source} under cv {cv}); "
                    f"use k <= {folds.smallest_train}",
                )
            events.progress(1, 1)
            await outbox.send(Partitioned(dataset, folds))


async def plan_stage(
    inbox: Receiver[Partitioned],
    outbox: Sender[Plan | WorkUnit],
    *,
    space: SearchSpace,
    shared: SharedArrays,
    workers: int,
    task_seconds: float = LOCAL_TASK_SECONDS,
    impute_with: str | None = None,
    precision: str = "float64",
    checkpoint: CheckpointFile | None = None,
    run_options: Mapping[str, Any] | None = None,
    announce: Mapping[str, Any] | None = None,
    events: StageEvents = SILENT,
) -> None:
    """Place the data in shared memory (or on a cluster's workers) once, then send
    the :class:`Plan` and the units of work.

    ``impute_with`` (``mean`` or ``median``) fills missing feature values
    from each fold's training rows, in the workers; ``precision`` is the
    distances' arithmetic (``float64``, or the faster ``float32``). With a ``checkpoint``,
    a resumed run follows the checkpoint's plan and skips its finished units;
    ``run_options`` (the options that decide the results) identify the run.
    ``task_seconds`` is what a task costs beyond its work on the pool (see
    :attr:`ComputePool.task_seconds`): units are made larger where it is more.
    With ``announce`` (the run's parameters), the plan is announced as a
    :class:`RunStarted` event.
    """
    async with outbox:
        async for part in inbox:
            impute = impute_with if np.isnan(part.dataset.X).any() else None
            if impute is None and np.isnan(part.dataset.X).any():
                raise InputError(f"{part.dataset.source}: features miss values; impute them first")
            _warn_of_negative_values(part.dataset, space)
            _refuse_overflowing_distances(part.dataset, space, precision)
            test_order, units = plan_units(
                part.folds,
                space.metrics,
                scales=space.scales or (None,),
                workers=workers,
                pairs_per_unit=pairs_for(task_seconds),
                # units spanning folds share one training set: no per-fold fitting
                merge_small_folds=impute is None and part.dataset.encoding is None,
            )
            resumed: dict[int, Finished] = {}
            if checkpoint is not None:
                run = fingerprint(part.dataset, run_options or {})
                classes = len(part.dataset.classes)
                width = share_width(classes, space.k_max)
                grid = (len(space.weights), len(space.ks), classes, width)
                units, resumed = await asyncio.to_thread(checkpoint.begin, run, units, grid)
                if resumed:
                    log.info("resuming: %d of %d units already done", len(resumed), len(units))
            inputs = UnitInputs(
                token=secrets.token_hex(8),
                X=shared.share(part.dataset.X),
                y=shared.share(part.dataset.y),
                fold_of_row=shared.share(part.folds.fold_of_row),
                **_explicit_training_rows(part.folds, shared),
                test_order=shared.share(test_order),
                ks=space.ks,
                weights=space.weights,
                n_classes=len(part.dataset.classes),
                impute=impute,
                precision=precision,
                one_hot=_one_hot_columns(part.dataset),
                # a checkpoint records every unit's shares; leave-one-out pools them
                fold_starts=()
                if checkpoint is not None or part.folds.single_rows
                else tuple(
                    int(o) for o in np.cumsum([0, *(f.test.size for f in part.folds.folds)])
                ),
            )
            published = await shared.publish(inputs)
            plan = Plan(
                part.dataset, part.folds, space, inputs, test_order, units, resumed, published
            )
            if announce is not None:
                events.emit(
                    RunStarted,
                    job="knn-tuning",
                    params=dict(announce),
                    units_total=len(units),
                    workers=workers,
                )
            await outbox.send(plan)
            for sent, unit in enumerate(units, start=1):
                await outbox.send(unit)
                events.progress(sent, len(units))


WORK_HERE = 2**28
"""Distances times features of a unit this process may compute while the pool's
workers start (~50 ms of euclidean on one core): a cancelled one runs to its end."""

TRAINING_HERE = 2**22
"""Training values (rows times features, 32 MiB of float64) of a unit this process may
compute: it keeps a copy of them until the run ends."""

VOTE_BUDGET_BYTES = 2 << 30
"""The most a run's votes may take: the shares of a fold and the per-class counts."""


def _warn_of_negative_values(dataset: Dataset, space: SearchSpace) -> None:
    """Name each metric meant for non-negative data when the data has negative values."""
    for metric in space.metrics:
        if metric_info(metric).non_negative and np.nanmin(dataset.X) < 0:
            log.warning(
                "%s has negative feature values; %s (%s) is meant for non-negative data, "
                "so its distances may mislead",
                dataset.source,
                metric,
                metric_info(metric).sklearn,
            )


def _refuse_overflowing_distances(dataset: Dataset, space: SearchSpace, precision: str) -> None:
    """Refuse features so large that a metric's sums overflow the run's arithmetic, which
    would leave rows without neighbours; scaled candidates bring the features in range."""
    if dataset.X.size == 0 or (space.scales and "none" not in space.scales):
        return
    largest = float(np.nanmax(np.abs(dataset.X)))
    for metric in space.metrics:
        limit = largest_summable(metric, dataset.X.shape[1], np.dtype(precision))
        if largest > limit:
            cure = "`precision` float64, " if precision != "float64" else ""
            raise InputError(
                f"{dataset.source}: feature values reach {largest:.3g}, beyond the "
                f"{limit:.3g} up to which {metric} distances over {dataset.X.shape[1]} "
                f"features stay within {precision}; choose {cure}another metric, or "
                "scale the features with `scale`"
            )


def _label_text(dataset: Dataset) -> str:
    return f"the label {dataset.label_name!r}" if dataset.label_name else "the label"


def _warn_of_identifier_labels(dataset: Dataset) -> None:
    """A label with a class for nearly every row is an identifier, not a class."""
    classes = len(dataset.classes)
    singletons = int(np.count_nonzero(np.bincount(dataset.y, minlength=classes) == 1))
    if classes > 10 and singletons > classes // 2:
        log.warning(
            "%s: %s has %d classes for %d rows, %d of them with a single row: it looks like "
            "an identifier, not a class; choose the label column with %s",
            dataset.source,
            _label_text(dataset),
            classes,
            dataset.rows,
            singletons,
            option_name("label"),
        )


def _check_vote_memory(dataset: Dataset, folds: Folds, space: SearchSpace) -> None:
    """Refuse a run whose votes cannot fit: the shares of a fold's test rows (of at most
    ``k_max`` classes each) for every ``k`` and weighting, and three counts per class
    for every candidate of a fold being scored, which very many classes make large."""
    classes = len(dataset.classes)
    rows = max(f.test.size for f in folds.folds)
    open_folds = len(space.searches) * (1 if folds.single_rows else len(folds.folds))
    if folds.single_rows:
        rows = dataset.rows  # leave-one-out keeps every row's shares for the pooled scores
    grid = len(space.ks) * len(space.weights)
    tallies = (open_folds + len(space.searches)) * grid * classes * 2
    if classes <= CONFUSION_CLASSES:  # each search's confusion matrices, summed over folds
        tallies += len(space.searches) * grid * classes * classes
    needed = (rows * grid * share_width(classes, space.k_max) + tallies) * 8
    if needed > VOTE_BUDGET_BYTES:
        raise InputError(
            f"{dataset.source}: {_label_text(dataset)} has {classes} classes; voting "
            f"{len(space.ks)} k values over them would need {needed / 2**30:.1f} GiB; "
            "choose the label column with `label`, or fewer `k` values"
        )


def _explicit_training_rows(folds: Folds, shared: SharedArrays) -> dict[str, Any]:
    """Training rows of folds that are not the complement of their test rows (given splits)."""
    if folds.disjoint:
        return {}
    offsets = np.cumsum([0, *(f.train.size for f in folds.folds)])
    return {
        "train_rows": shared.share(np.concatenate([f.train for f in folds.folds])),
        "train_offsets": tuple(int(o) for o in offsets),
    }


async def neighbours_stage(
    inbox: Receiver[Plan | WorkUnit],
    outbox: Sender[Plan | UnitOutput],
    *,
    pool: ComputePool,
    events: StageEvents = SILENT,
    reuse_neighbours: bool = True,
    compute: Callable[[UnitInputs, WorkUnit], UnitOutput] = compute_unit,
    checkpoint: CheckpointFile | None = None,
) -> None:
    """Run every unit on the shared compute pool, a bounded number at a time.

    ``reuse_neighbours=False`` computes the distances again for every
    candidate, as a grid search does; it exists to measure what reuse buys.
    ``compute`` is the module-level function run per unit (wrap it to
    instrument the workers). Units the plan resumed from a checkpoint are not
    computed again; new ones are recorded in ``checkpoint`` as they finish.
    """
    done = 0
    recording = asyncio.Lock()  # one writer at a time: each record is one whole line
    async with outbox:
        opened = await _opened(inbox, WorkUnit)
        if opened is None:
            return
        plan, units = opened
        await outbox.send(plan)

        async def compute_or_resume(unit: WorkUnit) -> UnitOutput:
            resumed = plan.resumed.get(unit.id)
            if resumed is not None:
                return UnitOutput(unit, *resumed, 0.0, 0)
            try:
                if reuse_neighbours:
                    # Ours is pure and short enough to run here while the workers start;
                    # a function handed in may instrument, or kill, its worker.
                    here = compute is compute_unit and _small_here(plan, unit)
                    output = await pool.run(compute, plan.task_inputs, unit, may_run_here=here)
                else:
                    output = await _once_per_candidate(pool, plan.inputs, unit, compute)
            except WorkerCrashed as crash:
                raise WorkerCrashed(f"{plan.unit_label(unit)}: {crash}") from crash
            if checkpoint is not None:
                assert output.shares is not None  # the plan asks for shares with a checkpoint
                async with recording:
                    await asyncio.to_thread(
                        checkpoint.record, unit, output.predictions, output.shares
                    )
            return output

        async def run(unit: WorkUnit) -> Plan | UnitOutput:
            nonlocal done
            output = await compute_or_resume(unit)
            done += 1
            total = len(plan.units)
            events.emit(
                UnitDone, unit=plan.unit_label(unit), seconds=output.seconds, done=done, total=total
            )
            events.progress(done, total)
            return output

        try:
            await map_concurrently(units, outbox, run, limit=lambda: pool.max_in_flight)
        finally:
            release_run(plan.inputs.token)


def _small_here(plan: Plan, unit: WorkUnit) -> bool:
    """Whether a unit is small enough for this process: its distances times features
    (its time) and its training set (copied here while the run lasts)."""
    train = plan.dataset.rows if unit.fold == MASKED else plan.folds.folds[unit.fold].train.size
    training_values = train * max(plan.dataset.features, 1)
    return training_values <= TRAINING_HERE and unit.rows * training_values <= WORK_HERE


async def _once_per_candidate(
    pool: ComputePool,
    inputs: UnitInputs,
    unit: WorkUnit,
    compute: Callable[[UnitInputs, WorkUnit], UnitOutput],
) -> UnitOutput:
    grid = [(w, k) for w in range(len(inputs.weights)) for k in range(len(inputs.ks))]
    outputs = await asyncio.gather(
        *(
            pool.run(
                compute,
                dataclasses.replace(
                    inputs, ks=(inputs.ks[k],), weights=(inputs.weights[w],), fold_starts=()
                ),
                unit,
            )
            for w, k in grid
        )
    )
    predictions = np.empty((len(inputs.weights), len(inputs.ks), unit.rows), dtype=np.int32)
    shares = np.empty((*predictions.shape, inputs.n_classes), dtype=np.float64)
    for (w, k), output in zip(grid, outputs, strict=True):
        assert output.shares is not None  # asked for above: no fold_starts
        predictions[w, k] = output.predictions[0, 0]
        shares[w, k] = output.shares.dense(inputs.n_classes)[0, 0]
    width = share_width(inputs.n_classes, max(inputs.ks))
    seconds = sum(o.seconds for o in outputs)
    return UnitOutput(
        unit, predictions, VoteShares.from_dense(shares, width), seconds, outputs[0].pid
    )


def _one_hot_columns(dataset: Dataset) -> tuple[int, int] | None:
    if dataset.encoding is None or not dataset.encoding.text:
        return None
    one_hot = dataset.encoding.one_hot
    return one_hot.start, one_hot.stop


async def score_stage(
    inbox: Receiver[Plan | UnitOutput],
    outbox: Sender[Plan | FoldScores],
    *,
    events: StageEvents = SILENT,
) -> None:
    """Tally the units' predictions per candidate and fold; send each fold's scores once
    every unit of that (fold, metric, scale) is in."""
    async with outbox:
        opened = await _opened(inbox, UnitOutput)
        if opened is None:
            return
        plan, outputs = opened
        await outbox.send(plan)
        board = Scoreboard(
            labels=plan.dataset.y,
            test_order=plan.test_order,
            fold_sizes=[f.test.size for f in plan.folds.folds],
            searches=plan.space.searches,
            weights=plan.space.weights,
            ks=plan.space.ks,
            n_classes=len(plan.dataset.classes),
            pooled=plan.folds.single_rows,
        )
        done = 0
        async for output in outputs:
            done += 1
            events.progress(done, len(plan.units))
            # In a thread: completing a fold sorts its vote shares, tens of milliseconds
            # on large folds that would hold up the loop (and the application around it).
            for scores in await asyncio.to_thread(board.add, output):
                await outbox.send(scores)


class RankStage:
    """The rank stage: keeps the leaderboard, announces each scored candidate and every
    new best.

    The stage owns its leaderboard; the rest of the application reads
    snapshots of it (:meth:`ranked`, :attr:`plan`), while the run goes on or
    after it ends. ``on_update`` is called with a new snapshot as each fold's
    scores arrive.
    """

    def __init__(
        self,
        scoring: str = "accuracy",
        *,
        events: StageEvents = SILENT,
        on_update: Callable[[list[RankedCandidate]], None] | None = None,
    ) -> None:
        if scoring not in SCORES:
            raise OptionError("scoring", f"unknown {scoring!r}; choose from {', '.join(SCORES)}")
        self.scoring = scoring
        self.events = events
        self.on_update = on_update
        self.plan: Plan | None = None
        """The run's plan, once it has arrived."""
        self._leaderboard: Leaderboard | None = None

    @property
    def complete(self) -> bool:
        """True once every candidate has every fold's score."""
        return self._leaderboard is not None and self._leaderboard.complete

    @property
    def leaderboard(self) -> Leaderboard:
        """The live leaderboard: read it, but let the stage write it."""
        if self._leaderboard is None:
            raise RuntimeError("the rank stage has not received its plan yet")
        return self._leaderboard

    def ranked(self) -> list[RankedCandidate]:
        """A snapshot of the ranking so far (empty before the plan arrives)."""
        return [] if self._leaderboard is None else self._leaderboard.ranked()

    async def __call__(self, inbox: Receiver[Plan | FoldScores]) -> None:
        opened = await _opened(inbox, FoldScores)
        if opened is None:
            return
        plan, folds = opened
        sizes = [f.test.size for f in plan.folds.folds]
        leaderboard = Leaderboard(
            plan.space, len(sizes), sizes, self.scoring, pooled=plan.folds.single_rows
        )
        self.plan, self._leaderboard = plan, leaderboard
        best: int | None = None
        async for scores_of_fold in folds:
            touched = leaderboard.add(scores_of_fold)
            fold = scores_of_fold.fold
            fold_id = plan.folds.folds[fold].id
            scores = leaderboard.ranking.reshape(len(leaderboard.candidates), -1)
            for index in touched:
                self.events.emit(
                    CandidateScored,
                    params=leaderboard.candidates[index].params(),
                    fold=fold_id,
                    score=float(scores[index, fold]),
                    folds_done=leaderboard.folds_done(index),
                    folds_total=leaderboard.n_folds,
                    mean_score=leaderboard.mean_score(index),
                )
            leader = leaderboard.best()
            if leader is not None and leader[0] != best:
                best = leader[0]
                self.events.emit(
                    NewBest,
                    params=leaderboard.candidates[best].params(),
                    mean_score=leader[1],
                    folds_done=leaderboard.folds_done(best),
                )
            self.events.progress(*leaderboard.cells)
            if self.on_update is not None:
                self.on_update(leaderboard.ranked())
