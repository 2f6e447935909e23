"""Events between processes through PostgreSQL ``LISTEN``/``NOTIFY``.

Two threads per process, each with a dedicated connection (autocommit, outside the pool): the
publisher sends each batch of committed events as ``pg_notify`` payloads (compact JSON of ids,
under PostgreSQL's 8000-byte limit), the listener waits on its socket and hands what other
processes sent to the bus. Events are published after their transaction committed, from the
publisher thread, so writers never wait for it and no statement is added to their transaction.
Delivery is at most once: a process that dies between its commit and the NOTIFY loses those
events (subscribers re-read state when they reconnect). A lost connection is re-opened with a
growing pause (at most :data:`MAX_PAUSE` seconds); events published meanwhile are dropped.

``broadcaster`` (encode) would fit the idea, but its PostgreSQL backend needs ``asyncpg`` (a
second driver beside psycopg2) and publishes from the event loop, while our events are emitted
by synchronous services on worker threads; this module is small enough to own.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import select
import threading
import uuid
from collections.abc import Callable
from typing import Any

from server.services.events.event import Event, decode, encode

log = logging.getLogger(__name__)
CHANNEL = "labelgraph_events"
MAX_PAUSE = 5.0
POLL = 5.0  # the listener's longest wait on its sockets before it looks at its stop flag
_STOP = object()


class PostgresBroker:
    def __init__(
        self, connect: Callable[[], Any], on_events: Callable[[list[Event]], None]
    ) -> None:
        self.origin = uuid.uuid4().hex
        self._connect = connect
        self._on_events = on_events
        self._outgoing: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._listening = threading.Event()
        # The listener waits on its connection and on this pipe: close() writes to it, so a
        # process (or a test's app) shuts down at once instead of after the next poll.
        self._wake_read, self._wake_write = os.pipe()
        self._threads = [
            threading.Thread(target=self._publish_loop, name="labelgraph-events-pub", daemon=True),
            threading.Thread(target=self._listen_loop, name="labelgraph-events-sub", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @property
    def has_peers(self) -> bool:
        return True  # processes on other hosts may listen: PostgreSQL does not say

    def wait_listening(self, timeout: float) -> bool:
        """Whether the listener is subscribed to the channel (waits up to ``timeout``)."""
        return self._listening.wait(timeout)

    def send(self, events: list[Event]) -> None:
        self._outgoing.put(events)

    def close(self) -> None:
        """Stop both threads (at once: the listener is woken) and close their connections."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._outgoing.put(_STOP)
        os.write(self._wake_write, b"x")
        for thread in self._threads:
            thread.join(timeout=5)
        if not any(thread.is_alive() for thread in self._threads):
            os.close(self._wake_read)
            os.close(self._wake_write)

    # -- threads ---------------------------------------------------------------------------

    def _open(self, pause: float) -> tuple[Any, float]:
        """A new autocommit connection, retrying with a growing pause until stopped."""
        while not self._stopping.is_set():
            try:
                connection = self._connect()
                connection.autocommit = True
                return connection, 0.1
            except Exception as exc:
                log.warning("event broker: cannot connect to PostgreSQL (%s)", exc)
                self._stopping.wait(pause)
                pause = min(pause * 2, MAX_PAUSE)
        return None, pause

    def _publish_loop(self) -> None:
        connection, pause = None, 0.1
        while True:
            item = self._outgoing.get()
            if item is _STOP:
                break
            batch: list[Event] = list(item)  # type: ignore[call-overload]
            while not self._outgoing.empty():  # join what queued meanwhile
                more = self._outgoing.get()
                if more is _STOP:
                    self._stopping.set()
                    break
                batch.extend(more)  # type: ignore[arg-type]
            if connection is None:
                connection, pause = self._open(pause)
                if connection is None:
                    break
            try:
                with connection.cursor() as cursor:
                    for message in encode(self.origin, batch):
                        cursor.execute("SELECT pg_notify(%s, %s)", (CHANNEL, message))
            except Exception as exc:
                log.warning("event broker: NOTIFY failed (%s); %d events lost", exc, len(batch))
                _close(connection)
                connection = None
            if self._stopping.is_set():
                break
        _close(connection)

    def _listen_loop(self) -> None:
        connection, pause = None, 0.1
        while not self._stopping.is_set():
            if connection is None:
                connection, pause = self._open(pause)
                if connection is None:
                    break
                try:
                    with connection.cursor() as cursor:
                        cursor.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                except Exception as exc:
                    log.warning("event broker: LISTEN failed (%s)", exc)
                    _close(connection)
                    connection = None
                    continue
            try:
                readable, _, _ = select.select([connection, self._wake_read], [], [], POLL)
                if connection not in readable:
                    continue
                connection.poll()
                while connection.notifies:
                    note = connection.notifies.pop(0)
                    origin, events = decode(note.payload)
                    if origin != self.origin and events:
                        self._on_events(events)
            except Exception as exc:
                log.warning("event broker: listening failed (%s); reconnecting", exc)
                self._listening.clear()
                _close(connection)
                connection = None
        _close(connection)


def _close(connection: Any) -> None:
    if connection is not None:
        with contextlib.suppress(Exception):
            connection.close()


def postgres_connector(database: Any) -> Callable[[], Any]:
    """How to open a dedicated connection to the database a peewee pool uses."""
    import psycopg2

    name, params = database.database, dict(database.connect_params)

    def connect() -> Any:
        return psycopg2.connect(dbname=name, **params)

    return connect
