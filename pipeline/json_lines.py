"""Records as JSON lines, the form of the events file and of what a log consumer receives.

orjson writes them: a run may emit tens of thousands of events, and the json
module's encoder takes about ten times as long per record as orjson does. A
string orjson refuses (a lone surrogate: a file name that is not UTF-8, as
Linux hands it to Python) is written by the json module instead, escaped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import orjson

__all__ = ["dumps", "json_line"]

_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS


def _plain(value: Any) -> Any:
    """What orjson is given for a value it does not take itself: a mapping as a dict, a
    NumPy number as the Python number it holds (anything else raises ``TypeError``, as
    ``json.dumps`` does)."""
    if isinstance(value, Mapping):
        return dict(value)
    item = getattr(value, "item", None)
    if item is None or getattr(value, "shape", None) != ():
        raise TypeError(f"{type(value).__name__} is not JSON serializable")
    return item()


def dumps(value: Any) -> bytes:
    """``value`` (a dict, list, dataclass instance...) as compact JSON in UTF-8 with a
    newline; NaN and infinities as null, keys that are not strings (numbers, booleans)
    as strings, as ``json.dumps`` writes them."""
    try:
        return orjson.dumps(value, default=_plain, option=_OPTIONS)
    except orjson.JSONEncodeError:
        if not isinstance(value, Mapping | list | tuple):
            raise  # a record the caller can write as a dict (see Event.json_line)
        text = json.dumps(_finite(value), separators=(",", ":"), default=_plain)
        return text.encode("ascii") + b"\n"


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities as None, as orjson writes them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def json_line(record: Mapping[str, Any]) -> bytes:
    """``record`` as one line of compact JSON in UTF-8, newline included (see :func:`dumps`)."""
    return dumps(record)
