"""PostgreSQL's pool (server/pg_pool.py) pings only connections that sat idle in the pool, and
still finds a connection the server closed while it sat there."""

from __future__ import annotations

import pytest

from server import db
from server.pg_pool import PostgresPool
from tests.conftest import TEST_DATABASE_URL

pytestmark = pytest.mark.skipif(not TEST_DATABASE_URL, reason="PostgreSQL only")


def make_pool() -> PostgresPool:
    pool = db.make_database(TEST_DATABASE_URL or "", 4)
    assert isinstance(pool, PostgresPool)
    return pool


def test_a_connection_back_a_moment_ago_is_not_pinged(monkeypatch: pytest.MonkeyPatch) -> None:
    pool = make_pool()
    pings: list[int] = []
    real = pool._adapter.is_connection_closed

    def counting(conn: object) -> bool:
        pings.append(id(conn))
        return bool(real(conn))

    monkeypatch.setattr(pool._adapter, "is_connection_closed", counting)
    try:
        for _ in range(3):
            with pool.connection_context():
                assert pool.execute_sql("SELECT 41 + 1").fetchone() == (42,)
        assert pings == []  # one connection, handed back and out again at once
        pool.ping_after = 0.0  # now every checkout of a pooled connection pings
        with pool.connection_context():
            assert pool.execute_sql("SELECT 1").fetchone() == (1,)
        assert len(pings) == 1
    finally:
        pool.close_all()


def test_a_connection_closed_while_idle_in_the_pool_is_replaced() -> None:
    pool = make_pool()
    try:
        with pool.connection_context():
            pid = pool.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
        other = make_pool()
        try:
            with other.connection_context():
                other.execute_sql("SELECT pg_terminate_backend(%s)", (pid,))
        finally:
            other.close_all()
        pool.ping_after = 0.0  # it has sat "long enough": checked on checkout
        with pool.connection_context():
            fresh = pool.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
        assert fresh != pid
    finally:
        pool.close_all()


def test_a_connection_left_in_a_transaction_is_rolled_back_not_trusted() -> None:
    pool = make_pool()
    try:
        with pool.connection_context():
            conn = pool.connection()
            pool.execute_sql("BEGIN")
            pool.execute_sql("SELECT 1")
            assert pool._adapter.txn_status(conn) != pool._adapter.txn_idle
        with pool.connection_context():
            conn = pool.connection()
            assert pool._adapter.txn_status(conn) == pool._adapter.txn_idle
    finally:
        pool.close_all()


def test_json_values_are_read_by_load_json(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pool's connections decode ``json`` (and ``json[]``) with the server's reader,
    which gives ``json.loads``'s values (tests/services/test_db.py), not psycopg2's default."""
    import server.pg_pool
    from server.json_text import load_json

    texts: list[str] = []

    def reading(text: str) -> object:
        texts.append(text)
        return load_json(text)

    monkeypatch.setattr(server.pg_pool, "load_json", reading)
    pool = make_pool()
    try:
        with pool.connection_context():
            sql = """SELECT '{"b":[1,2.50,-0.0],"a":123456789012345678901234567890}'::json,
                            ARRAY['[1]'::json, 'null'::json]"""
            value, array = pool.execute_sql(sql).fetchone()
        assert repr(value) == repr({"b": [1, 2.5, -0.0], "a": 123456789012345678901234567890})
        assert array == [[1], None]
        assert texts[0] == '{"b":[1,2.50,-0.0],"a":123456789012345678901234567890}'
        assert len(texts) == 3
    finally:
        pool.close_all()
