"""Run stages together under structured concurrency.

Every stage is a task in one :class:`asyncio.TaskGroup`. The first stage that
fails cancels all the others, and the caller gets a :class:`StageFailed`
naming that stage, with the stage's own exception chained as ``__cause__``.
Cancelling the caller's task cancels every stage.

Each stage is given its own clone of every channel end it takes, and the
runner closes them when the stage ends, however it ends. So a stage that
returns early still ends its outbox's stream, and leaving its inbox makes the
producer's next send fail: a producer stopped that way (its receivers all
gone) ends quietly, as its work is no longer wanted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from .channel import BrokenResourceError, Channel, Receiver, Sender
from .events import EventBus, StageEvents

__all__ = ["Pipeline", "StageFailed"]

T = TypeVar("T")
P = ParamSpec("P")


class StageFailed(Exception):
    """A stage raised; the original exception is ``__cause__``."""

    def __init__(self, stage: str, error: BaseException) -> None:
        super().__init__(f"stage {stage!r} failed: {type(error).__name__}: {error}")
        self.stage = stage
        self.error = error


@dataclass
class _Stage:
    name: str
    start: Callable[[], Awaitable[None]]
    ends: list[Sender[Any] | Receiver[Any]]

    def consumers_left(self) -> bool:
        """True if one of this stage's outboxes has no receiver any more."""
        return any(
            isinstance(end, Sender) and end.statistics().open_receive_streams == 0
            for end in self.ends
        )


def _own_ends(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any], list[Sender[Any] | Receiver[Any]]]:
    """Replace every channel end among a stage's arguments by a clone of its own."""
    ends: list[Sender[Any] | Receiver[Any]] = []

    def own(value: Any) -> Any:
        if isinstance(value, Channel):
            raise TypeError(
                f"channel {value.name!r}: give a stage one of its ends, "
                f"{value.name}.sender or {value.name}.receiver, not the channel"
            )
        if isinstance(value, Sender | Receiver):
            ends.append(value.clone())
            return ends[-1]
        return value

    own_args = tuple(own(a) for a in args)
    own_kwargs = {name: own(value) for name, value in kwargs.items()}
    return own_args, own_kwargs, ends


@dataclass
class Pipeline:
    """Stages joined by channels, run as one unit.

    Build it top to bottom, then ``await pipeline.run()``::

        pipe = Pipeline()
        numbers = pipe.channel("numbers")
        pipe.stage("produce", produce, numbers.sender)
        pipe.stage("consume", consume, numbers.receiver)
        await pipe.run()
    """

    name: str = "pipeline"
    events: EventBus | None = None
    channels: list[Channel[Any]] = field(default_factory=list)
    _stages: list[_Stage] = field(default_factory=list)
    _failure: StageFailed | None = None

    def channel(self, name: str, capacity: int = 16) -> Channel[Any]:
        """Create a bounded channel owned by this pipeline (its depth is observable).

        Annotate what it carries where it is made (``numbers: Channel[int] =
        pipe.channel("numbers")``) and the stages it joins are checked against it.
        """
        ch: Channel[Any] = Channel(capacity, name=name)
        self.channels.append(ch)
        return ch

    def stage(
        self, name: str, fn: Callable[P, Awaitable[None]], *args: P.args, **kwargs: P.kwargs
    ) -> None:
        """Register ``fn(*args, **kwargs)`` as the stage called ``name``.

        Typed by ``fn``'s signature, so a type checker sees what flows where: a
        ``Sender[Dataset]`` handed to a stage that wants a ``Sender[Partitioned]``
        is an error before anything runs.
        """
        if any(s.name == name for s in self._stages):
            raise ValueError(f"pipeline {self.name!r} already has a stage named {name!r}")
        own_args, own_kwargs, ends = _own_ends(args, kwargs)
        self._stages.append(_Stage(name, lambda: fn(*own_args, **own_kwargs), ends))

    def depths(self) -> dict[str, int]:
        """Items waiting in each channel: where the pipeline is backed up."""
        return {ch.name: ch.depth() for ch in self.channels}

    def events_for(self, stage: str) -> StageEvents:
        """The event handle for ``stage``: its events carry the run id and channel depths."""
        return StageEvents(self.events, stage, self.depths)

    @property
    def stage_names(self) -> list[str]:
        return [s.name for s in self._stages]

    async def run(self) -> None:
        """Run every stage to completion; raise :class:`StageFailed` for the first failure."""
        self._failure = None
        for channel in self.channels:  # the stages hold their own clones of the ends
            channel.close()
        try:
            async with asyncio.TaskGroup() as group:
                for stage in self._stages:
                    group.create_task(self._guard(stage), name=f"{self.name}:{stage.name}")
        except BaseExceptionGroup as group_error:
            if self._failure is not None:
                raise self._failure from self._failure.error
            raise group_error.exceptions[
                0
            ] from None  # not a stage error: runner bug or BaseException

    async def _guard(self, stage: _Stage) -> None:
        try:
            await stage.start()
        except asyncio.CancelledError:
            raise
        except BrokenResourceError as error:
            if not stage.consumers_left():
                self._fail(stage, error)
        except Exception as error:
            self._fail(stage, error)
        finally:
            for end in stage.ends:
                end.close()

    def _fail(self, stage: _Stage, error: Exception) -> None:
        failure = StageFailed(stage.name, error)
        if self._failure is None:
            self._failure = failure
        raise failure from error
