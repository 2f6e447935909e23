"""Row access for :mod:`server.services.tasks.rank_blocks`: the blocks, their pending changes
and their version, as SQL written once per backend (building them with peewee on every call
costs more than running them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from server.db import database

Key = tuple[int, int]

_TABLE = '"task_rank_block"'
_START = '("start_at", "start_id")'
_COLUMNS = '"id", "start_at", "start_id", "size"'


@dataclass(frozen=True)
class Block:
    id: int
    start: Key
    size: int


@cache
def _statements(p: str) -> dict[str, str]:
    """Statements for the backend's parameter marker ``p``."""
    of_order = f'FROM {_TABLE} WHERE "project_id" = {p} AND "ordering" = {p}'
    return {
        "at_or_before": f"SELECT {_COLUMNS} {of_order} AND {_START} <= ({p}, {p}) "
        'ORDER BY "start_at" DESC, "start_id" DESC LIMIT 1',
        "before": f"SELECT {_COLUMNS} {of_order} AND {_START} < ({p}, {p}) "
        'ORDER BY "start_at" DESC, "start_id" DESC LIMIT 1',
        "after": f"SELECT {_COLUMNS} {of_order} AND {_START} > ({p}, {p}) "
        'ORDER BY "start_at", "start_id" LIMIT 1',
        "first": f'SELECT {_COLUMNS} {of_order} ORDER BY "start_at", "start_id" LIMIT 1',
        "last": f'SELECT {_COLUMNS} {of_order} ORDER BY "start_at" DESC, "start_id" DESC LIMIT 1',
        "all": f'SELECT {_COLUMNS} {of_order} ORDER BY "start_at", "start_id"',
        "by_id": f'SELECT {_COLUMNS} FROM {_TABLE} WHERE "id" = {p}',
        "set_size": f'UPDATE {_TABLE} SET "size" = {p} WHERE "id" = {p}',
        "set_start": f'UPDATE {_TABLE} SET "start_at" = {p}, "start_id" = {p} WHERE "id" = {p}',
        "delete": f'DELETE FROM {_TABLE} WHERE "id" = {p}',
        "insert": f'INSERT INTO {_TABLE} ("project_id", "ordering", "start_at", "start_id", '
        f'"size") VALUES ({p}, {p}, {p}, {p}, {p})',
    }


def _sql(name: str) -> str:
    return _statements(database.param)[name]


def _block(row: tuple[int, ...] | None) -> Block | None:
    if row is None:
        return None
    return Block(int(row[0]), (int(row[1]), int(row[2])), int(row[3]))


def _one(name: str, *params: int) -> Block | None:
    return _block(database.execute_sql(_sql(name), params).fetchone())


def by_id(block_id: int) -> Block | None:
    return _one("by_id", block_id)


def block_of(project_id: int, ordering: int, key: Key) -> Block | None:
    """The block whose range holds ``key``: the last one starting at or before it, else the
    first one (a key below every start belongs to the first block)."""
    found = _one("at_or_before", project_id, ordering, *key)
    return found if found is not None else _one("first", project_id, ordering)


def neighbour(project_id: int, ordering: int, block: Block, after: bool) -> Block | None:
    return _one("after" if after else "before", project_id, ordering, *block.start)


def last_block(project_id: int, ordering: int) -> Block | None:
    return _one("last", project_id, ordering)


def all_blocks(project_id: int, ordering: int) -> list[Block]:
    rows = database.execute_sql(_sql("all"), (project_id, ordering)).fetchall()
    return [Block(int(r[0]), (int(r[1]), int(r[2])), int(r[3])) for r in rows]


def set_size(block_id: int, size: int) -> None:
    database.execute_sql(_sql("set_size"), (size, block_id))


def set_start(block_id: int, start: Key) -> None:
    database.execute_sql(_sql("set_start"), (*start, block_id))


def delete(block_id: int) -> None:
    database.execute_sql(_sql("delete"), (block_id,))


def insert(project_id: int, ordering: int, start: Key, size: int) -> None:
    database.execute_sql(_sql("insert"), (project_id, ordering, *start, size))


def set_sizes(sizes: list[tuple[int, int]]) -> None:
    """Store the sizes of several blocks, ``(id, size)`` pairs, in one statement."""
    if len(sizes) == 1:
        set_size(sizes[0][0], sizes[0][1])
        return
    if not sizes:
        return
    params: list[int] = [value for pair in sizes for value in pair]
    params += [block_id for block_id, _ in sizes]
    database.execute_sql(set_sizes_sql(len(sizes), database.param), params)


def set_sizes_sql(count: int, p: str) -> str:
    """:func:`set_sizes`' statement for ``count`` blocks. Each size is cast: PostgreSQL types
    a bare parameter in a ``CASE`` as text, and the PREPARE of the statement then failed
    (``column "size" is of type integer``) on every connection that repeated it."""
    cases = " ".join(f"WHEN {p} THEN CAST({p} AS INTEGER)" for _ in range(count))
    ids = ", ".join(p for _ in range(count))
    return f'UPDATE {_TABLE} SET "size" = CASE "id" {cases} END WHERE "id" IN ({ids})'


# --- pending changes (``task_rank_change``) and the version (``task_rank_state``) ----------

Change = tuple[int, Key, int]  # (ordering, key, delta)


@cache
def _insert_changes_sql(p: str, count: int) -> str:
    values = ", ".join(f"({p}, {p}, {p}, {p}, {p})" for _ in range(count))
    return (
        'INSERT INTO "task_rank_change" ("project_id", "ordering", "at", "task_id", "delta") '
        f"VALUES {values}"
    )


def insert_changes(
    project_id: int, changes: Sequence[Change], after: tuple[str, Sequence[int]] | None = None
) -> None:
    """Insert pending changes; PostgreSQL: after running the statement ``after`` (a lock) in
    the same round trip (psycopg2 sends ``statement; insert`` as one simple query, in order)."""
    params: list[int] = []
    for ordering, key, delta in changes:
        params += [project_id, int(ordering), key[0], key[1], delta]
    sql = _insert_changes_sql(database.param, len(changes))
    if after is not None:
        sql = f"{after[0]}; {sql}"
        params = [*after[1], *params]
    database.execute_sql(sql, params)


@cache
def _take_changes_sql(p: str, of_ordering: bool) -> str:
    condition = f' AND "ordering" = {p}' if of_ordering else ""
    return (
        f'DELETE FROM "task_rank_change" WHERE "project_id" = {p}{condition} '
        'RETURNING "ordering", "at", "task_id", "delta"'
    )


def take_changes(project_id: int, ordering: int | None = None) -> list[Change]:
    """Delete the pending changes of a project (of one order) and return them."""
    params = (project_id,) if ordering is None else (project_id, ordering)
    sql = _take_changes_sql(database.param, ordering is not None)
    rows = database.execute_sql(sql, params).fetchall()
    return [(int(r[0]), (int(r[1]), int(r[2])), int(r[3])) for r in rows]


@cache
def _touch_sql(p: str) -> str:
    return (
        f'INSERT INTO "task_rank_state" ("project_id", "version") VALUES ({p}, {p}) '
        'ON CONFLICT ("project_id") DO UPDATE SET "version" = excluded."version"'
    )


def touch(project_id: int, version: int) -> None:
    """Give the project's blocks a new version (their rows changed in this transaction)."""
    database.execute_sql(_touch_sql(database.param), (project_id, version))


@cache
def _read_sql(p: str, with_blocks: bool) -> str:
    """The version and the pending changes of one order (tags 0 and 1) and, ``with_blocks``,
    its blocks (tag 2), in one statement: one snapshot."""
    sql = (
        f'SELECT 0, "version", 0, 0, 0 FROM "task_rank_state" WHERE "project_id" = {p} '
        'UNION ALL SELECT 1, "at", "task_id", "delta", 0 FROM "task_rank_change" '
        f'WHERE "project_id" = {p} AND "ordering" = {p}'
    )
    if with_blocks:
        sql += (
            f' UNION ALL SELECT 2, "start_at", "start_id", "size", "id" FROM {_TABLE} '
            f'WHERE "project_id" = {p} AND "ordering" = {p}'
        )
    return sql


BlockRow = tuple[Key, int, int]  # (start, size, id)
Rows = tuple[int | None, list[tuple[Key, int]], list[BlockRow]]


def read_order(project_id: int, ordering: int, with_blocks: bool) -> Rows:
    """(version or None, pending (key, delta) pairs, and with ``with_blocks`` the blocks'
    (start, size, id), unsorted) of one order, read in one statement."""
    params: tuple[int, ...] = (project_id, project_id, ordering)
    if with_blocks:
        params += (project_id, ordering)
    version: int | None = None
    pending: list[tuple[Key, int]] = []
    blocks: list[BlockRow] = []
    # Both drivers return BIGINT and INTEGER columns as int: no conversions.
    for tag, a, b, c, d in database.execute_sql(_read_sql(database.param, with_blocks), params):
        if tag == 1:
            pending.append(((a, b), c))
        elif tag == 0:
            version = a
        else:
            blocks.append(((a, b), c, d))
    return version, pending, blocks


@cache
def _version_sql(p: str) -> str:
    return f'SELECT "version" FROM "task_rank_state" WHERE "project_id" = {p}'


def version(project_id: int) -> int | None:
    """The version of the project's blocks (None before their first change)."""
    row = database.execute_sql(_version_sql(database.param), (project_id,)).fetchone()
    return None if row is None else int(row[0])
