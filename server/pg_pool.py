"""PostgreSQL's connection pool without a round trip per checkout.

peewee's ``PooledPostgresqlDatabase`` checks every connection it hands out with a ``SELECT 1``
(psycopg2's transaction status is local, so it cannot tell a dead connection otherwise). A
REST request takes a connection once: on the annotator's task GET that ping was one of three
round trips and ~120 µs of the server's CPU. :class:`PostgresPool` pings only a connection
that has sat in the pool for :attr:`PostgresPool.ping_after` seconds or more: one handed
back a moment ago by a request that used it successfully is alive as far as anyone can
know. A connection the server closed within that moment (a PostgreSQL restart under load)
fails its next request, as a connection dropped during a request always did.
"""

from __future__ import annotations

import time
from typing import Any

from playhouse.pool import PooledPostgresqlDatabase


class PostgresPool(PooledPostgresqlDatabase):  # type: ignore[misc]
    ping_after = 1.0  # seconds a connection may sit in the pool unchecked

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._returned: dict[int, float] = {}  # conn_key -> when it came back (monotonic)
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
