"""Bulk inserts of prepared rows in multi-row statements (imports), and the statistics
PostgreSQL needs before bulk deletes.

``INSERT … VALUES (…), (…), …`` with many rows per statement: on SQLite it takes about half
the time of ``executemany`` of one-row statements (the per-row cost of stepping and resetting
a statement is paid once per batch; measured with 100k tasks in ``bench/import_workload.py``),
and on PostgreSQL it is ``COPY … FROM STDIN`` of rows written as COPY's text format here:
``execute_values`` quoted every value through psycopg2's ``mogrify`` (a fifth of a 20k-task
import with completions) and the server parsed one multi-row statement per 1,000 rows.
"""

from __future__ import annotations

import functools
import io
import itertools
from typing import Any

import peewee

from server.db import database, is_sqlite

# SQLite allows 32,766 bound parameters per statement (3.32+); far fewer rows per statement
# are as fast, and keep each statement's text short.
SQLITE_ROWS = 250
SQLITE_MAX_PARAMETERS = 32_766
COPY_READ = 1 << 20  # bytes handed to COPY per read


# COPY's text format: a backslash, tab, newline or carriage return in a value is escaped.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_value(value: Any) -> str:
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES)
    return str(value)  # int, float


def _copy_rows(table: str, columns: list[str], rows: list[tuple[Any, ...]], cursor: Any) -> None:
    """``COPY`` the rows into ``table`` (PostgreSQL), in order. ``str`` and ``int`` values (most
    of them) are written inline, the rest by :func:`_copy_value`: a call per value was most of
    the client's share of a COPY. A ``str`` is translated only if it holds a character to
    escape (four ``in`` scans take a twentieth of ``str.translate``'s time on ~100 characters:
    ~0.18 s fewer per 100k JSON values)."""
    escapes = _COPY_ESCAPES
    text = str
    lines = [
        "\t".join(
            [
                (v.translate(escapes) if "\\" in v or "\t" in v or "\n" in v or "\r" in v else v)
                if type(v) is text
                else (text(v) if type(v) is int else _copy_value(v))
                for v in row
            ]
        )
        for row in rows
    ]
    lines.append("")
    buffer = io.StringIO("\n".join(lines))
    cols = ", ".join(f'"{c}"' for c in columns)
    cursor.copy_expert(f'COPY "{table}" ({cols}) FROM STDIN', buffer, COPY_READ)


@functools.lru_cache(maxsize=64)
def _sqlite_statement(table: str, columns: tuple[str, ...], rows: int) -> str:
    cols = ", ".join(f'"{c}"' for c in columns)
    one = "(" + ", ".join("?" for _ in columns) + ")"
    return f'INSERT INTO "{table}" ({cols}) VALUES ' + ", ".join(itertools.repeat(one, rows))


def insert_rows(
    model: type[peewee.Model],
    columns: list[str],
    rows: list[tuple[Any, ...]],
    cursor: Any = None,
    per_statement: int = SQLITE_ROWS,
) -> None:
    """Insert ``rows`` (tuples of database values in ``columns`` order) in multi-row
    statements, in order (ids rise with the rows' order). Call inside a transaction.
    ``cursor``: a cursor of the transaction's connection (the import's writer thread passes
    its own; by default one of this thread's connection). ``per_statement``: SQLite's rows
    per statement (at most what its 32,766 bound parameters allow)."""
    if not rows:
        return
    table = model._meta.table_name
    if cursor is None:
        cursor = database.cursor()
    if not is_sqlite():
        _copy_rows(table, columns, rows, cursor)
        return
    key = tuple(columns)
    per = max(1, min(per_statement, SQLITE_MAX_PARAMETERS // len(columns)))
    full = len(rows) - len(rows) % per
    if full:
        statement = _sqlite_statement(table, key, per)
        chain = itertools.chain.from_iterable
        for start in range(0, full, per):
            cursor.execute(statement, list(chain(rows[start : start + per])))
    if full < len(rows):
        rest = rows[full:]
        cursor.execute(_sqlite_statement(table, key, len(rest)), list(itertools.chain(*rest)))


# Bulk deletes of more tasks than this refresh the statistics of the tables referencing
# ``task`` first (PostgreSQL); below it even the worst plan costs little.
ANALYZE_OVER = 1000


def analyze_referencing(model: type[peewee.Model]) -> None:
    """PostgreSQL: ``ANALYZE`` the tables whose foreign keys reference ``model`` (no-op on
    SQLite), before deleting many of its rows.

    Each deleted row runs the ``ON DELETE CASCADE``/``SET NULL`` trigger query of every
    referencing table (``DELETE FROM completion WHERE task_id = $1`` …). PostgreSQL caches
    those plans per connection, generic after a few runs, costed on the statistics of that
    moment: planned while ``completion`` was small (a few single deletes before a large
    import, autovacuum not yet round), the cached plan is a sequential scan, and each of N
    deleted tasks then scans every (already deleted) completion row: O(N²), 27 s for 20k tasks
    instead of 0.4 s, minutes at 100k. ``ANALYZE`` stores new statistics, which invalidates
    the cached plans, and the next ones seek the ``task_id`` indexes. It runs before the
    delete's transaction (each table in its own short one, so its lock is not held through
    the delete); inside an open transaction it runs there. Owners of the tables only: for
    another role PostgreSQL skips it with a warning."""
    if is_sqlite():
        return
    tables = sorted({field.model._meta.table_name for field in model._meta.backrefs})
    for table in tables:
        database.execute_sql(f'ANALYZE "{table}"')
