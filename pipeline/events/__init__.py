"""A run's typed event stream: the records (:mod:`.records`), the bus that fans them
out (:mod:`.bus`), and the bridge from :mod:`logging` (:mod:`.log_bridge`)."""

from .bus import SILENT, EventBus, StageEvents, Subscription
from .log_bridge import EventLogHandler
from .records import (
    SCHEMA_VERSION,
    Event,
    Log,
    RunFailed,
    RunFinished,
    RunStarted,
    StageProgress,
    UnitDone,
    event_types,
    new_run_id,
    schema,
)

__all__ = [
    "SCHEMA_VERSION",
    "SILENT",
    "Event",
    "EventBus",
    "EventLogHandler",
    "Log",
    "RunFailed",
    "RunFinished",
    "RunStarted",
    "StageEvents",
    "StageProgress",
    "Subscription",
    "UnitDone",
    "event_types",
    "new_run_id",
    "schema",
]
