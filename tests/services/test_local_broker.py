"""Events between processes sharing a SQLite file (server/services/events/local_broker.py).

Two brokers in one test process stand for two server processes: each has its own socket and
registration, exactly as in separate processes. The end-to-end case (two real servers on one
project directory) is in tests/test_live_cross_process.py.
"""

from __future__ import annotations

import hashlib
import os
import queue
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.services.events import Event, bus
from server.services.events.event import encode
from server.services.events.local_broker import POLL, LocalBroker, open_broker
from tests.waiting import eventually

Received = queue.Queue[list[Event]]


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    return tmp_path / "project.db-events"


@pytest.fixture
def pair(registry: Path) -> Iterator[tuple[LocalBroker, LocalBroker, Received]]:
    received: Received = queue.Queue()
    sender = LocalBroker(registry, lambda batch: None)
    listener = LocalBroker(registry, received.put)
    yield sender, listener, received
    sender.close()
    listener.close()


def test_events_travel_to_the_other_process(
    pair: tuple[LocalBroker, LocalBroker, Received], registry: Path
) -> None:
    sender, listener, received = pair
    # The listener, started second, greeted the sender; once welcomed it is a known peer.
    assert listener.wait_listening(10) and sender.has_peers and listener.has_peers
    assert len(list(registry.iterdir())) == 2
    many = [Event("task.created", 7, (n,)) for n in range(400)]  # several messages' worth
    sender.send([Event("completion.created", 7, (1,), {"task": 3})])
    assert [(e.kind, e.project_id, e.ids, e.data) for e in received.get(timeout=10)] == [
        ("completion.created", 7, (1,), {"task": 3})
    ]
    sender.send(many)
    got: list[Event] = []
    while len(got) < len(many):
        got += received.get(timeout=10)
    assert [e.ids for e in got] == [e.ids for e in many]


def test_closing_says_goodbye_unregisters_and_returns_at_once(
    pair: tuple[LocalBroker, LocalBroker, Received], registry: Path
) -> None:
    sender, listener, _ = pair
    assert eventually(lambda: sender.has_peers)
    started = time.monotonic()
    listener.close()
    assert time.monotonic() - started < POLL / 2
    assert eventually(lambda: not sender.has_peers)
    assert len(list(registry.iterdir())) == 1


def test_a_dead_process_is_found_and_unregistered(registry: Path) -> None:
    registry.mkdir()
    (registry / "999999-000000000000").touch()  # registered, but nobody binds its socket
    broker = LocalBroker(registry, lambda batch: None)
    try:
        assert broker.wait_listening(0)  # nobody alive to wait for
        assert not broker.has_peers
        assert [p.name for p in registry.iterdir()] != [] and not (
            registry / "999999-000000000000"
        ).exists()
    finally:
        broker.close()


def test_a_lone_process_makes_the_bus_build_no_events(registry: Path) -> None:
    """With no peer, nobody else listens: writes skip building events, as with no broker."""
    broker = LocalBroker(registry, lambda batch: None)
    assert bus.broker is None
    bus.broker = broker
    try:
        assert not bus.listening()
        other = LocalBroker(registry, lambda batch: None)
        assert eventually(bus.listening)
        other.close()
        assert eventually(lambda: not bus.listening())
    finally:
        bus.broker = None
        broker.close()


@pytest.mark.skipif(not hasattr(os, "fork") or os.getuid() != 0, reason="needs root to setuid")
def test_datagrams_of_another_user_are_ignored(registry: Path) -> None:
    """Abstract sockets have no permissions: another user's process can send to one. What it
    sends is dropped (the kernel's credentials of each datagram name its user)."""
    received: Received = queue.Queue()
    broker = LocalBroker(registry, received.put)
    address = broker._address(broker._name)
    message = encode("someone-else", [Event("users.disabled", 0, (1,))])[0].encode()
    try:
        pid = os.fork()
        if pid == 0:  # the child: another user sends a forged event
            try:
                os.setuid(65534)
                with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                    sock.sendto(message, address)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:  # the same, by our user
            sock.sendto(message, address)
        first = received.get(timeout=10)  # ours arrives; the other user's never did
        assert [e.kind for e in first] == ["users.disabled"]
        time.sleep(0.2)
        assert received.empty()
    finally:
        broker.close()


def test_without_a_registry_the_server_runs_on_hearing_only_itself(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "file").write_text("not a directory")
    assert open_broker(str(tmp_path / "file" / "project.db"), lambda batch: None) is None
    assert "other processes' writes go unheard" in caplog.text
    broker = open_broker(str(tmp_path / "project.db"), lambda batch: None)
    assert broker is not None
    broker.close()


def test_a_peer_that_never_answers_is_waited_for_only_so_long(registry: Path) -> None:
    """A registered process that is alive but does not answer (hung) delays a new one's
    start-up by at most its wait."""
    registry.mkdir()
    namespace = hashlib.sha256(str(registry.resolve()).encode()).hexdigest()[:24]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as silent:
        silent.bind(f"\0labelgraph-events/{namespace}/1-silent".encode())
        (registry / "1-silent").touch()
        broker = LocalBroker(registry, lambda batch: None)
        try:
            assert broker.has_peers
            assert not broker.wait_listening(0.2)
            assert silent.recv(100) == b"hello"
        finally:
            broker.close()
