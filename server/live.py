"""The process's live machinery, opened and closed with the app: the subscriber hub, the
cross-process broker (PostgreSQL's, or local sockets for processes sharing a SQLite file) and
the webhook worker, attached to the event bus."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import anyio.to_thread

from server import db
from server.services.events import bus
from server.services.events.hub import LocalHub
from server.services.events.local_broker import LocalBroker, open_broker
from server.services.events.pg_broker import PostgresBroker, postgres_connector
from server.services.webhooks.outbox import WebhookOutbox
from server.services.webhooks.worker import WebhookWorker, next_due
from server.settings import Settings
from server.sqlite_gate import sqlite_file

log = logging.getLogger(__name__)
LISTEN_WAIT = 5.0


@dataclass
class LiveRuntime:
    hub: LocalHub
    broker: PostgresBroker | LocalBroker | None
    webhooks: WebhookWorker

    @classmethod
    async def open(cls, settings: Settings) -> LiveRuntime:
        """Attach a hub on the running loop (and a broker between processes) to the bus."""
        hub = LocalHub(
            asyncio.get_running_loop(), settings.live_queue_size, settings.live_max_subscriptions
        )
        broker: PostgresBroker | LocalBroker | None = None
        if settings.live_broker == "auto" and not db.is_sqlite():
            broker = PostgresBroker(postgres_connector(db.database.obj), bus.received)
        elif settings.live_broker == "auto" and (path := sqlite_file(db.database.obj)):
            broker = open_broker(path, bus.received)
        # Listening before the outbox reads the webhooks: a change committed afterwards by
        # another process reaches this one.
        if broker is not None and not await anyio.to_thread.run_sync(
            broker.wait_listening, LISTEN_WAIT
        ):
            log.warning("event broker: not listening yet; other processes' events may be late")
        # Read now, before serving: afterwards the worker queries only when there is work.
        first_due = await db.run_db(next_due)
        worker = WebhookWorker(settings, first_due)
        outbox = WebhookOutbox(worker.wake)
        await db.run_db(outbox.load)
        bus.local = hub
        bus.broker = broker
        bus.outbox = outbox
        return cls(hub, broker, worker)

    def close(self) -> None:
        """Detach from the bus, stop the broker's threads and the webhook worker (call off the
        event loop)."""
        bus.detach()
        self.webhooks.close(self.webhooks.settings.webhook_timeout + 1)
