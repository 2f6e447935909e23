"""Events held back until their transaction commits.

:func:`server.db.write_transaction` opens a :func:`collecting` scope around each write
transaction. Events emitted inside it are kept in a per-thread list; the outermost scope hands
them to the bus's outbox just before the commit and to its subscribers once the commit
succeeded. A transaction that fails (an import rolled back) drops them; a savepoint that fails
drops only the events emitted inside it. Peewee has no after-commit hook: this is one.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

from server.services.events.bus import bus
from server.services.events.event import Event

log = logging.getLogger(__name__)


class _Frame:
    __slots__ = ("events",)

    def __init__(self) -> None:
        self.events: list[Event] = []


class _Local(threading.local):
    frame: _Frame | None = None


_local = _Local()


@contextlib.contextmanager
def collecting(outermost: bool) -> Iterator[_Frame | None]:
    """The scope of one write transaction (``outermost``: it commits at its end)."""
    if not outermost:
        frame = _local.frame
        mark = len(frame.events) if frame is not None else 0
        try:
            yield None
        except BaseException:
            if frame is not None:
                del frame.events[mark:]
            raise
        return
    previous, frame = _local.frame, _Frame()
    _local.frame = frame
    try:
        yield frame
    finally:
        _local.frame = previous
    if frame.events:
        try:
            bus.committed(frame.events)
        except Exception:  # the write is committed: a failing listener must not undo its answer
            log.exception("publishing %d committed events failed", len(frame.events))


def before_commit(frame: _Frame | None) -> None:
    """Called by the outermost transaction just before it commits."""
    if frame is not None and frame.events:
        bus.before_commit(frame.events)


def emit(kind: str, project_id: int, ids: tuple[int, ...] = (), **data: Any) -> None:
    """Announce a change made by the current write transaction (published once it commits;
    outside a transaction at once)."""
    if not bus.wanted(project_id):
        return
    add(Event(kind, project_id, ids, data))


def add(event: Event) -> None:
    frame = _local.frame
    if frame is None:
        bus.committed([event])
    else:
        frame.events.append(event)


def progress(kind: str, project_id: int, ids: tuple[int, ...] = (), **data: Any) -> None:
    """Announce progress of running work (a job, an import) now: progress is not data a
    transaction could take back, and no webhook is sent for it."""
    if bus.wanted(project_id):
        bus.committed([Event(kind, project_id, ids, data)])
