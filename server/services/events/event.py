"""What changed: small typed events, carrying ids rather than rows.

An event names its kind, its project and the ids it concerns (tasks, completions or a job);
``data`` holds a few small values (a job's counters, what part of a project changed). Events
travel between processes as compact JSON (PostgreSQL NOTIFY payloads stay under 8000 bytes),
so bulk writes carry at most :data:`MAX_IDS` ids and their ``count``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

TASK_CREATED = "task.created"
TASK_UPDATED = "task.updated"
TASK_LABELED = "task.labeled"
TASK_DELETED = "task.deleted"
COMPLETION_CREATED = "completion.created"
COMPLETION_UPDATED = "completion.updated"
COMPLETION_DELETED = "completion.deleted"
PROJECT_UPDATED = "project.updated"
JOB_PROGRESS = "job.progress"
IMPORT_PROGRESS = "import.progress"
WEBHOOKS_CHANGED = "webhooks.changed"
# An admin disabled users (``ids``; project 0): their open subscriptions end at once.
USERS_DISABLED = "users.disabled"
# Users signed out everywhere (``ids``; project 0): subscriptions opened with their login cookie
# end at once (those opened with an API token go on: the token still works).
USERS_SIGNED_OUT = "users.signed_out"

TASK_KINDS = frozenset({TASK_CREATED, TASK_UPDATED, TASK_LABELED, TASK_DELETED})
COMPLETION_KINDS = frozenset({COMPLETION_CREATED, COMPLETION_UPDATED, COMPLETION_DELETED})
KINDS = (
    TASK_KINDS
    | COMPLETION_KINDS
    | {
        PROJECT_UPDATED,
        JOB_PROGRESS,
        IMPORT_PROGRESS,
        WEBHOOKS_CHANGED,
        USERS_DISABLED,
        USERS_SIGNED_OUT,
    }
)
MAX_IDS = 500


@dataclass(eq=False)
class Event:
    kind: str
    project_id: int
    ids: tuple[int, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)
    # Per-process memo of what subscribers load for this event (the task, the counters):
    # loaded once however many subscribers ask. Never sent between processes.
    memo: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def count(self) -> int:
        """How many things the event concerns (a bulk event carries only the first ids)."""
        return int(self.data.get("count", len(self.ids)))

    def wire(self) -> list[Any]:
        return [self.kind, self.project_id, list(self.ids), self.data]

    @classmethod
    def from_wire(cls, value: Any) -> Event | None:
        """The event a peer sent; None for anything malformed or unknown."""
        if not isinstance(value, list) or len(value) != 4:
            return None
        kind, project_id, ids, data = value
        if kind not in KINDS or type(project_id) is not int or not isinstance(data, dict):
            return None
        if not isinstance(ids, list) or not all(type(i) is int for i in ids):
            return None
        return cls(kind, project_id, tuple(ids), data)


def bulk(kind: str, project_id: int, ids: list[int], **data: Any) -> Event:
    """An event about many things at once: the first :data:`MAX_IDS` ids and the count."""
    return Event(kind, project_id, tuple(ids[:MAX_IDS]), {**data, "count": len(ids)})


def encode(origin: str, events: list[Event], limit: int = 7900) -> list[str]:
    """``events`` as JSON messages of at most ``limit`` bytes each (one event may exceed it
    only if it alone does: bulk events are kept small by :func:`bulk`)."""
    messages: list[str] = []
    batch: list[list[Any]] = []
    size = 0
    for event in events:
        item = event.wire()
        length = len(orjson.dumps(item)) + 1
        if batch and size + length > limit:
            messages.append(orjson.dumps({"o": origin, "e": batch}).decode())
            batch, size = [], 0
        batch.append(item)
        size += length
    if batch:
        messages.append(orjson.dumps({"o": origin, "e": batch}).decode())
    return messages


def decode(message: str | bytes) -> tuple[str, list[Event]]:
    """(origin, events) of a message; malformed parts are dropped."""
    try:
        value = orjson.loads(message)
    except orjson.JSONDecodeError:
        return "", []
    if not isinstance(value, dict) or not isinstance(value.get("e"), list):
        return "", []
    found = [Event.from_wire(item) for item in value["e"]]
    return str(value.get("o", "")), [e for e in found if e is not None]
