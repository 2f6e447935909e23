"""Writers of one SQLite file in several processes queue in the kernel, not in SQLite's busy
handler.

SQLite's write lock is a file lock that a blocked writer polls: its busy handler sleeps 1, 2,
5, 10 … 100 ms between tries and often wakes to find the lock taken again, so writers in
several processes (``--workers N``, a ``labelgraph import`` beside a running server) waited
hundreds of milliseconds at p99 for transactions of about one millisecond. Threads of one
process already queue on the process's own turn (``server.db``); the thread whose turn it is
now also takes an exclusive ``flock`` on a file beside the database (``<database>-writer``)
before ``BEGIN IMMEDIATE``, and the kernel hands that lock to a blocked waiter the moment its
holder lets go.

The gate is a queue in front of SQLite's lock, never a replacement: a writer that does not take
it (it gave up waiting, or writes outside ``write_transaction``) still meets SQLite's own lock
and busy handler, so no write depends on the gate for its safety.

``flock`` cannot time out. A writer first tries it without waiting; when the lock is taken, the
gate's thread makes the blocking call and the writer waits for that thread up to its deadline.
A writer that gives up leaves the lock to the thread, which lets it go as soon as it gets it.
A lock belongs to the open file, not to a thread, so the writer releases what the thread took;
a forked child opens the file again rather than share its parent's lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import queue
import threading
import weakref
from typing import Any

log = logging.getLogger(__name__)
IDLE_SECONDS = 5.0  # the gate's thread ends after this long without a blocked wait

_WAITING, _GRANTED, _ABANDONED, _FAILED = range(4)


class _Wait:
    """One writer's blocked wait, served by the gate's thread."""

    __slots__ = ("event", "state")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.state = _WAITING


class WriterGate:
    """The cross-process writer lock of one SQLite file (see the module's docstring). Only
    one thread of a process asks for it at a time (the holder of the process's writer turn)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._pid = -1
        self._fd = -1

    def _reset_for_this_process(self) -> None:
        """First use, or first use in a forked child: the child's copy of the descriptor shares
        the parent's open file, hence the parent's lock, so it opens the file afresh (the
        copy is closed: that releases nothing while the parent keeps its own)."""
        if self._fd >= 0:
            os.close(self._fd)
        self._pid = os.getpid()
        try:  # flock needs no write access: a read-only open serves any user of the database
            self._fd = os.open(self.path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            self._fd = -1
            log.warning(
                "no writer gate for %s (%s): writers queue in SQLite's busy handler", self.path, exc
            )
        else:
            weakref.finalize(self, _close_quietly, self._fd, self._pid)
        self._mutex = threading.Lock()
        self._waits: queue.SimpleQueue[_Wait] = queue.SimpleQueue()
        self._outstanding = 0  # waits handed to the thread and not yet served
        self._thread: threading.Thread | None = None

    def try_acquire(self) -> bool:
        """Take the lock if it is free now (no wait); False otherwise."""
        if self._pid != os.getpid():
            self._reset_for_this_process()
        if self._fd < 0:
            return False
        with self._mutex:
            return self._try_now()

    def _try_now(self) -> bool:
        # While the thread still waits for an earlier (abandoned) turn, a direct try could
        # take the lock for this open file and the thread would then let it go under us.
        try:
            return not self._outstanding and _try_lock(self._fd)
        except OSError as exc:  # a file system without flock (some network ones)
            self._give_up(exc)
            return False

    def acquire(self, timeout: float) -> bool:
        """Take the lock, waiting at most ``timeout`` seconds; False if it was not taken."""
        if self._pid != os.getpid():
            self._reset_for_this_process()
        if self._fd < 0:
            return False
        with self._mutex:
            if self._try_now() or self._fd < 0:
                return self._fd >= 0
            wait = _Wait()
            self._outstanding += 1
            self._waits.put(wait)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name="labelgraph-sqlite-gate", daemon=True
                )
                self._thread.start()
        if wait.event.wait(max(timeout, 0.0)):
            return wait.state == _GRANTED
        with self._mutex:
            if wait.state == _GRANTED:  # handed over as the wait ran out: ours after all
                return True
            wait.state = _ABANDONED
            return False

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    @property
    def working(self) -> bool:
        """False once the gate stepped aside (no ``flock`` here): then :meth:`acquire` answers
        False at once, and writers go on ungated."""
        return self._fd >= 0

    def _give_up(self, exc: OSError) -> None:
        """No gate from now on (call holding the mutex): writers meet SQLite's lock alone."""
        log.warning(
            "no writer gate for %s (%s): writers queue in SQLite's busy handler", self.path, exc
        )
        self._fd = -1

    def _serve(self) -> None:
        """The gate's thread: makes each blocked wait, in arrival order."""
        while True:
            try:
                wait = self._waits.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                with self._mutex:
                    if self._outstanding == 0:
                        self._thread = None
                        return
                continue
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)  # the interpreter lock is let go meanwhile
            except OSError as exc:
                with self._mutex:
                    wait.state = _FAILED
                    wait.event.set()
                    self._outstanding -= 1
                    if self._fd >= 0:
                        self._give_up(exc)
                continue
            with self._mutex:
                if wait.state == _WAITING:
                    wait.state = _GRANTED
                    wait.event.set()
                else:  # its writer gave up: pass it on at once, before a direct try may run
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
                self._outstanding -= 1


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _close_quietly(fd: int, pid: int) -> None:
    if os.getpid() == pid:
        with contextlib.suppress(OSError):
            os.close(fd)


_gates: weakref.WeakKeyDictionary[Any, WriterGate | None] = weakref.WeakKeyDictionary()
_gates_mutex = threading.Lock()


def sqlite_file(database: Any) -> str:
    """The file of a peewee SQLite database ('' for an in-memory one)."""
    path = str(getattr(database, "database", "") or "")
    return "" if path == ":memory:" or path.startswith("file::memory:") else path


def gate_for(database: Any) -> WriterGate | None:
    """The writer gate of a peewee SQLite database (None for an in-memory one)."""
    try:
        return _gates[database]
    except KeyError:
        pass
    with _gates_mutex:
        if database not in _gates:
            path = sqlite_file(database)
            _gates[database] = WriterGate(f"{path}-writer") if path else None
        return _gates[database]
