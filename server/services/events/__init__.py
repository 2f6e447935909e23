"""Domain events: what services changed, published after their transaction commits.

Services call :func:`emit` inside a write transaction; :mod:`.pending` holds the events until
the commit; :mod:`.bus` hands them to this process's subscribers (:mod:`.hub`), to other
processes (:mod:`.pg_broker`) and to the webhook outbox.
"""

from server.services.events.bus import bus
from server.services.events.event import (
    COMPLETION_CREATED,
    COMPLETION_DELETED,
    COMPLETION_UPDATED,
    IMPORT_PROGRESS,
    JOB_PROGRESS,
    MAX_IDS,
    PROJECT_UPDATED,
    TASK_CREATED,
    TASK_DELETED,
    TASK_LABELED,
    TASK_UPDATED,
    USERS_DISABLED,
    USERS_SIGNED_OUT,
    WEBHOOKS_CHANGED,
    Event,
    bulk,
)
from server.services.events.pending import add, emit, progress

__all__ = [
    "COMPLETION_CREATED",
    "COMPLETION_DELETED",
    "COMPLETION_UPDATED",
    "IMPORT_PROGRESS",
    "JOB_PROGRESS",
    "MAX_IDS",
    "PROJECT_UPDATED",
    "TASK_CREATED",
    "TASK_DELETED",
    "TASK_LABELED",
    "TASK_UPDATED",
    "USERS_DISABLED",
    "USERS_SIGNED_OUT",
    "WEBHOOKS_CHANGED",
    "Event",
    "add",
    "bulk",
    "bus",
    "emit",
    "progress",
]
