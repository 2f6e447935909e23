"""The pools' lean checkout (server/lean_pool.py) keeps peewee's pool rules: connections reused
oldest first, stale or broken ones replaced, open transactions rolled back, waiters woken,
and the context stack that keeps nested ``connection_context()``s from closing a connection.
PostgreSQL's own rules (pings, rollbacks) are in tests/test_pg_pool.py."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playhouse.pool import PooledDatabase

from server import db
from server.errors import DomainError
from server.lean_pool import SqlitePool


def _pool(path: Path, bind: bool) -> SqlitePool:
    """A pool of two (one-second wait); bound to the global proxy as the server binds it."""
    made = (db.connect if bind else db.make_database)(f"sqlite:///{path}", 2, pool_wait=1)
    assert isinstance(made, SqlitePool)
    return made


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[SqlitePool]:
    made = _pool(tmp_path / "pool.db", bind=False)
    yield made
    made.close_all()


@pytest.fixture
def bound(tmp_path: Path) -> Iterator[SqlitePool]:
    made = _pool(tmp_path / "bound.db", bind=True)
    yield made
    made.close_all()


def connection_of(pool: SqlitePool) -> sqlite3.Connection:
    with pool.connection_context():
        connection: sqlite3.Connection = pool.connection()
        return connection


def test_a_pooled_connection_is_reused_without_peeweees_checkout(
    pool: SqlitePool, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[object] = []
    real = PooledDatabase._connect

    def counting(self: PooledDatabase) -> object:
        made.append(self)
        return real(self)

    monkeypatch.setattr(PooledDatabase, "_connect", counting)
    first = connection_of(pool)
    assert len(made) == 1  # the pool was empty: peewee made one
    for _ in range(3):
        assert connection_of(pool) is first
    assert len(made) == 1  # then the idle one was taken straight
    assert pool._in_use == {}
    assert [entry[2] for entry in pool._connections] == [first]
    assert pool.is_closed()


def test_the_oldest_idle_connection_goes_out_first(pool: SqlitePool) -> None:
    pool.connect()
    older = pool.connection()
    held = threading.Event()
    done = threading.Event()
    newer: list[object] = []

    def hold_another() -> None:
        with pool.connection_context():
            newer.append(pool.connection())
            held.set()
            done.wait(5)

    thread = threading.Thread(target=hold_another)
    thread.start()
    assert held.wait(5)
    pool.close()  # the older one back first
    done.set()
    thread.join(5)
    assert newer[0] is not older
    assert len(pool._connections) == 2
    assert connection_of(pool) is older  # by age, as peewee's heap orders them


def test_a_stale_connection_is_closed_on_checkout_and_on_checkin(pool: SqlitePool) -> None:
    first = connection_of(pool)
    pool._stale_timeout = 0.01
    time.sleep(0.02)
    with pool.connection_context():
        second = pool.connection()  # the idle one was stale: a new one was made...
        time.sleep(0.02)
    assert second is not first
    assert pool._connections == []  # ...which was stale too by the time it came back
    for closed in (first, second):
        with pytest.raises(Exception, match="closed"):
            closed.execute("SELECT 1")


def test_a_connection_the_driver_closed_is_discarded(pool: SqlitePool) -> None:
    first = connection_of(pool)
    first.close()
    second = connection_of(pool)
    assert second is not first
    assert [entry[2] for entry in pool._connections] == [second]


def test_a_connection_left_in_a_transaction_is_rolled_back(pool: SqlitePool) -> None:
    pool.execute_sql("CREATE TABLE t (x INTEGER)")
    pool.close()
    with pool.connection_context():
        pool.execute_sql("BEGIN")  # by hand: peewee does not know of it
        pool.execute_sql("INSERT INTO t VALUES (1)")
    with pool.connection_context():
        conn = pool.connection()
        assert not conn.in_transaction
        assert pool.execute_sql("SELECT count(*) FROM t").fetchone() == (0,)


def test_closing_inside_a_transaction_is_still_refused(pool: SqlitePool) -> None:
    with (
        pool.connection_context(),
        pool.atomic(),
        pytest.raises(Exception, match="transaction is open"),
    ):
        pool.close()


def test_a_waiting_thread_gets_the_connection_handed_back(pool: SqlitePool) -> None:
    """Pool of two, both held: a third thread waits and is woken by a check-in."""
    holding = threading.Barrier(3)
    release = threading.Event()

    def hold() -> None:
        with pool.connection_context():
            holding.wait(5)
            release.wait(5)

    holders = [threading.Thread(target=hold) for _ in range(2)]
    for holder in holders:
        holder.start()
    holding.wait(5)
    got: list[float] = []

    def wait_for_one() -> None:
        started = time.monotonic()
        with pool.connection_context():
            got.append(time.monotonic() - started)

    waiter = threading.Thread(target=wait_for_one)
    waiter.start()
    time.sleep(0.1)
    assert got == []  # still waiting
    release.set()
    waiter.join(5)
    for holder in holders:
        holder.join(5)
    assert len(got) == 1 and got[0] < 0.9  # woken by the check-in, not by its timeout


def test_with_connection_keeps_nested_contexts_and_released(bound: SqlitePool) -> None:
    def work() -> tuple[object, object, object]:
        conn = db.database.connection()
        with db.database.connection_context():  # nested: must not close ours
            pass
        assert not db.database.is_closed()
        with db.released():
            assert db.database.is_closed()
            assert len(bound._connections) == 1  # handed back meanwhile
        again = db.database.connection()
        with db.database.connection_context():
            pass
        assert not db.database.is_closed()
        return conn, again, db.database.connection()

    conn, again, last = db.with_connection(work)
    assert again is conn and last is conn  # the one handed back was taken again
    assert db.database.is_closed()
    assert bound._in_use == {}
    assert db.database._state.ctx == []


def test_with_connection_closes_after_an_error(bound: SqlitePool) -> None:
    def fail() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        db.with_connection(fail)
    assert db.database.is_closed()
    assert bound._in_use == {}
    assert len(bound._connections) == 1


def test_with_connection_refuses_when_no_connection_came_free(bound: SqlitePool) -> None:
    release = threading.Event()
    holding = threading.Barrier(3)

    def hold() -> None:
        def wait() -> None:
            holding.wait(5)
            release.wait(5)

        db.with_connection(wait)

    holders = [threading.Thread(target=hold) for _ in range(2)]
    for holder in holders:
        holder.start()
    holding.wait(5)
    try:
        with pytest.raises(DomainError) as refused:
            db.with_connection(lambda: None)
        assert refused.value.code == "database_busy"
    finally:
        release.set()
        for holder in holders:
            holder.join(5)
    assert db.with_connection(lambda: 42) == 42
