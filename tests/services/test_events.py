"""Events are published once their write transaction commits, and only then."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from server.db import database, make_database, with_connection, write_transaction
from server.services import events
from server.services.events import Event, bus
from server.services.events.event import decode, encode
from server.services.events.pg_broker import POLL, PostgresBroker, postgres_connector
from tests.conftest import TEST_DATABASE_URL


class Recorder:
    """A local sink that keeps what the bus hands it (stands in for the hub's dispatch)."""

    has_subscribers = True

    def __init__(self) -> None:
        self.batches: list[list[Event]] = []

    def dispatch_threadsafe(self, batch: list[Event]) -> None:
        self.batches.append(batch)

    @property
    def kinds(self) -> list[str]:
        return [e.kind for batch in self.batches for e in batch]


@pytest.fixture
def recorder(client: TestClient) -> Iterator[Recorder]:
    """The app's bus with a recorder in place of its hub (the app's database is connected)."""
    previous, recording = bus.local, Recorder()
    bus.local = recording
    try:
        yield recording
    finally:
        bus.local = previous


def test_events_wait_for_the_commit(recorder: Recorder) -> None:
    def work() -> None:
        with write_transaction():
            events.emit(events.TASK_UPDATED, 1, (7,))
            with write_transaction():  # nested: joins the outer scope
                events.emit(events.TASK_DELETED, 1, (8,))
            assert recorder.batches == []  # not committed yet
        assert recorder.kinds == [events.TASK_UPDATED, events.TASK_DELETED]

    with_connection(work)
    assert len(recorder.batches) == 1  # one batch per commit


def test_a_rolled_back_transaction_publishes_nothing(recorder: Recorder) -> None:
    def work() -> None:
        with pytest.raises(RuntimeError), write_transaction():
            events.emit(events.TASK_CREATED, 1, (1,))
            raise RuntimeError("rolled back")
        assert not database.in_transaction()

    with_connection(work)
    assert recorder.batches == []


def test_a_failed_savepoint_drops_only_its_own_events(recorder: Recorder) -> None:
    def work() -> None:
        with write_transaction():
            events.emit(events.TASK_UPDATED, 1, (1,))
            with pytest.raises(RuntimeError), write_transaction():
                events.emit(events.TASK_DELETED, 1, (2,))
                raise RuntimeError("savepoint rolled back")
            events.emit(events.TASK_LABELED, 1, (3,))

    with_connection(work)
    assert recorder.kinds == [events.TASK_UPDATED, events.TASK_LABELED]


def test_nobody_listening_costs_no_event() -> None:
    """Without a hub, broker or webhook, ``emit`` returns before building anything."""
    assert bus.local is None and bus.broker is None and bus.outbox is None
    assert not bus.wanted(1)


def test_wire_messages_stay_under_the_notify_limit() -> None:
    many = [events.bulk(events.TASK_CREATED, 3, list(range(10**6, 10**6 + 5000)))] * 3
    messages = encode("me", many)
    assert all(len(m.encode()) < 8000 for m in messages)
    decoded = [e for m in messages for e in decode(m)[1]]
    assert [(e.kind, e.project_id, e.count) for e in decoded] == [
        (events.TASK_CREATED, 3, 5000)
    ] * 3
    assert decoded[0].ids == tuple(range(10**6, 10**6 + events.MAX_IDS))
    assert (
        decode(b'{"o": "x", "e": [["task.nope", 1, [], {}], ["task.created", "1", [], {}]]}')[1]
        == []
    )


@pytest.mark.skipif(not TEST_DATABASE_URL, reason="the broker runs on PostgreSQL only")
def test_the_broker_carries_events_between_processes_and_closes_at_once() -> None:
    """Two brokers stand for two processes: what one sends, the other receives (never its own
    events). Closing wakes the listener from its wait, so a process shuts down at once rather
    than after the poll."""
    database = make_database(TEST_DATABASE_URL, 1)
    received: queue.SimpleQueue[list[Event]] = queue.SimpleQueue()
    sender = PostgresBroker(postgres_connector(database), lambda batch: received.put(batch))
    listener = PostgresBroker(postgres_connector(database), lambda batch: received.put(batch))
    try:
        assert sender.wait_listening(10) and listener.wait_listening(10)
        sender.send([Event(events.TASK_UPDATED, 7, (1, 2))])
        batch = received.get(timeout=10)
        assert [(e.kind, e.project_id, e.ids) for e in batch] == [(events.TASK_UPDATED, 7, (1, 2))]
    finally:
        started = time.monotonic()
        sender.close()
        listener.close()
        closed_in = time.monotonic() - started
    assert received.empty()  # the sender did not hear itself
    assert closed_in < POLL / 2, f"close took {closed_in:.2f} s: the listener was not woken"
