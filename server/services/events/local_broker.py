"""Events between the processes of one host that share a SQLite database (``--workers N``,
or several servers started on one project directory).

PostgreSQL carries events between processes with ``LISTEN``/``NOTIFY`` (:mod:`.pg_broker`);
SQLite has nothing of the kind, but its processes share one host. Each process binds a Unix
datagram socket in Linux's abstract namespace (no file to clean up, no path-length limit) and
registers it as an empty file named after it in a directory beside the database
(``<database>-events/``). A new process greets every registered one, so each knows its peers
without listing the directory per write, and waits briefly for their welcome: from then on
they send it their writes, so nothing committed after its start-up reads is missed. One that
leaves says goodbye and removes its file; one that died is found when a send to it is
refused, and its file is removed then.

Events are published by the writer's thread once its transaction committed, as the same
compact JSON messages as PostgreSQL's (under 8000 bytes each), sent to every peer without
waiting: a send is a system call that never blocks, cheaper than waking a publisher thread
(which cost a thread switch and a turn of the interpreter lock per write). A peer whose
receive buffer is full loses that message: delivery is at most once, as with PostgreSQL
(subscribers re-read state when they reconnect). With no peer (one process), the broker tells
the bus nobody else listens, so a lone server's writes build no events for it.

Abstract sockets have no file permissions: any local user could send to one. Each datagram
carries its sender's credentials (``SO_PASSCRED``, filled in by the kernel), and only those of
this process's own user are read. (The other way round, a local user who binds a dead peer's
name before it is found dead would receive events: kinds, project and object ids, counts;
never task data.)
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import select
import socket
import struct
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

from server.services.events.event import Event, decode, encode

log = logging.getLogger(__name__)
SUPPORTED = sys.platform == "linux"  # abstract sockets and SO_PASSCRED
POLL = 5.0  # the listener's longest wait before it looks at its stop flag
RECEIVE_BUFFER = 1 << 20  # asked for; the kernel caps it (net.core.rmem_max)
MAX_MESSAGE = 65536
_HELLO, _WELCOME, _BYE = b"hello", b"welcome", b"bye"
_CREDENTIALS = struct.Struct("iII")  # struct ucred: pid, uid, gid


def open_broker(database_path: str, on_events: Callable[[list[Event]], None]) -> LocalBroker | None:
    """The broker of the processes sharing ``database_path``; None where it cannot run (not
    Linux, or the registry cannot be made: then each process hears only its own writes)."""
    if not SUPPORTED:
        return None
    try:
        return LocalBroker(registry_for(database_path), on_events)
    except OSError as exc:
        log.warning(
            "event broker: none beside %s (%s); other processes' writes go unheard",
            database_path,
            exc,
        )
        return None


def registry_for(database_path: str) -> Path:
    """The directory where processes sharing ``database_path`` register their sockets."""
    return Path(f"{database_path}-events")


class LocalBroker:
    """Same interface as :class:`.pg_broker.PostgresBroker` (``send``, ``close``,
    ``wait_listening``), plus :attr:`has_peers`."""

    def __init__(self, registry: Path, on_events: Callable[[list[Event]], None]) -> None:
        self.origin = uuid.uuid4().hex
        self._on_events = on_events
        self._registry = registry
        self._namespace = hashlib.sha256(str(registry.resolve()).encode()).hexdigest()[:24]
        self._name = f"{os.getpid()}-{self.origin[:12]}"
        self._peers: set[str] = set()
        self._peers_mutex = threading.Lock()
        self._stopping = threading.Event()
        self._unwelcomed: set[str] = set()  # greeted at start-up, not answered yet
        self._welcomed = threading.Event()
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            self._socket.bind(self._address(self._name))  # before registering: greetings arrive
            registry.mkdir(mode=0o700, exist_ok=True)
            (registry / self._name).touch()
        except OSError:
            self._socket.close()
            raise
        for peer in self._listed_peers():
            if self._send_to(peer, _HELLO):
                self._add_peer(peer)
                self._unwelcomed.add(peer)
        if not self._unwelcomed:
            self._welcomed.set()
        self._wake_read, self._wake_write = os.pipe()
        self._listener = threading.Thread(
            target=self._listen_loop, name="labelgraph-events-sub", daemon=True
        )
        self._listener.start()

    @property
    def has_peers(self) -> bool:
        """Whether another process shares the database (and so may want this one's events)."""
        return bool(self._peers)

    def wait_listening(self, timeout: float) -> bool:
        """Whether every process greeted at start-up has answered (and so sends this one its
        writes from now on), waiting up to ``timeout``; the socket itself was bound at once."""
        return self._welcomed.wait(timeout)

    def send(self, events: list[Event]) -> None:
        """Send committed events to every peer (the writer's thread; never blocks)."""
        peers = self._peer_list()
        if not peers or self._stopping.is_set():
            return
        messages = [message.encode() for message in encode(self.origin, events)]
        for peer in peers:
            for message in messages:
                if not self._send_to(peer, message):
                    break

    def close(self) -> None:
        """Say goodbye, stop the listener (at once: it is woken), unregister."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        os.write(self._wake_write, b"x")
        self._listener.join(timeout=5)
        for peer in self._peer_list():
            self._send_to(peer, _BYE)
        with contextlib.suppress(OSError):
            (self._registry / self._name).unlink()
        if not self._listener.is_alive():
            self._socket.close()
            os.close(self._wake_read)
            os.close(self._wake_write)

    # -- peers -----------------------------------------------------------------------------

    def _address(self, name: str) -> bytes:
        return f"\0labelgraph-events/{self._namespace}/{name}".encode()

    def _listed_peers(self) -> list[str]:
        try:
            names = os.listdir(self._registry)
        except OSError:
            return []
        return [name for name in names if name != self._name]

    def _peer_list(self) -> list[str]:
        with self._peers_mutex:
            return list(self._peers)

    def _add_peer(self, name: str) -> None:
        with self._peers_mutex:
            self._peers.add(name)

    def _drop_peer(self, name: str, *, dead: bool) -> None:
        with self._peers_mutex:
            self._peers.discard(name)
        self._welcome_from(name)  # gone: nothing to wait for
        if dead:  # nobody binds its socket any more: its process is gone
            with contextlib.suppress(OSError):
                (self._registry / name).unlink()

    def _welcome_from(self, name: str) -> None:
        with self._peers_mutex:
            self._unwelcomed.discard(name)
            if not self._unwelcomed:
                self._welcomed.set()

    def _send_to(self, peer: str, message: bytes) -> bool:
        """Send without waiting; False if the peer is gone (its registration is removed)."""
        try:
            self._socket.sendto(message, socket.MSG_DONTWAIT, self._address(peer))
        except (BlockingIOError, InterruptedError):
            log.warning("event broker: process %s is not keeping up; a message was lost", peer)
        except OSError as exc:
            if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
                self._drop_peer(peer, dead=True)
                return False
            log.warning("event broker: sending to %s failed (%s)", peer, exc)
        return True

    # -- threads ---------------------------------------------------------------------------

    def _listen_loop(self) -> None:
        listened = self._socket.fileno()
        while not self._stopping.is_set():
            try:
                readable, _, _ = select.select([listened, self._wake_read], [], [], POLL)
            except OSError as exc:
                log.warning("event broker: waiting failed (%s)", exc)
                continue
            if listened in readable:
                events = self._receive_waiting()
                try:
                    if events:
                        self._on_events(events)
                except Exception:  # the listener must outlive a failing sink
                    log.exception("event broker: handing on %d events failed", len(events))

    def _receive_waiting(self) -> list[Event]:
        """Every datagram waiting (several writes' events are handed on in one call): greetings
        and goodbyes update the peers, events are decoded."""
        events: list[Event] = []
        own_user = os.getuid()
        while True:
            try:
                payload, extra, _flags, sender = self._socket.recvmsg(
                    MAX_MESSAGE, socket.CMSG_SPACE(_CREDENTIALS.size), socket.MSG_DONTWAIT
                )
            except (BlockingIOError, InterruptedError):
                return events
            except OSError as exc:
                if not self._stopping.is_set():
                    log.warning("event broker: receiving failed (%s)", exc)
                return events
            if _sender_uid(extra) != own_user:
                continue  # another user's process: not one of ours
            if payload in (_HELLO, _WELCOME, _BYE):
                peer = _peer_name(sender)
                if peer and payload == _HELLO:
                    self._add_peer(peer)  # before the welcome: its sender may count on it
                    self._send_to(peer, _WELCOME)
                elif peer and payload == _WELCOME:
                    self._welcome_from(peer)
                elif peer:
                    self._drop_peer(peer, dead=False)
                continue
            origin, received = decode(payload)
            if origin != self.origin:
                events += received


def _sender_uid(ancillary: list[tuple[int, int, bytes]]) -> int | None:
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            return int(_CREDENTIALS.unpack(data[: _CREDENTIALS.size])[1])
    return None


def _peer_name(address: object) -> str:
    """The registered name in a sender's abstract address ('' if it is not one of ours)."""
    if isinstance(address, bytes):
        address = address.decode(errors="replace")
    if not isinstance(address, str) or not address.startswith("\0labelgraph-events/"):
        return ""
    return address.rsplit("/", 1)[-1]
