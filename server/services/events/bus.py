"""The process's event bus: where committed events go.

Services emit events inside their write transaction (:mod:`.pending`); when it commits, the
bus hands them to its sinks: the local hub (subscribers of this process, on the event loop),
the broker (other processes: PostgreSQL LISTEN/NOTIFY, or local sockets beside a SQLite file)
and, before the commit, the webhook outbox (delivery rows written in the same transaction).
Nothing is attached until the app starts, and :meth:`Bus.wanted` is a few attribute reads, so
writes made while nobody listens pay next to nothing. ``bus`` is the one module-level
instance (as the database proxy is): the services emit without a context to carry it.
"""

from __future__ import annotations

import logging
from typing import Protocol

from server.services.events.event import WEBHOOKS_CHANGED, Event

log = logging.getLogger(__name__)


class LocalSink(Protocol):
    @property
    def has_subscribers(self) -> bool: ...

    def dispatch_threadsafe(self, events: list[Event]) -> None: ...


class BrokerSink(Protocol):
    @property
    def has_peers(self) -> bool:
        """Whether another process may want this one's events."""

    def send(self, events: list[Event]) -> None: ...

    def close(self) -> None: ...


class OutboxSink(Protocol):
    def wants(self, project_id: int) -> bool: ...

    def record(self, events: list[Event]) -> None:
        """Inside the write transaction, before it commits."""

    def committed(self, events: list[Event]) -> None:
        """After the commit of events :meth:`record` saw."""

    def changed(self) -> None:
        """Webhooks were added, changed or removed (here or in another process)."""


class Bus:
    def __init__(self) -> None:
        self.local: LocalSink | None = None
        self.broker: BrokerSink | None = None
        self.outbox: OutboxSink | None = None

    def listening(self) -> bool:
        """Whether a subscriber, here or in another process, may want events."""
        broker = self.broker
        if broker is not None and broker.has_peers:
            return True
        local = self.local
        return local is not None and local.has_subscribers

    def wanted(self, project_id: int) -> bool:
        """Whether an event of this project may interest anyone (cheap, no query)."""
        if self.listening():
            return True
        outbox = self.outbox
        return outbox is not None and outbox.wants(project_id)

    def before_commit(self, events: list[Event]) -> None:
        if self.outbox is not None:
            self.outbox.record(events)

    def committed(self, events: list[Event]) -> None:
        """Events of a transaction that committed (or progress, which needs none)."""
        if self.outbox is not None:
            self.outbox.committed(events)
        if self.broker is not None:
            self.broker.send(events)
        self.received(events)

    def received(self, events: list[Event]) -> None:
        """Events committed in this process or in another one (from the broker)."""
        if self.outbox is not None and any(e.kind == WEBHOOKS_CHANGED for e in events):
            self.outbox.changed()
        local = self.local
        if local is not None and local.has_subscribers:
            local.dispatch_threadsafe(events)

    def detach(self) -> None:
        broker, self.broker, self.local, self.outbox = self.broker, None, None, None
        if broker is not None:
            broker.close()


bus = Bus()
