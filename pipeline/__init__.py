"""An asyncio pipeline framework: bounded channels, a structured runner, one
shared compute pool, shared-memory arrays and a typed event stream.

It knows nothing about k-NN; the tuning job built on it lives in ``stages``.
"""

from .channel import Channel, ChannelClosed, EndOfStream
from .compute import ComputePool, default_workers
from .errors import InputError
from .events import Event, EventBus, Subscription
from .operators import map_concurrently
from .runner import Pipeline, StageFailed
from .shared import ArrayRef, InlineArray, SharedArrayHandle, SharedArrays

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
