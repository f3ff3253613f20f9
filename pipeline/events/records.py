"""The event records: every event is a small frozen record with a ``kind``, a timestamp
``ts`` (seconds since the epoch) and the ``run_id``; :meth:`Event.to_dict` gives its
JSON form and :func:`schema` every kind's fields.

These are a run's own events; a job adds its kinds by subclassing :class:`Event`
(the k-NN tuning's ``candidate_scored`` and ``new_best`` live in ``stages.events``),
and each subclass with a ``kind`` is registered, in definition order, for
:func:`event_types` and the schema.
"""

from __future__ import annotations

import dataclasses
import math
import time
import types
import typing
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson

from ..json_lines import dumps

__all__ = [
    "SCHEMA_VERSION",
    "Event",
    "Log",
    "RunFailed",
    "RunFinished",
    "RunStarted",
    "StageProgress",
    "UnitDone",
    "event_types",
    "new_run_id",
    "schema",
]

SCHEMA_VERSION = 1


_AS_THEY_ARE = frozenset({str, int, bool, type(None)})


def _plain(value: Any) -> Any:
    """Mappings as dicts, so ``json.dumps`` accepts any Mapping a stage passed, and a
    number JSON cannot hold (NaN, as an AUC of a fold with one class, or an infinity)
    as null.

    The common types are told by their exact type first: a run may emit tens of
    thousands of events, and ``isinstance`` against the ``Mapping`` ABC is slow."""
    kind = type(value)
    if kind in _AS_THEY_ARE:
        return value
    if kind is float or isinstance(value, float):  # NumPy's float64 is one too
        return value if math.isfinite(value) else None
    return dict(value) if isinstance(value, Mapping) else value


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
_OPENINGS: dict[type, bytes] = {}
"""Each event kind's ``{"v":...,"kind":...,`` as :meth:`Event.json_line` begins it."""


def _field_names(kind: type[Event]) -> tuple[str, ...]:
    """The fields of an event kind, found once (``dataclasses.fields`` filters every time)."""
    names = _FIELD_NAMES.get(kind)
    if names is None:
        names = _FIELD_NAMES[kind] = tuple(f.name for f in dataclasses.fields(kind))
    return names


_KINDS: dict[str, type[Event]] = {}
"""Every registered event kind and its class, in definition order."""


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of every event. ``droppable`` events may be lost by a slow subscriber."""

    kind: ClassVar[str] = "event"
    droppable: ClassVar[bool] = False
    run_id: str
    ts: float = field(default_factory=time.time)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind in _KINDS and _KINDS[cls.kind] is not cls:
            raise TypeError(f"event kind {cls.kind!r} is already {_KINDS[cls.kind].__name__}")
        _KINDS[cls.kind] = cls

    def to_dict(self) -> dict[str, Any]:
        """The JSON-serialisable form: ``{"v", "kind", "ts", "run_id", ...fields}``."""
        body = {name: _plain(getattr(self, name)) for name in _field_names(type(self))}
        return {"v": SCHEMA_VERSION, "kind": self.kind, **body}

    def json_line(self) -> bytes:
        """:meth:`to_dict` as one line of compact JSON (UTF-8, newline included): the
        events file's and the log consumer's form.

        Written by orjson straight from the record's fields, after the ``v`` and
        ``kind`` keys, without building the dict: a run may emit tens of thousands.
        """
        opening = _OPENINGS.get(type(self))
        if opening is None:
            kind = dumps(self.kind)[:-1]
            opening = _OPENINGS[type(self)] = b'{"v":%d,"kind":%s,' % (SCHEMA_VERSION, kind)
        try:
            fields = dumps(self)  # {"run_id":...,"ts":...}: every event has both
        except orjson.JSONEncodeError:  # a string orjson refuses: the dict, another way
            return dumps(self.to_dict())
        return opening + fields[1:]


@dataclass(frozen=True, kw_only=True)
class RunStarted(Event):
    kind: ClassVar[str] = "run_started"
    job: str
    params: Mapping[str, Any]
    units_total: int
    workers: int


@dataclass(frozen=True, kw_only=True)
class StageProgress(Event):
    kind: ClassVar[str] = "stage_progress"
    droppable: ClassVar[bool] = True
    stage: str
    done: int
    total: int | None
    channel_depths: Mapping[str, int]


@dataclass(frozen=True, kw_only=True)
class UnitDone(Event):
    kind: ClassVar[str] = "unit_done"
    droppable: ClassVar[bool] = True
    unit: str
    seconds: float
    done: int
    total: int


@dataclass(frozen=True, kw_only=True)
class RunFinished(Event):
    kind: ClassVar[str] = "run_finished"
    seconds: float
    best: Mapping[str, Any] | None
    best_score: float | None
    candidates: int
    events_dropped: int = 0


@dataclass(frozen=True, kw_only=True)
class RunFailed(Event):
    kind: ClassVar[str] = "run_failed"
    error: str
    stage: str | None
    interrupted: bool


@dataclass(frozen=True, kw_only=True)
class Log(Event):
    kind: ClassVar[str] = "log"
    droppable: ClassVar[bool] = True
    level: str
    logger: str
    message: str
    pid: int


def event_types() -> tuple[type[Event], ...]:
    """Every registered kind of event, in the order the schema lists them."""
    return tuple(_KINDS.values())


def schema() -> dict[str, dict[str, str]]:
    """Every event kind and its fields with their JSON types (documented in README.md)."""
    kinds: dict[str, dict[str, str]] = {}
    for cls in event_types():
        hints = typing.get_type_hints(cls)
        fields = {"v": "integer", "kind": "string"}
        fields.update({f.name: _json_type(hints[f.name]) for f in dataclasses.fields(cls)})
        kinds[cls.kind] = fields
    return kinds


def _json_type(hint: Any) -> str:
    names = {str: "string", int: "integer", float: "number", bool: "boolean"}
    options = (
        typing.get_args(hint)
        if typing.get_origin(hint) in (types.UnionType, typing.Union)
        else (hint,)
    )
    parts = []
    for option in options:
        if option is type(None):
            parts.append("null")
        elif option in names:
            parts.append(names[option])
        else:
            parts.append("object")
    return " or ".join(parts)
