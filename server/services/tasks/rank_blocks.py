"""Counted key blocks: the k-th task of a project in one order, without OFFSET over k rows.

Page N of size S is "S tasks from the k-th on", k = S*(N-1), counted over the tasks that exist
now. An index finds a key in O(log n) but not the k-th key; OFFSET walks k rows, and a dense
rank column (the former ``position``) must be renumbered after every deletion or change of
``completed_at`` (O(n) writes). Cached page-boundary keys would be invalidated by any change
before them and rebuilt in O(n). Instead each order of a project's tasks is cut into
contiguous key ranges (blocks) whose sizes are stored in :class:`TaskRankBlock`:

- finding the k-th task sums block sizes in key order until k is passed (one indexed scan of
  about n / TARGET small rows, summed by a window function in SQL), then skips what is left
  inside that block on the task index (at most ``MAX_SIZE`` entries);
- adding or removing a task changes one block's size (one indexed row update). A block that
  grows past ``MAX_SIZE`` is cut into ``TARGET``-sized blocks by reading its own keys (O(block),
  amortised O(1) per task); one that shrinks under ``MIN_SIZE`` joins a neighbour. So blocks
  hold MIN..MAX tasks (a lone or trailing one may hold fewer) and there are at most
  n / MIN_SIZE + 1 of them.

At 1M tasks that is about 250 block rows and under 8,192 index entries per lookup: a bounded
cost whatever the page, and a deletion touches one or two block rows (a merge that overfills
its neighbour re-cuts it, O(MAX_SIZE), once per thousands of deletions).

Three orders are kept: every task by id, labeled tasks by ``(completed_at, id)``, unlabeled
tasks by id (completion-order listings show labeled tasks, then unlabeled ones by id).
Descending pages use the same blocks: the k-th from the end is the (n-1-k)-th from the start.
Keys are ``(at, id)`` pairs, ``at`` being 0 in the id orders.

Writers call these functions inside their write transaction, after changing the task rows,
so blocks and rows change together, holding either the project's lock exclusively (bulk
writers: :func:`server.services.projects.lock_project`) or, per-task writers, the project's
shared lock and then :func:`lock`: shared while a move only changes the sizes of existing
blocks (the block rows' own locks order those), exclusive to make, cut, merge or move a block,
which no other writer of the project may meet half done.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from enum import IntEnum
from functools import cache

import peewee

from server.db import (
    ADVISORY_RANK_BLOCKS,
    advisory_xact_lock,
    advisory_xact_lock_sql,
    bulk_insert,
    database,
    is_sqlite,
)
from server.models import COMPLETED, UNLABELED, Task, TaskRankBlock
from server.services.tasks import rank_block_rows as rows
from server.services.tasks.rank_block_rows import Block, Key

# Skipping an index entry costs ~1/30 of reading a block row, so blocks of a few thousand
# balance the two halves of a lookup at 1M tasks (measured on SQLite; PostgreSQL alike).
MAX_SIZE = 8192
TARGET = 4096
MIN_SIZE = 1024

_BLOCK_COLUMNS = ["project_id", "ordering", "start_at", "start_id", "size"]


def lock(project_id: int, *, shared: bool = False) -> None:
    """Take the project's block lock for the rest of the write transaction, after the
    project's shared lock, the task's row lock and its counter shard: the last lock a per-task
    writer takes, before any block row. Shared to change sizes only, exclusive to change the
    blocks' ranges. A no-op on SQLite (serialised writers)."""
    advisory_xact_lock(ADVISORY_RANK_BLOCKS, project_id, shared=shared)


class _Leaves(Exception):
    """The move needs more than size changes: drop the shared lock taken to find it out."""


class Ordering(IntEnum):
    ID = 0
    COMPLETED = 1
    UNLABELED = 2


def orderings_of(is_labeled: bool) -> tuple[Ordering, Ordering]:
    """The orders a task belongs to."""
    return (Ordering.ID, Ordering.COMPLETED if is_labeled else Ordering.UNLABELED)


def key_of(ordering: Ordering, task_id: int, completed_at: int | None) -> Key:
    if ordering is Ordering.COMPLETED:
        return (int(completed_at or 0), task_id)
    return (0, task_id)


# --- the task side: members of an order and their keys ------------------------------------


def members(project_id: int, ordering: Ordering) -> list[peewee.Node]:
    """Conditions selecting the tasks of an order (the literal partial-index conditions)."""
    conditions: list[peewee.Node] = [Task.project == project_id]
    if ordering is Ordering.COMPLETED:
        conditions.append(COMPLETED)
    elif ordering is Ordering.UNLABELED:
        conditions.append(UNLABELED)
    return conditions


def key_columns(ordering: Ordering) -> tuple[peewee.Field, ...]:
    if ordering is Ordering.COMPLETED:
        return (Task.completed_at, Task.id)
    return (Task.id,)


def key_from(ordering: Ordering, key: Key, operator: str) -> peewee.Expression:
    """``task key <operator> key`` for ``>=``, ``>``, ``<=`` or ``<`` in an order."""
    if ordering is Ordering.COMPLETED:
        left: peewee.Node = peewee.Tuple(Task.completed_at, Task.id)
        right: object = peewee.Tuple(*key)
    else:
        left, right = Task.id, key[1]
    return peewee.Expression(left, operator, right)


def _task_keys(project_id: int, ordering: Ordering, start: Key, end: Key | None) -> list[Key]:
    query = Task.select(*key_columns(ordering)).where(
        *members(project_id, ordering), key_from(ordering, start, ">=")
    )
    if end is not None:
        query = query.where(key_from(ordering, end, "<"))
    rows = database.execute(query.order_by(*key_columns(ordering))).fetchall()
    if ordering is Ordering.COMPLETED:
        return [(int(at), int(task_id)) for at, task_id in rows]
    return [(0, int(task_id)) for (task_id,) in rows]


# --- the block side (rows through :mod:`rank_block_rows`) -----------------------------------


def _split(project_id: int, ordering: Ordering, block: Block) -> None:
    """Recount an overfull block from the task index and cut it into TARGET-sized blocks."""
    after = rows.neighbour(project_id, ordering, block, after=True)
    keys = _task_keys(project_id, ordering, block.start, after.start if after else None)
    pieces = [keys[i : i + TARGET] for i in range(0, len(keys), TARGET)]
    if len(pieces) > 1 and len(pieces[-1]) < MIN_SIZE:
        tail = pieces.pop()
        pieces[-1] = pieces[-1] + tail
    if not pieces:
        rows.delete(block.id)
        return
    rows.set_size(block.id, len(pieces[0]))
    new = [(project_id, int(ordering), p[0][0], p[0][1], len(p)) for p in pieces[1:]]
    bulk_insert(TaskRankBlock, _BLOCK_COLUMNS, new)


def _resize(project_id: int, ordering: Ordering, block: Block, size: int) -> None:
    """Store a block's new size; split it past MAX_SIZE."""
    rows.set_size(block.id, size)
    if size > MAX_SIZE:
        _split(project_id, ordering, Block(block.id, block.start, size))


def _join(project_id: int, ordering: Ordering, block: Block) -> None:
    """Merge an underfull block into the block before it, or the first block with the one
    after it."""
    before = rows.neighbour(project_id, ordering, block, after=False)
    if before is not None:
        keep, gone = before, block
    else:
        after = rows.neighbour(project_id, ordering, block, after=True)
        if after is None:
            return
        keep, gone = block, after
    rows.delete(gone.id)
    _resize(project_id, ordering, keep, keep.size + gone.size)


def add(project_id: int, ordering: Ordering, key: Key) -> None:
    """Count a task that joined an order (its row already holds ``key``)."""
    shifted = rows.shift_block_of(project_id, ordering, key, 1)
    if shifted is not None:  # the usual case, in one statement
        if shifted.size > MAX_SIZE:
            _split(project_id, ordering, shifted)
        return
    block = rows.block_of(project_id, ordering, key)
    if block is None:
        rows.insert(project_id, ordering, key, 1)
        return
    if key < block.start:
        rows.set_start(block.id, key)
        block = Block(block.id, key, block.size)
    _resize(project_id, ordering, block, block.size + 1)


def remove(project_id: int, ordering: Ordering, key: Key) -> None:
    """Uncount a task that left an order (``key`` is the key it had)."""
    block = rows.shift_block_of(project_id, ordering, key, -1)
    if block is None:  # below every start: the first block's
        block = rows.block_of(project_id, ordering, key)
        if block is None:
            return
        block = Block(block.id, block.start, block.size - 1)
        if block.size > 0:
            rows.set_size(block.id, block.size)
    size = block.size
    if size <= 0:
        rows.delete(block.id)
        return
    if size < MIN_SIZE:
        _join(project_id, ordering, Block(block.id, block.start, size))


State = tuple[bool, int | None]  # (is_labeled, completed_at)


def move(project_id: int, task_id: int, old: State, new: State) -> None:
    """Recount a task whose ``(is_labeled, completed_at)`` changed from ``old`` to ``new``."""
    if old == new or _moved_in_place(project_id, task_id, old, new):
        return
    if old[0] and new[0]:  # a labeled task's completed_at changed (a newer completion)
        key, new_key = (key_of(Ordering.COMPLETED, task_id, at) for at in (old[1], new[1]))
        block = rows.block_of(project_id, Ordering.COMPLETED, key)
        stays = block is not None and key >= block.start and new_key >= block.start
        if stays and rows.block_of(project_id, Ordering.COMPLETED, new_key) == block:
            return  # it stays in its block: no size changes (the usual case: the last one)
    lock(project_id)
    for labeled, completed_at, change in ((*old, remove), (*new, add)):
        ordering = Ordering.COMPLETED if labeled else Ordering.UNLABELED
        change(project_id, ordering, key_of(ordering, task_id, completed_at))


def _sizes(count: int) -> list[int]:
    """Sizes of TARGET-sized blocks holding ``count`` keys; a tail under MIN_SIZE joins the
    block before it (as :func:`_split` cuts)."""
    sizes = [TARGET] * (count // TARGET)
    if count % TARGET:
        if sizes and count % TARGET < MIN_SIZE:
            sizes[-1] += count % TARGET
        else:
            sizes.append(count % TARGET)
    return sizes


def _append(project_id: int, ordering: Ordering, last: Block | None, keys: list[Key]) -> None:
    """Count sorted new keys that all lie above every key counted in the order: the last block
    is filled up to TARGET (or grows by a short tail while it stays under MAX_SIZE), the rest
    is cut into new blocks from the keys themselves, without reading a task key back."""
    rest = keys
    if last is not None:
        if len(keys) < MIN_SIZE and last.size + len(keys) <= MAX_SIZE:
            rows.set_size(last.id, last.size + len(keys))
            return
        take = min(max(0, TARGET - last.size), len(keys))
        if take:
            rows.set_size(last.id, last.size + take)
        rest = keys[take:]
    new = []
    offset = 0
    for size in _sizes(len(rest)):
        new.append((project_id, int(ordering), rest[offset][0], rest[offset][1], size))
        offset += size
    bulk_insert(TaskRankBlock, _BLOCK_COLUMNS, new)


def _in_place(project_id: int, task_id: int, old: State, new: State) -> bool:
    """Count the move as size changes of the existing blocks, if that is all it takes: False
    (with nothing or only some sizes changed) when a block must be made, cut, merged or moved,
    which only the full :func:`move` under the exclusive lock does. Used on PostgreSQL under
    the shared lock, which keeps every block's range as it is: blocks are found first, then
    shifted in id order, so two writers never wait for each other's block rows in turn."""

    def lookup(state: State) -> tuple[int, Key]:
        ordering = Ordering.COMPLETED if state[0] else Ordering.UNLABELED
        return int(ordering), key_of(ordering, task_id, state[1])

    # The shared lock, then both blocks, in one round trip. A key below every block's start
    # (no block at or before it) belongs to the first block, whose start must then move: not
    # in place, as when block_of answered that first block.
    lock = advisory_xact_lock_sql(ADVISORY_RANK_BLOCKS, project_id, shared=True)
    found = rows.blocks_at_or_before_after(*lock, project_id, (lookup(old), lookup(new)))
    changes: list[tuple[Block, int]] = []
    for block, delta in zip(found, (-1, 1), strict=True):
        if block is None:
            return False
        changes.append((block, delta))
    if changes[0][0].id == changes[1][0].id:
        return True  # it stays in its block (the usual case: a labeled task's newer completion)
    for block, delta in sorted(changes, key=lambda change: change[0].id):
        shifted = rows.shift(block.id, delta)
        # A block left under MIN_SIZE is merged, one over MAX_SIZE cut: not in place.
        if shifted is None or shifted.size > MAX_SIZE or (delta < 0 and shifted.size < MIN_SIZE):
            return False
    return True


def _moved_in_place(project_id: int, task_id: int, old: State, new: State) -> bool:
    """On PostgreSQL, try :func:`_in_place` under the shared block lock, in a savepoint that
    is rolled back (dropping the lock and any size changed) when the move needs more: the
    caller then takes the lock exclusively, never upgrading a shared lock (two writers
    upgrading at once deadlock). SQLite's serialised writers need no such step."""
    if is_sqlite():
        return False
    try:
        with database.atomic():  # _in_place takes the blocks' lock, shared
            if not _in_place(project_id, task_id, old, new):
                raise _Leaves
    except _Leaves:
        return False
    return True


def add_many(project_id: int, ordering: Ordering, keys: list[Key], *, above: bool = False) -> None:
    """Count many new tasks of an order at once (bulk imports). ``above``: the caller knows
    that every key lies above every key already counted in the order (new ids in the id
    orders; completion times past the latest one), so blocks are cut from ``keys`` alone."""
    if not keys:
        return
    keys = sorted(keys)
    last = rows.last_block(project_id, ordering)
    if above or last is None:
        _append(project_id, ordering, last, keys)
        return
    if keys[0] >= last.start:  # appended after every key (ids only grow)
        _resize(project_id, ordering, last, last.size + len(keys))
        return
    blocks = rows.all_blocks(project_id, ordering)
    starts = [b.start for b in blocks]
    if keys[0] < starts[0]:
        rows.set_start(blocks[0].id, keys[0])
        blocks[0] = Block(blocks[0].id, keys[0], blocks[0].size)
    counts = Counter(max(0, bisect_right(starts, key) - 1) for key in keys)
    for index, count in counts.items():
        _resize(project_id, ordering, blocks[index], blocks[index].size + count)


def clear(project_id: int, *orderings: Ordering) -> None:
    TaskRankBlock.delete().where(
        TaskRankBlock.project == project_id,
        TaskRankBlock.ordering.in_([int(o) for o in orderings]),
    ).execute()


def rebuild(ordering: Ordering, project_id: int | None = None) -> None:
    """Write an order's blocks from the task table in one statement (migrations, bulk resets):
    every TARGET-th key in the order starts a block. The caller cleared the old blocks."""
    columns = key_columns(ordering)
    partition = [Task.project]
    number = peewee.fn.ROW_NUMBER().over(partition_by=partition, order_by=list(columns))
    total = peewee.fn.COUNT(Task.id).over(partition_by=partition)
    at = Task.completed_at if ordering is Ordering.COMPLETED else peewee.Value(0)
    conditions = members(0, ordering)[1:]
    if project_id is not None:
        conditions.append(Task.project == project_id)
    ranked_rows = Task.select(
        Task.project.alias("project_id"),
        at.alias("start_at"),
        Task.id.alias("start_id"),
        number.alias("rn"),
        total.alias("total"),
    )
    if conditions:
        ranked_rows = ranked_rows.where(*conditions)
    ranked = ranked_rows.alias("ranked")
    c = ranked.c
    left = c.total - c.rn + 1
    size = peewee.Case(None, [(left < TARGET, left)], TARGET)
    first_of_block = (c.rn - 1) - ((c.rn - 1) / TARGET) * TARGET == 0
    select = peewee.Select(
        [ranked], [c.project_id, peewee.Value(int(ordering)), c.start_at, c.start_id, size]
    ).where(first_of_block)
    fields = [getattr(TaskRankBlock, name) for name in _BLOCK_COLUMNS]
    fields[0] = TaskRankBlock.project
    TaskRankBlock.insert_from(select, fields).execute()


_MEMBER_CONDITION = {
    Ordering.ID: "",
    Ordering.COMPLETED: ' AND "completed_at" IS NOT NULL',
    Ordering.UNLABELED: ' AND "is_labeled" = FALSE',
}


@cache
def _kth_statements(param: str, ordering: Ordering) -> tuple[str, str]:
    """SQL of the two lookups (written once: building them with peewee per call costs more
    than running them). The conditions are the partial indexes' literal ones."""
    block = (
        'SELECT "start_at", "start_id", "size", "upto" FROM ('
        'SELECT "start_at", "start_id", "size", '
        'SUM("size") OVER (ORDER BY "start_at", "start_id") AS "upto" '
        f'FROM "task_rank_block" WHERE "project_id" = {param} AND "ordering" = {param}'
        f') AS "sums" WHERE "upto" > {param} ORDER BY "start_at", "start_id" LIMIT 1'
    )
    if ordering is Ordering.COMPLETED:
        columns, seek = '"completed_at", "id"', f'("completed_at", "id") >= ({param}, {param})'
    else:
        columns, seek = '"id"', f'"id" >= {param}'
    key = (
        f'SELECT {columns} FROM "task" WHERE "project_id" = {param}'
        f"{_MEMBER_CONDITION[ordering]} AND {seek} ORDER BY {columns} LIMIT 1 OFFSET {param}"
    )
    return block, key


def kth_key(project_id: int, ordering: Ordering, k: int) -> Key | None:
    """The key of the k-th (0-based) task of an order, or None past its end."""
    if k < 0:
        return None
    block_sql, key_sql = _kth_statements(database.param, ordering)
    row = database.execute_sql(block_sql, (project_id, int(ordering), k)).fetchone()
    if row is None:
        return None
    start_at, start_id, size, upto = (int(v) for v in row)
    skip = k - (upto - size)
    seek = (start_at, start_id) if ordering is Ordering.COMPLETED else (start_id,)
    found = database.execute_sql(key_sql, (project_id, *seek, skip)).fetchone()
    if found is None:
        return None
    if ordering is Ordering.COMPLETED:
        return (int(found[0]), int(found[1]))
    return (0, int(found[0]))
