"""Row access for :mod:`server.services.tasks.rank_blocks`: the block lookups and updates a
single task change runs, as SQL written once per backend (building them with peewee on every
call costs more than running them; a deletion runs several)."""

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
        "shift_at_or_before": f'UPDATE {_TABLE} SET "size" = "size" + {p} WHERE "id" = ('
        f'SELECT "id" {of_order} AND {_START} <= ({p}, {p}) '
        f'ORDER BY "start_at" DESC, "start_id" DESC LIMIT 1) RETURNING {_COLUMNS}',
        "shift": f'UPDATE {_TABLE} SET "size" = "size" + {p} WHERE "id" = {p} RETURNING {_COLUMNS}',
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


def block_of(project_id: int, ordering: int, key: Key) -> Block | None:
    """The block whose range holds ``key``: the last one starting at or before it, else the
    first one (a key below every start belongs to the first block)."""
    found = _one("at_or_before", project_id, ordering, *key)
    return found if found is not None else _one("first", project_id, ordering)


@cache
def _pair_sql(p: str) -> str:
    """The blocks starting at or before two keys, each row tagged with its lookup (0, 1)."""
    at_or_before = _statements(p)["at_or_before"]
    return (
        f"(SELECT 0, * FROM ({at_or_before}) AS a) "
        f"UNION ALL (SELECT 1, * FROM ({at_or_before}) AS b)"
    )


def blocks_at_or_before_after(
    statement: str,
    statement_params: Sequence[int],
    project_id: int,
    lookups: tuple[tuple[int, Key], tuple[int, Key]],
) -> tuple[Block | None, Block | None]:
    """PostgreSQL: run ``statement`` (a lock), then find the last block starting at or before
    each of two (ordering, key) lookups (None where no block starts there), in one round trip
    (psycopg2 sends ``statement; select`` as one simple query, run in order)."""
    params = [*statement_params]
    for ordering, key in lookups:
        params += [project_id, ordering, *key]
    cursor = database.execute_sql(f"{statement}; {_pair_sql(database.param)}", params)
    found: list[Block | None] = [None, None]
    for row in cursor.fetchall():
        found[int(row[0])] = _block(tuple(row[1:]))
    return found[0], found[1]


def shift_block_of(project_id: int, ordering: int, key: Key, delta: int) -> Block | None:
    """Add ``delta`` to the size of the last block starting at or before ``key`` and return
    it as changed, in one statement; None (nothing changed) when no block starts there."""
    return _one("shift_at_or_before", delta, project_id, ordering, *key)


def shift(block_id: int, delta: int) -> Block | None:
    """Add ``delta`` to a block's size and return it as changed (None if it is gone)."""
    return _one("shift", delta, block_id)


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
