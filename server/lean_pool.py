"""Checking a pooled connection out and in without peewee's layers, when nothing has to wait.

Every request takes a pooled connection for its database work and hands it back. Through
peewee's ``PooledDatabase`` that passes ``Database.connect`` (the database's lock, an
exception wrapper, the connection state reset twice), the pool's ``connect`` (a deadline
loop), its locked ``_connect`` (the heap, two timestamps) and the same again on the way back
with a ``Condition.notify``: ~76,000 instructions a request, ~9 % of a task GET.

:class:`LeanCheckout` takes the common case straight: an idle connection is in the pool (or
goes back into it) and the thread holds none. It does what peewee's path does in that case
— the same heap, ``_in_use`` entries, stale and liveness checks (``_is_closed``,
``_can_reuse``, so :class:`server.pg_pool.PostgresPool`'s rules hold) and wake-ups — under
the same pool lock. Everything else (no idle connection, waiting for one, a connection
already open, an open transaction) goes through peewee as before.

Peewee's database lock is not taken on the fast path: the connection state it guards is
the calling thread's own (thread-local), and the pool's structures are guarded by the
pool's lock, which is taken.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from typing import Any

from playhouse.pool import PoolConnection, PooledSqliteDatabase


class LeanCheckout:
    """Mixin for a ``playhouse.pool.PooledDatabase`` subclass (listed before it)."""

    _pool_lock: Any
    _pool_available: Any
    _connections: list[tuple[float, int, Any]]
    _in_use: dict[int, Any]
    _stale_timeout: float | None
    _heap_counter: int
    _state: Any
    deferred: bool
    # peewee's hooks, provided by the pooled database this is mixed into
    _is_closed: Callable[[Any], bool]
    _can_reuse: Callable[[Any], bool]
    _close_raw: Callable[[Any], None]

    def connect(self, reuse_if_open: bool = False) -> bool:
        state = self._state
        if state.closed and not self.deferred:
            conn = self._take_idle()
            if conn is not None:
                state.set_connection(conn)
                return True
        connected: bool = super().connect(reuse_if_open)  # type: ignore[misc]
        return connected

    def _take_idle(self) -> Any:
        """An idle pooled connection, now in use; None if there is none (peewee's
        ``_connect`` then makes one, or waits)."""
        with self._pool_lock:
            while self._connections:
                timestamp, _counter, conn = heapq.heappop(self._connections)
                if self._is_closed(conn):
                    continue  # closed by the driver: discarded, as peewee does
                now = time.time()
                if self._stale_timeout and now - timestamp > self._stale_timeout:
                    self._close_raw(conn)
                    continue
                self._in_use[id(conn)] = PoolConnection(timestamp, conn, now)
                return conn
        return None

    def close(self) -> bool:
        state = self._state
        if state.closed or state.transactions or self.deferred:
            closed: bool = super().close()  # type: ignore[misc]
            return closed
        conn = state.conn
        try:
            self._check_in(conn)
        finally:
            state.reset()
        return True

    def _check_in(self, conn: Any) -> None:
        """peewee's ``_close(conn)`` for a connection going back to the pool."""
        with self._pool_lock:
            pooled = self._in_use.pop(id(conn), None)
            if pooled is not None:
                stale = self._stale_timeout and time.time() - pooled[0] > self._stale_timeout
                if stale or not self._can_reuse(conn):
                    self._close_raw(conn)
                else:
                    self._heap_counter += 1
                    heapq.heappush(self._connections, (pooled[0], self._heap_counter, conn))
            self._pool_available.notify()


class SqlitePool(LeanCheckout, PooledSqliteDatabase):  # type: ignore[misc]
    """peewee's pooled SQLite database with :class:`LeanCheckout`."""
