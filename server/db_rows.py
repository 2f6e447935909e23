"""Bulk inserts of prepared rows in multi-row statements (imports).

``INSERT … VALUES (…), (…), …`` with many rows per statement: on SQLite it takes about half
the time of ``executemany`` of one-row statements (the per-row cost of stepping and resetting
a statement is paid once per batch; measured with 100k tasks in ``bench/import_workload.py``),
and on PostgreSQL it is psycopg2's ``execute_values`` (one round trip per page).
"""

from __future__ import annotations

import functools
import itertools
from typing import Any

import peewee

from server.db import database, is_sqlite

# SQLite allows 32,766 bound parameters per statement (3.32+); far fewer rows per statement
# are as fast, and keep each statement's text short.
SQLITE_ROWS = 250
POSTGRES_PAGE = 1000


@functools.lru_cache(maxsize=64)
def _sqlite_statement(table: str, columns: tuple[str, ...], rows: int) -> str:
    cols = ", ".join(f'"{c}"' for c in columns)
    one = "(" + ", ".join("?" for _ in columns) + ")"
    return f'INSERT INTO "{table}" ({cols}) VALUES ' + ", ".join(itertools.repeat(one, rows))


def insert_rows(model: type[peewee.Model], columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    """Insert ``rows`` (tuples of database values in ``columns`` order) in multi-row
    statements, in order (ids rise with the rows' order). Call inside a transaction."""
    if not rows:
        return
    table = model._meta.table_name
    if not is_sqlite():
        from psycopg2.extras import execute_values

        cols = ", ".join(f'"{c}"' for c in columns)
        execute_values(
            database.cursor(),
            f'INSERT INTO "{table}" ({cols}) VALUES %s',
            rows,
            page_size=POSTGRES_PAGE,
        )
        return
    key = tuple(columns)
    per = max(1, min(SQLITE_ROWS, 32_766 // len(columns)))
    cursor = database.cursor()
    full = len(rows) - len(rows) % per
    if full:
        statement = _sqlite_statement(table, key, per)
        chain = itertools.chain.from_iterable
        for start in range(0, full, per):
            cursor.execute(statement, list(chain(rows[start : start + per])))
    if full < len(rows):
        rest = rows[full:]
        cursor.execute(_sqlite_statement(table, key, len(rest)), list(itertools.chain(*rest)))
