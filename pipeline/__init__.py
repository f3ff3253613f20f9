"""An asyncio pipeline framework: bounded channels, a structured runner, one
shared compute pool, shared-memory arrays and a typed event stream.

It knows nothing about k-NN; the tuning job built on it lives in ``stages``.

Names are imported on first use: a pool worker needs only a few of these
modules (shared arrays, errors), and every import is start-up time of a
cold pool.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .channel import Channel, ChannelClosed, EndOfStream
    from .compute import ComputePool, default_workers
    from .errors import InputError
    from .events import Event, EventBus, Subscription
    from .operators import map_concurrently
    from .runner import Pipeline, StageFailed
    from .shared import ArrayRef, InlineArray, SharedArrayHandle, SharedArrays

_EXPORTS = {
    "ArrayRef": "shared",
    "Channel": "channel",
    "ChannelClosed": "channel",
    "ComputePool": "compute",
    "EndOfStream": "channel",
    "Event": "events",
    "EventBus": "events",
    "InlineArray": "shared",
    "InputError": "errors",
    "Pipeline": "runner",
    "SharedArrayHandle": "shared",
    "SharedArrays": "shared",
    "StageFailed": "runner",
    "Subscription": "events",
    "default_workers": "compute",
    "map_concurrently": "operators",
}

__all__ = [
    "ArrayRef",
    "Channel",
    "ChannelClosed",
    "ComputePool",
    "EndOfStream",
    "Event",
    "EventBus",
    "InlineArray",
    "InputError",
    "Pipeline",
    "SharedArrayHandle",
    "SharedArrays",
    "StageFailed",
    "Subscription",
    "default_workers",
    "map_concurrently",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return __all__
