"""Classify many samples with a model, on the shared pool: the prediction pipeline.

    read ─▶ classify ─▶ write

``read`` yields blocks of samples (a CSV a chunk at a time, an ``.npy``
memory-mapped), ``classify`` runs :func:`stages.classify.classify_block` on
the compute pool (the model's rows are placed in shared memory once), and
``write`` puts the predictions back in row order and streams them out as CSV.
Memory stays flat in the number of samples: only the blocks in flight are held.

    summary = await predict(model, "new.csv", out="predictions.csv")
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt

from pipeline.channel import Channel, Receiver, Sender
from pipeline.compute import ComputePool
from pipeline.events import (
    SILENT,
    EventBus,
    RunFinished,
    RunStarted,
    StageEvents,
    Subscription,
    UnitDone,
)
from pipeline.files import atomic_text_file
from pipeline.operators import map_concurrently
from pipeline.runner import Pipeline
from pipeline.runs import observed_run

from .classify import Classified, ModelInputs, classify_block
from .events import LOGGERS
from .model import KNNModel
from .neighbours import WORKER_PRELOAD
from .samples import SampleBlock, SampleSource, array_source, count_rows, file_source

__all__ = ["Prediction", "PredictionSummary", "predict"]


@dataclass(frozen=True)
class PredictionSummary:
    """What a prediction run did: rows classified and, with true labels, the accuracy."""

    rows: int
    seconds: float
    workers: int
    accuracy: float | None = None
    labelled: int = 0
    unknown_labels: list[str] = dataclasses.field(default_factory=list)
    """A few true labels that name no class of the model (they count as wrong)."""


@dataclass(frozen=True)
class _Done:
    block: SampleBlock
    result: Classified


class _CsvWriter:
    """Predictions as CSV: ``row,prediction`` and, with ``proba``, one ``proba_<class>`` each."""

    def __init__(self, model: KNNModel, stream: Any, *, proba: bool, blocking: bool) -> None:
        self._names = np.asarray(model.class_names, dtype=object)
        self._stream = stream
        self._proba = proba
        self._blocking = blocking  # a plain text stream (stdout) rather than an aiofiles one
        self._header = ["row", "prediction"]
        if proba:
            self._header += [f"proba_{name}" for name in model.class_names]

    async def _put(self, text: str) -> None:
        if self._blocking:
            self._stream.write(text)
            self._stream.flush()
        else:
            await self._stream.write(text)

    async def start(self) -> None:
        await self._put(self._line(self._header))

    @staticmethod
    def _line(cells: list[str]) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(cells)
        return buffer.getvalue()

    async def write(self, done: _Done) -> None:
        rows = range(done.block.first_row, done.block.first_row + done.result.codes.size)
        columns: list[Any] = [rows, self._names[done.result.codes]]
        if self._proba and done.result.proba is not None:
            columns.extend(done.result.proba.T.tolist())
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(zip(*columns, strict=True))
        await self._put(buffer.getvalue())


async def read_stage(outbox: Sender[SampleBlock], source: SampleSource) -> None:
    """Send the source's blocks, in order."""
    async with outbox:
        async for block in source.blocks:
            await outbox.send(block)


async def classify_stage(
    inbox: Receiver[SampleBlock],
    outbox: Sender[_Done],
    *,
    pool: ComputePool,
    inputs: ModelInputs | Any,
    proba: bool,
    total: Callable[[int], int],
    events: StageEvents = SILENT,
) -> None:
    """Classify every block on the pool, a bounded number at a time."""
    done = 0

    async def one(block: SampleBlock) -> _Done:
        nonlocal done
        result = await pool.run(classify_block, inputs, block.X, proba)
        done += 1
        last = block.first_row + block.X.shape[0] - 1
        events.emit(
            UnitDone,
            unit=f"block {block.index} (rows {block.first_row}..{last})",
            seconds=result.seconds,
            done=done,
            total=total(done),
        )
        return _Done(block, result)

    await map_concurrently(inbox, outbox, one, limit=lambda: pool.max_in_flight)


class _Accuracy:
    """Counts predictions that equal the true labels given with the samples."""

    def __init__(self, model: KNNModel) -> None:
        self._codes = {name: code for code, name in enumerate(model.class_names)}
        numeric = model.classes.dtype.kind in "iuf"
        self._values = (
            {float(v): c for c, v in enumerate(model.classes.tolist())} if numeric else {}
        )
        self.right = 0
        self.seen = 0
        self.unknown: list[str] = []

    def _code(self, text: str) -> int:
        code = self._codes.get(text)
        if code is None and self._values:
            with contextlib.suppress(ValueError):
                code = self._values.get(float(text))
        if code is None:  # a class the model never saw: always wrong
            if len(self.unknown) < 3 and text not in self.unknown:
                self.unknown.append(text)
            return -1
        return code

    def add(self, labels: list[str], codes: npt.NDArray[np.intp]) -> None:
        truth = np.array([self._code(t) for t in labels], dtype=np.intp)
        self.right += int(np.count_nonzero(truth == codes))
        self.seen += len(labels)


async def write_stage(
    inbox: Receiver[_Done],
    *,
    writer: _CsvWriter | None,
    accuracy: _Accuracy,
    collect: list[_Done] | None = None,
) -> int:
    """Write blocks in row order as they complete (out-of-order ones wait, a few at most)."""
    waiting: dict[int, _Done] = {}
    following = 0
    rows = 0
    started = False
    async for done in inbox:
        if writer is not None and not started:  # not before the first block: no header
            await writer.start()  # above an error about the samples
            started = True
        waiting[done.block.index] = done
        while following in waiting:
            ready = waiting.pop(following)
            following += 1
            rows += ready.result.codes.size
            if ready.block.labels is not None:
                accuracy.add(ready.block.labels, ready.result.codes)
            if writer is not None:
                await writer.write(ready)
            if collect is not None:
                collect.append(ready)
    return rows


class Prediction:
    """One prediction run: classify ``data`` with ``model`` and stream the predictions.

    ``data`` is a CSV/``.npy``/``.npz`` path or an array; ``out`` a file path
    (written atomically), a text stream, or None to keep the predictions in
    memory (:attr:`codes`, :attr:`proba`). ``label`` names a column of true
    classes, to measure the accuracy. ``dask`` runs on a Dask cluster: an
    address (``local:N`` starts one for the run) or a ``distributed.Client``.
    """

    def __init__(
        self,
        model: KNNModel,
        data: str | os.PathLike[str] | npt.ArrayLike,
        *,
        out: str | os.PathLike[str] | TextIO | None = None,
        proba: bool = False,
        label: str | int | None = None,
        workers: int | None = None,
        pool: ComputePool | None = None,
        executor: Any = None,
        dask: Any = None,
        events: EventBus | None = None,
        log_level: int = logging.INFO,
    ) -> None:
        self.model = model
        self.data = data
        self.out = out
        self.proba = proba
        self.label = label
        self.events = events or EventBus()
        self.pool, self._owns_pool = ComputePool.given_or_new(
            pool, executor, workers, dask=dask, preload=WORKER_PRELOAD, log_level=log_level
        )
        self.log_level = log_level
        self._collected: list[_Done] = []
        self._written = 0
        self._started = 0.0

    @property
    def run_id(self) -> str:
        return self.events.run_id

    def subscribe(self, limit: int | None = None) -> Subscription:
        """Events of this run (``run_started``, ``unit_done`` per block, ``run_finished``)."""
        return self.events.subscribe(limit)

    @property
    def codes(self) -> npt.NDArray[np.intp]:
        """Class codes of every sample (when ``out`` was None)."""
        parts = [d.result.codes for d in self._collected]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.intp)

    @property
    def shares(self) -> npt.NDArray[np.float64] | None:
        """Vote shares of every sample (when ``out`` was None and ``proba`` True)."""
        parts = [d.result.proba for d in self._collected if d.result.proba is not None]
        return np.concatenate(parts) if parts else None

    def _source(self, block_rows: int) -> SampleSource:
        if isinstance(self.data, str | os.PathLike):
            return file_source(
                self.data,
                model_features=self.model.input_columns,
                model_label=self.model.label,
                model_others=self.model.other_columns,
                label=self.label,
                block_rows=block_rows,
                allow_missing=self.model.fill_values is not None,
                encoding=self.model.encoding,
            )
        return array_source(self.model.check_samples(self.data), block_rows)

    async def _rows(self) -> int:
        """How many samples there are (for a CSV, its lines: an estimate that blank
        lines and quoted line breaks can exceed)."""
        if isinstance(self.data, str | os.PathLike):
            return await count_rows(Path(self.data))
        return int(np.shape(self.data)[0]) if np.ndim(self.data) else 0

    async def run(self) -> PredictionSummary:
        """Classify every sample; raise :class:`StageFailed` naming the stage that failed."""
        if self._started:
            raise RuntimeError("this Prediction has already run; create a new one to run again")
        self._started = time.perf_counter()
        accuracy = _Accuracy(self.model)
        async with observed_run(self.events, self.log_level, LOGGERS):
            rows = await self._rows()
            async with contextlib.AsyncExitStack() as stack:
                if self._owns_pool:
                    await stack.enter_async_context(self.pool)
                elif not self.pool.started:
                    raise RuntimeError("the pool handed in is not started: 'async with' it first")
                block_rows = self.model.block_rows(rows, self.pool.workers)  # a cluster's, now
                source = self._source(block_rows)
                shared = stack.enter_context(self.pool.placement())
                inputs = await shared.publish(self.model.worker_inputs(shared.share))
                estimate = max(1, -(-rows // block_rows))
                self.events.emit(
                    RunStarted(
                        run_id=self.run_id,
                        job="knn-predict",
                        params={**self.model.params(), "data": source.name, "proba": self.proba},
                        units_total=estimate,
                        workers=self.pool.workers,
                    )
                )
                writer = await self._writer(stack)
                pipe = self._build(source, inputs, writer, accuracy, estimate)
                await pipe.run()
        summary = PredictionSummary(
            rows=self._written,
            seconds=time.perf_counter() - self._started,
            workers=self.pool.workers,
            accuracy=accuracy.right / accuracy.seen if accuracy.seen else None,
            labelled=accuracy.seen,
            unknown_labels=accuracy.unknown,
        )
        self.events.emit(
            RunFinished(
                run_id=self.run_id,
                seconds=summary.seconds,
                best=self.model.params(),
                best_score=summary.accuracy,
                candidates=1,
                events_dropped=self.events.dropped,
            )
        )
        self.events.close()
        return summary

    async def _writer(self, stack: contextlib.AsyncExitStack) -> _CsvWriter | None:
        """The CSV writer ``out`` asks for (a file appears only once complete)."""
        if isinstance(self.out, str | os.PathLike):
            stream = await stack.enter_async_context(atomic_text_file(self.out))
            return _CsvWriter(self.model, stream, proba=self.proba, blocking=False)
        if self.out is not None:
            return _CsvWriter(self.model, self.out, proba=self.proba, blocking=True)
        return None

    def _build(
        self,
        source: SampleSource,
        inputs: Any,
        writer: _CsvWriter | None,
        accuracy: _Accuracy,
        estimate: int,
    ) -> Pipeline:
        pipe = Pipeline(name="knn-predict", events=self.events)
        blocks: Channel[SampleBlock] = pipe.channel("samples", 2 * self.pool.max_in_flight)
        classified: Channel[_Done] = pipe.channel("predictions", 2 * self.pool.max_in_flight)

        async def write(inbox: Receiver[_Done]) -> None:
            collect = self._collected if self.out is None else None
            self._written = await write_stage(
                inbox, writer=writer, accuracy=accuracy, collect=collect
            )

        pipe.stage("read", read_stage, blocks.sender, source)
        pipe.stage(
            "classify",
            classify_stage,
            blocks.receiver,
            classified.sender,
            pool=self.pool,
            inputs=inputs,
            proba=self.proba,
            total=lambda done: max(estimate, done),
            events=pipe.events_for("classify"),
        )
        pipe.stage("write", write, classified.receiver)
        return pipe


async def predict(
    model: KNNModel, data: str | os.PathLike[str] | npt.ArrayLike, **options: Any
) -> PredictionSummary:
    """Classify ``data`` with ``model`` on the pool; see :class:`Prediction` for the options."""
    return await Prediction(model, data, **options).run()
