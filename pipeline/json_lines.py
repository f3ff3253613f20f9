"""Records as JSON lines, the form of the events file and of what a log consumer receives.

orjson writes them: a run may emit tens of thousands of events, and the json
module's encoder takes about ten times as long per record as orjson does.
"""

from __future__ import annotations

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
    newline; NaN as null, keys that are not strings (numbers, booleans) as strings, as
    ``json.dumps`` writes them."""
    return orjson.dumps(value, default=_plain, option=_OPTIONS)


def json_line(record: Mapping[str, Any]) -> bytes:
    """``record`` as one line of compact JSON in UTF-8, newline included (see :func:`dumps`)."""
    return dumps(record)
