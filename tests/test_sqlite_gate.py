"""The cross-process writer gate of a SQLite file (server/sqlite_gate.py).

``flock`` treats two opens of one file as two owners even within one process, so a second
descriptor of the gate's file stands in for "another process" in most of these tests; the
last ones use real processes.
"""

from __future__ import annotations

import errno
import fcntl
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import peewee
import pytest

from server import db, sqlite_gate
from server.sqlite_gate import WriterGate
from tests.conftest import TEST_DATABASE_URL
from tests.peewee_typed import execute_sql
from tests.waiting import eventually

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def other(tmp_path: Path) -> Iterator[int]:
    """A second open of the gate's file: a competitor with its own lock."""
    fd = os.open(tmp_path / "x.db-writer", os.O_RDONLY | os.O_CREAT)
    yield fd
    os.close(fd)


def can_take(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    fcntl.flock(fd, fcntl.LOCK_UN)
    return True


def test_the_gate_excludes_other_owners_while_held(tmp_path: Path, other: int) -> None:
    gate = WriterGate(str(tmp_path / "x.db-writer"))
    assert gate.acquire(timeout=1)
    assert not can_take(other)
    gate.release()
    assert can_take(other)


def test_a_blocked_writer_gets_the_lock_once_the_holder_lets_go(tmp_path: Path, other: int) -> None:
    gate = WriterGate(str(tmp_path / "x.db-writer"))
    fcntl.flock(other, fcntl.LOCK_EX)
    assert not gate.acquire(timeout=0.05)  # held elsewhere: the wait runs out
    fcntl.flock(other, fcntl.LOCK_UN)
    # The abandoned wait's thread takes the lock and passes it straight on.
    assert eventually(lambda: can_take(other))

    fcntl.flock(other, fcntl.LOCK_EX)
    taken = threading.Event()

    def take() -> None:
        if gate.acquire(timeout=30):
            taken.set()

    waiter = threading.Thread(target=take)
    waiter.start()
    assert not taken.wait(0.1)
    fcntl.flock(other, fcntl.LOCK_UN)
    waiter.join(30)
    assert taken.is_set()
    assert not can_take(other)
    gate.release()
    assert can_take(other)


@pytest.mark.parametrize("slowed", ["after taking", "before letting go"])
def test_a_writer_after_an_abandoned_wait_is_not_let_go_under(
    tmp_path: Path, other: int, monkeypatch: pytest.MonkeyPatch, slowed: str
) -> None:
    """Once the gate's thread has the lock for an abandoned turn, and until it has let go, the
    lock belongs to the gate's open file: a direct try by a new writer would "take" it too,
    and the thread would then let go of the lock that writer holds. New writers wait until the
    thread has let go. The thread is slowed here in either half of that window: between its
    blocking call and looking at the turn (which it otherwise does within the interpreter's
    switch interval), or just before it lets go."""
    gate = WriterGate(str(tmp_path / "x.db-writer"))
    in_window = threading.Event()

    class SlowThread:
        LOCK_EX, LOCK_NB, LOCK_UN = fcntl.LOCK_EX, fcntl.LOCK_NB, fcntl.LOCK_UN

        @staticmethod
        def flock(fd: int, operation: int) -> None:
            by_thread = threading.current_thread() is gate._thread
            if by_thread and operation == fcntl.LOCK_UN and slowed == "before letting go":
                in_window.set()
                time.sleep(0.3)
            fcntl.flock(fd, operation)
            if by_thread and operation == fcntl.LOCK_EX and slowed == "after taking":
                in_window.set()
                time.sleep(0.3)

    monkeypatch.setattr(sqlite_gate, "fcntl", SlowThread)
    fcntl.flock(other, fcntl.LOCK_EX)
    assert not gate.acquire(timeout=0.05)  # the thread now waits for this abandoned turn
    fcntl.flock(other, fcntl.LOCK_UN)
    assert in_window.wait(10)
    assert gate.acquire(timeout=30)
    time.sleep(0.4)  # the thread is done with its abandoned turn by now
    assert not can_take(other)
    gate.release()
    assert can_take(other)


@pytest.mark.skipif(bool(TEST_DATABASE_URL), reason="swaps the database for a SQLite file")
def test_write_transactions_hold_the_gate_of_their_file(tmp_path: Path) -> None:
    previous = db.database.obj
    db.connect(f"sqlite:///{tmp_path / 'x.db'}", 4)
    fd = os.open(tmp_path / "x.db-writer", os.O_RDONLY | os.O_CREAT)
    try:
        with db.database.connection_context():
            db.database.execute_sql("CREATE TABLE t (n INTEGER)")
            with db.write_transaction():
                db.database.execute_sql("INSERT INTO t VALUES (1)")
                assert not can_take(fd)
            assert can_take(fd)
    finally:
        os.close(fd)
        db.database.close()
        if previous is not None:
            db.database.initialize(previous)


def test_an_in_memory_database_has_no_gate() -> None:
    assert sqlite_gate.gate_for(peewee.SqliteDatabase(":memory:")) is None
    assert sqlite_gate.gate_for(peewee.SqliteDatabase("/tmp/some.db")) is not None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_child_does_not_share_its_parents_lock(tmp_path: Path) -> None:
    """A child's copy of the descriptor is the parent's open file: taking the lock through it
    would succeed while the parent holds it. The child opens the file afresh instead."""
    gate = WriterGate(str(tmp_path / "x.db-writer"))
    assert gate.acquire(timeout=1)
    pid = os.fork()
    if pid == 0:  # the child: the parent holds the lock, so this must run out
        os._exit(0 if not gate.acquire(timeout=0.2) else 1)
    _, status = os.waitpid(pid, 0)
    gate.release()
    assert os.waitstatus_to_exitcode(status) == 0


WRITER = """
import sys
from server import db
db.connect("sqlite:///" + sys.argv[1], 4)
with db.database.connection_context():
    for n in range(int(sys.argv[3])):
        with db.write_transaction():
            db.database.execute_sql("INSERT INTO t (who, n) VALUES (?, ?)", (sys.argv[2], n))
"""


def test_writers_in_several_processes_keep_every_write(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    maker = peewee.SqliteDatabase(str(path), pragmas=db.SQLITE_PRAGMAS)
    execute_sql(maker, "CREATE TABLE t (who TEXT, n INTEGER)")
    maker.close()
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), name, "300"], cwd=REPO_ROOT)
        for name in ("a", "b", "c")
    ]
    assert [w.wait(120) for w in writers] == [0, 0, 0]
    reader = peewee.SqliteDatabase(str(path))
    rows = execute_sql(reader, "SELECT who, COUNT(*), COUNT(DISTINCT n) FROM t GROUP BY who")
    assert sorted(rows.fetchall()) == [("a", 300, 300), ("b", 300, 300), ("c", 300, 300)]
    reader.close()
    assert (tmp_path / "shared.db-writer").exists()


class NoFlock:
    """A file system without ``flock`` (some network ones): every call fails."""

    LOCK_EX, LOCK_NB, LOCK_UN = fcntl.LOCK_EX, fcntl.LOCK_NB, fcntl.LOCK_UN

    @staticmethod
    def flock(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")


def test_without_flock_the_gate_steps_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    gate = WriterGate(str(tmp_path / "x.db-writer"))
    monkeypatch.setattr(sqlite_gate, "fcntl", NoFlock)
    assert not gate.acquire(timeout=30)
    assert "writers queue in SQLite's busy handler" in caplog.text
    assert not gate.acquire(timeout=30)  # given up: no more tries


def test_a_failing_blocking_wait_ends_the_writers_wait_at_once(
    tmp_path: Path, other: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = WriterGate(str(tmp_path / "x.db-writer"))

    class BlockingCallFails:
        LOCK_EX, LOCK_NB, LOCK_UN = fcntl.LOCK_EX, fcntl.LOCK_NB, fcntl.LOCK_UN

        @staticmethod
        def flock(fd: int, operation: int) -> None:
            if operation == fcntl.LOCK_EX:
                raise OSError(errno.ENOLCK, "No locks available")
            fcntl.flock(fd, operation)

    monkeypatch.setattr(sqlite_gate, "fcntl", BlockingCallFails)
    fcntl.flock(other, fcntl.LOCK_EX)  # the direct try fails, so the thread makes the call
    answered = threading.Event()

    def answer() -> None:
        if not gate.acquire(timeout=60):
            answered.set()

    waiter = threading.Thread(target=answer)
    waiter.start()
    assert answered.wait(10)  # long before its own minute: the thread's failure ended it
    waiter.join()


@pytest.mark.skipif(bool(TEST_DATABASE_URL), reason="swaps the database for a SQLite file")
def test_writes_go_on_without_flock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    previous = db.database.obj
    db.connect(f"sqlite:///{tmp_path / 'x.db'}", 4)
    monkeypatch.setattr(sqlite_gate, "fcntl", NoFlock)
    try:
        with db.database.connection_context():
            db.database.execute_sql("CREATE TABLE t (n INTEGER)")
            for n in range(3):
                with db.write_transaction():
                    db.database.execute_sql("INSERT INTO t VALUES (?)", (n,))
            assert db.database.execute_sql("SELECT COUNT(*) FROM t").fetchone()[0] == 3
            assert not db._sqlite_writer.locked()
    finally:
        db.database.close()
        if previous is not None:
            db.database.initialize(previous)
