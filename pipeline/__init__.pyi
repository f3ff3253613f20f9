"""Public names of ``pipeline``: this stub is the one list of them.

:mod:`lazy_loader` reads it at run time to import each name on first use, and type
checkers read it as the package's interface (``X as X`` marks a re-export).
"""

from .channel import (
    BrokenResourceError as BrokenResourceError,
    Channel as Channel,
    ClosedResourceError as ClosedResourceError,
    EndOfStream as EndOfStream,
    Receiver as Receiver,
    Sender as Sender,
)
from .compute import ComputePool as ComputePool, default_workers as default_workers
from .errors import InputError as InputError, OptionError as OptionError
from .events import Event as Event, EventBus as EventBus, Subscription as Subscription
from .operators import map_concurrently as map_concurrently
from .runner import Pipeline as Pipeline, StageFailed as StageFailed
from .shared import (
    ArrayRef as ArrayRef,
    InlineArray as InlineArray,
    SharedArrayHandle as SharedArrayHandle,
    SharedArrays as SharedArrays,
)
