"""PostgreSQL's connection pool without a round trip per checkout.

peewee's ``PooledPostgresqlDatabase`` checks every connection it hands out with a ``SELECT 1``
(psycopg2's transaction status is local, so it cannot tell a dead connection otherwise). A
REST request takes a connection once: on the annotator's task GET that ping was one of three
round trips and ~120 µs of the server's CPU. :class:`PostgresPool` pings only a connection
that has sat in the pool for :attr:`PostgresPool.ping_after` seconds or more: one handed
back a moment ago by a request that used it successfully is alive as far as anyone can
know. A connection the server closed within that moment (a PostgreSQL restart under load)
fails its next request, as a connection dropped during a request always did.

It also prepares the statements each connection runs repeatedly (:mod:`server.pg_prepare`):
``prepared_statements`` per connection, 0 for none; and its ``json`` values are decoded by
:func:`server.json_text.load_json` (orjson where it reads what ``json.loads`` reads) instead
of psycopg2's default ``json.loads``, ~4x slower: a page of 100 tasks with their completions
decodes ~200 values.
"""

from __future__ import annotations

import time
from typing import Any

import peewee
import psycopg2.extras
from playhouse.pool import PooledPostgresqlDatabase

from server.json_text import load_json
from server.lean_pool import LeanCheckout
from server.pg_prepare import Prepared, PreparingConnection, Statements, dollar_parameters, is_ddl


class PoolConnection(PreparingConnection):
    """A pooled connection: its statements (:class:`PreparingConnection`), and ``json``
    values read by :func:`load_json` (the same values as psycopg2's ``json.loads``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        psycopg2.extras.register_default_json(self, loads=load_json)


class PostgresPool(LeanCheckout, PooledPostgresqlDatabase):  # type: ignore[misc]
    ping_after = 1.0  # seconds a connection may sit in the pool unchecked

    def __init__(self, *args: Any, prepared_statements: int = 256, **kwargs: Any) -> None:
        self._returned: dict[int, float] = {}  # conn_key -> when it came back (monotonic)
        self.prepared_statements = prepared_statements
        kwargs.setdefault("connection_factory", PoolConnection)
        super().__init__(*args, **kwargs)

    def _can_reuse(self, conn: Any) -> bool:
        """Check-in (under the pool's lock): peewee's check, then note the time."""
        reusable: bool = super()._can_reuse(conn)
        if reusable:
            self._returned[self.conn_key(conn)] = time.monotonic()
        return reusable

    def _is_closed(self, conn: Any) -> bool:
        """Check-out (under the pool's lock): peewee's ping unless the connection came back
        idle less than ``ping_after`` seconds ago."""
        returned = self._returned.pop(self.conn_key(conn), None)
        if (
            returned is not None
            and time.monotonic() - returned < self.ping_after
            and not conn.closed
            and self._adapter.txn_status(conn) == self._adapter.txn_idle
        ):
            return False
        closed: bool = super()._is_closed(conn)
        return closed

    def _statements(self) -> Statements | None:
        """The prepared statements of this thread's connection (None: none are prepared)."""
        if self.prepared_statements <= 0:
            return None
        conn = self._state.conn
        if conn is None:
            return None
        if not isinstance(conn, PreparingConnection):
            return None
        statements = conn.lg_statements
        if statements is None:  # the connection's first statement
            statements = conn.lg_statements = Statements(self.prepared_statements)
        return statements

    def execute_sql(self, sql: str, params: Any = None) -> Any:
        """Run ``sql``: as ``EXECUTE`` of its prepared statement when this connection has one
        that takes these values, else as it is (then prepared on its second successful run).
        See :mod:`server.pg_prepare`."""
        statements = self._statements()
        if statements is None:
            return super().execute_sql(sql, params)
        prepared = statements.prepared.get(sql)
        arguments = None if prepared is None else prepared.arguments(params)
        if arguments is not None:
            assert prepared is not None
            statements.prepared.move_to_end(sql)
            try:
                return self._execute_prepared(sql, params, prepared.execute, arguments)
            except peewee.NotSupportedError:
                # "cached plan must not change result type": a column it returns changed type.
                del statements.prepared[sql]
                statements.evicted.extend(prepared.names)
                if self.in_transaction():
                    raise
                return super().execute_sql(sql, params)
        cursor = super().execute_sql(sql, params)
        if prepared is None:
            if is_ddl(sql):
                statements.clear()
                self.cursor().execute("DEALLOCATE ALL")
            elif statements.ready(sql, params):
                self._prepare(statements, sql, params)
        return cursor

    def _execute_prepared(self, sql: str, params: Any, execute: str, arguments: Any) -> Any:
        """peewee's ``_execute_cursor`` sending ``execute`` with ``arguments``: the log and the
        query hooks see ``sql`` and ``params``, the statement the caller ran."""
        self._log_query(sql, params)
        start = time.perf_counter() if self.query_hooks else None
        try:
            with peewee.__exception_wrapper__:  # type: ignore[attr-defined]
                cursor = self.cursor()
                cursor.execute(execute, arguments)
        except Exception as error:
            if start is not None:
                self._notify_hooks(sql, params, start, error)
            raise
        if start is not None:
            self._notify_hooks(sql, params, start, None)
        return cursor

    def _prepare(self, statements: Statements, sql: str, params: Any) -> None:
        """Prepare ``sql`` on this connection (it just ran successfully), reading the types
        PostgreSQL gave its parameters; inside a transaction under a savepoint, so that a
        PREPARE that fails leaves the transaction as it was. A failure refuses ``sql``."""
        rewritten = dollar_parameters(sql, params)
        if rewritten is None:
            statements.refuse(sql)
            return
        pieces, counts, fixed = rewritten
        names = [statements.next_name() for _ in pieces]
        deallocate = "".join(f"DEALLOCATE {old}; " for old in statements.evicted)
        statements.evicted.clear()
        prepare = deallocate + "".join(
            f"PREPARE {name} AS {piece}; " for name, piece in zip(names, pieces, strict=True)
        )
        listed = ", ".join(f"'{name}'" for name in names)
        types = (
            "SELECT name, parameter_types::text[] FROM pg_prepared_statements"
            f" WHERE name IN ({listed})"
        )
        conn = self._state.conn
        in_transaction = self._adapter.txn_status(conn) != self._adapter.txn_idle
        cursor = conn.cursor()
        statements.prepares += 1
        try:
            if in_transaction:
                cursor.execute(
                    f"SAVEPOINT lg_prepare; {prepare}RELEASE SAVEPOINT lg_prepare; {types}"
                )
            else:
                cursor.execute(prepare + types)
            rows = dict(cursor.fetchall())
        except Exception:
            if in_transaction:
                cursor.execute("ROLLBACK TO SAVEPOINT lg_prepare; RELEASE SAVEPOINT lg_prepare")
            statements.refuse(sql)  # (any PREPAREd before the failure stays, unused, until closed)
            return
        finally:
            cursor.close()
        parameter_types = [t for name in names for t in (rows.get(name) or [])]
        if len(rows) != len(names) or len(parameter_types) != len(params) - len(fixed):
            statements.refuse(sql)
            statements.evicted.extend(rows)
            return
        statements.add(sql, Prepared(names, params, counts, fixed, parameter_types))
