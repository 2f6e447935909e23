"""Counted key blocks: the k-th task of a project in one order, without OFFSET over k rows.

Page N of size S is "S tasks from the k-th on", k = S*(N-1), counted over the tasks that exist
now. An index finds a key in O(log n) but not the k-th key; OFFSET walks k rows, and a dense
rank column (the former ``position``) must be renumbered after every deletion or change of
``completed_at`` (O(n) writes). Cached page-boundary keys would be invalidated by any change
before them and rebuilt in O(n). Instead each order of a project's tasks is cut into
contiguous key ranges (blocks) whose sizes are stored in :class:`TaskRankBlock`, and a task
that joins or leaves an order is first written down as a *pending change*
(:class:`TaskRankChange`: its key and +1 or -1):

- **Writers only insert.** A per-task writer (a completion, a deletion) inserts one pending
  row per order it joins or leaves: no row that another writer updates. (Each completion used
  to add 1 to the size of the newest completion-order block, which every concurrent completion
  joins: on PostgreSQL that row lock held them all in line until each commit was flushed.)
- **Folding.** Every :data:`FOLD_EVERY`-th change a process records, its writer folds the
  project's pending rows into the block sizes (``DELETE … RETURNING`` them, add them up per
  block, in a few statements). Folds take their own non-blocking lock (a second folder skips:
  its rows wait for the next fold), so no writer queues on block rows; an order keeps a few
  dozen pending rows (any process's fold takes every process's rows).
- **Cut and merge.** A fold that leaves a block over ``MAX_SIZE`` or under ``MIN_SIZE`` hands
  over to :func:`settle`, which cuts the block into ``TARGET``-sized blocks by reading its own
  keys (O(block), once per thousands of changes) or merges it into a neighbour, under the
  blocks' lock taken exclusively. So blocks hold MIN..MAX tasks (a lone or trailing one may
  hold fewer) and there are at most n / MIN_SIZE + 1 of them; a deletion is an insert (O(1))
  and its share of folds and merges is amortised O(1).
- **Finding the k-th task.** Each process keeps an order's block starts with their prefix sums
  (:class:`_Blocks`), valid while the project's version (:class:`TaskRankState`, a new random
  number in every transaction that changes a block row) is the one it read. A lookup reads the
  version and the order's pending rows in one statement (a primary-key and a covering index
  lookup), finds the block by a binary search on the prefix sums corrected by the pending rows
  before each start, and skips what is left inside the block on the task index (at most
  ``MAX_SIZE`` entries). After a cut or a merge, or another process's fold, the blocks
  (~1,000 rows per order at 1M) are read again, once per process. The block rows, their
  version and the pending rows are read in one snapshot, and a block row only changes together
  with the version, so a lookup counts exactly what was committed when it read them.

At 1M tasks that is a binary search over ~1,000 cached starts, a few dozen pending rows (read
from a covering index) and under 2,048 index entries per lookup: a bounded cost whatever the
page (no window sum over the blocks any more), and a deletion or a completion writes one or
two new rows (plus, one time in FOLD_EVERY, a fold: its pending rows deleted and summed, a few
block sizes updated, the blocks taken from the process's copy). Measured at 1M tasks with the
machine under load (bench/README.md, ``task_pages.py``): pages of every order 0.2 to 0.4 ms on
SQLite and 1.4 to 5.5 ms (medians) on PostgreSQL, whatever the page.

Three orders are kept: every task by id, labeled tasks by ``(completed_at, id)``, unlabeled
tasks by id (completion-order listings show labeled tasks, then unlabeled ones by id).
Descending pages use the same blocks: the k-th from the end is the (n-1-k)-th from the start.
Keys are ``(at, id)`` pairs, ``at`` being 0 in the id orders. A block covers the keys from its
start to the next block's start; the first block also every key below its start (a fold then
moves its start down).

Locks (PostgreSQL; SQLite's writers are serialised and take none). Writers call these
functions inside their write transaction, after changing the task rows, so pending rows and
task rows are committed together. Per-task writers hold the project's shared lock and then
:func:`lock` shared (the last lock they take) while they insert pending rows and fold; a cut
recounts a block from the task index, so it must not run while a writer's task rows and
pending rows could commit between its reads: it takes :func:`lock` exclusively (a folding
writer rolls its savepoint back first, never upgrading a shared lock). Bulk writers hold the
project's lock exclusively (:func:`server.services.projects.lock_project`), which keeps every
per-task writer out. Imports hold it shared, beside per-task writers
(:func:`server.services.projects.lock_project_for_import`), and count all their tasks at
their end under :func:`lock` taken exclusively (:func:`count_import`).
"""

from __future__ import annotations

import heapq
import itertools
import secrets
import threading
from bisect import bisect_left, bisect_right
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import IntEnum
from functools import cache

import peewee

from server.db import (
    ADVISORY_RANK_BLOCKS,
    ADVISORY_RANK_FOLD,
    advisory_xact_lock,
    advisory_xact_lock_sql,
    bulk_insert,
    database,
    is_sqlite,
    try_advisory_xact_lock,
)
from server.models import COMPLETED, UNLABELED, Task, TaskRankBlock
from server.services.tasks import rank_block_rows as rows
from server.services.tasks.rank_block_rows import Block, Key

# A lookup reads no block row (a process keeps them, see above): its main cost is the skip
# inside a block on the task index (~0.1 µs an entry on SQLite), hence blocks of about a
# thousand. More blocks cost only the reads of a whole order's blocks (~1,000 rows per order at
# 1M) by a process whose copy is out of date: after a cut or merge, or another process's fold.
MAX_SIZE = 2048
TARGET = 1024
MIN_SIZE = 256

# Every FOLD_EVERY-th change a process records folds its project's pending rows (see above).
FOLD_EVERY = 16

_BLOCK_COLUMNS = ["project_id", "ordering", "start_at", "start_id", "size"]


def lock(project_id: int, *, shared: bool = False) -> None:
    """Take the project's block lock for the rest of the write transaction, after the
    project's shared lock, the task's row lock and its counter shard: the last lock a per-task
    writer takes. Shared to insert pending changes and fold them (sizes only), exclusive to
    cut or merge blocks (:func:`settle`). A no-op on SQLite (serialised writers)."""
    advisory_xact_lock(ADVISORY_RANK_BLOCKS, project_id, shared=shared)


class _Leaves(Exception):
    """The fold needs a cut or a merge: drop the shared lock taken to find it out."""


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


def _task_keys(
    project_id: int, ordering: Ordering, start: Key | None, end: Key | None, *, below_id: int = 0
) -> list[Key]:
    """The order's keys from ``start`` (or the first) to before ``end`` (or the last),
    ascending; with ``below_id``, only those of tasks with a lower id."""
    query = Task.select(*key_columns(ordering)).where(*members(project_id, ordering))
    if start is not None:
        query = query.where(key_from(ordering, start, ">="))
    if end is not None:
        query = query.where(key_from(ordering, end, "<"))
    if below_id:
        query = query.where(Task.id < below_id)
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
            if block.size <= 0:  # the order is empty
                rows.delete(block.id)
            return
        keep, gone = block, after
    rows.delete(gone.id)
    _resize(project_id, ordering, keep, keep.size + gone.size)


# --- per-task writers: pending changes, folded now and then ---------------------------------

Change = tuple[Ordering, Key, int]  # (order, key, +1 joined / -1 left)
_recorded = itertools.count(1)


def _changes_of_move(task_id: int, old: State, new: State) -> list[Change]:
    changes: list[Change] = []
    for (labeled, completed_at), delta in ((old, -1), (new, 1)):
        ordering = Ordering.COMPLETED if labeled else Ordering.UNLABELED
        changes.append((ordering, key_of(ordering, task_id, completed_at), delta))
    return changes


def move(project_id: int, task_id: int, old: State, new: State) -> None:
    """Recount a task whose ``(is_labeled, completed_at)`` changed from ``old`` to ``new``."""
    if old != new:
        record(project_id, _changes_of_move(task_id, old, new))


def add(project_id: int, ordering: Ordering, key: Key) -> None:
    """Count a task that joined an order (its row already holds ``key``)."""
    record(project_id, [(ordering, key, 1)])


def remove(project_id: int, ordering: Ordering, key: Key) -> None:
    """Uncount a task that left an order (``key`` is the key it had)."""
    record(project_id, [(ordering, key, -1)])


def record(project_id: int, changes: Sequence[Change]) -> None:
    """Write down tasks that joined or left orders (after their rows changed, in the same
    transaction): pending rows, inserted under the blocks' shared lock in one round trip on
    PostgreSQL. Every :data:`FOLD_EVERY`-th call of the process also folds the project's
    pending rows (:func:`_fold`), in a savepoint; when a block must be cut or merged the
    savepoint is rolled back and the changes are written again under the exclusive lock, then
    :func:`settle` folds and cuts."""
    if not changes:
        return
    folds = next(_recorded) % FOLD_EVERY == 0
    if is_sqlite():
        rows.insert_changes(project_id, changes)
        if folds:
            settle(project_id)
        return
    shared = advisory_xact_lock_sql(ADVISORY_RANK_BLOCKS, project_id, shared=True)
    if not folds:
        rows.insert_changes(project_id, changes, after=shared)
        return
    try:
        with database.atomic():  # a savepoint: rolled back with the shared lock if it leaves
            rows.insert_changes(project_id, changes, after=shared)
            if _fold_lock(project_id) and _fold(project_id, in_place=True) is None:
                raise _Leaves
    except _Leaves:
        lock(project_id)
        rows.insert_changes(project_id, changes)
        settle(project_id)


def _fold_lock(project_id: int) -> bool:
    """PostgreSQL: take the project's fold lock if no other writer holds it."""
    return try_advisory_xact_lock(ADVISORY_RANK_FOLD, project_id)


def _touch(project_id: int) -> int:
    """Give the project's blocks a new version; returns it. Random (``secrets``, not the
    seedable ``random``): a version never committed (a transaction rolled back) is never met
    again, so a process that kept blocks under it never mistakes them for another's."""
    version = secrets.randbits(62)
    rows.touch(project_id, version)
    return version


def _blocks_to_fold(project_id: int, order: int, version: int | None) -> _Blocks:
    """The order's blocks as they stand in this transaction (the caller holds the fold lock,
    the blocks' lock or the project's, or is on SQLite: no one else changes them): the
    process's kept ones when they are of ``version``, else read (and kept)."""
    key = _cache_key(project_id, order)
    kept = _cache.get(key)
    if kept is not None and version is not None and kept.version == version:
        return kept
    found = [(b.start, b.size, b.id) for b in rows.all_blocks(project_id, order)]
    blocks = _Blocks.of(version, found)
    if version is not None:
        _cache.put(key, blocks)
    return blocks


def _fold(
    project_id: int, *, in_place: bool, ordering: Ordering | None = None
) -> list[tuple[Ordering, int, int]] | None:
    """Add the project's pending changes (of one order) to the block sizes and delete them.
    Returns the (order, block id, size) of the blocks it changed or made. ``in_place``: only
    size changes (and the first block's start moved down); None, with the work half done,
    when a block must be cut, merged, made or dropped (the caller rolls back).

    The blocks come from the process's copy when it is of the current version (no read of a
    whole order), and the process keeps the folded blocks under the new version: readers of
    this process need not read them again after a fold (another process does, once)."""
    taken = rows.take_changes(project_id, None if ordering is None else int(ordering))
    if not taken:
        return []
    by_order: dict[int, list[tuple[Key, int]]] = defaultdict(list)
    for order, key, delta in taken:
        by_order[order].append((key, delta))
    old_version = rows.version(project_id)
    touched: list[tuple[Ordering, int, int]] = []
    folded: dict[int, _Blocks | None] = {}  # None: a block made (read again)
    for order, changes in sorted(by_order.items()):
        blocks = _blocks_to_fold(project_id, order, old_version)
        if not blocks.starts:
            net = sum(delta for _, delta in changes)
            if net <= 0:
                continue
            if in_place:
                return None
            start = min(key for key, _ in changes)
            rows.insert(project_id, order, start, net)
            made = rows.block_of(project_id, order, start)
            assert made is not None
            touched.append((Ordering(order), made.id, net))
            folded[order] = None
            continue
        starts = blocks.starts
        shifts: Counter[int] = Counter()
        first_start = starts[0]
        for key, delta in changes:
            index = max(0, bisect_right(starts, key) - 1)
            shifts[index] += delta
            if key < first_start:
                first_start = key
        sizes: list[tuple[int, int]] = []
        new_sizes = list(blocks.sizes)
        for index, delta in sorted(shifts.items()):
            if not delta:
                continue
            size = blocks.sizes[index] + delta
            if in_place and (size > MAX_SIZE or size <= 0 or (size < MIN_SIZE and len(starts) > 1)):
                return None
            sizes.append((blocks.ids[index], size))
            new_sizes[index] = size
            touched.append((Ordering(order), blocks.ids[index], size))
        new_starts = starts
        if first_start != starts[0]:
            rows.set_start(blocks.ids[0], first_start)
            new_starts = [first_start, *starts[1:]]
        rows.set_sizes(sizes)
        folded[order] = _Blocks.made(None, new_starts, new_sizes, blocks.ids)
    version = _touch(project_id)
    if old_version is not None:
        for each in Ordering:
            cache_key = _cache_key(project_id, int(each))
            if int(each) in folded:
                now = folded[int(each)]
            else:  # unchanged: kept under the new version if kept under the old one
                kept = _cache.get(cache_key)
                now = kept if kept is not None and kept.version == old_version else None
            if now is not None:
                _cache.put(cache_key, replace(now, version=version))
    return touched


def settle(project_id: int, ordering: Ordering | None = None) -> None:
    """Fold every pending change of the project (of one order) and cut or merge the blocks
    left out of MIN..MAX. The caller holds the blocks' lock exclusively, or the project's (or
    is on SQLite): the stored sizes are then exact."""
    folded = _fold(project_id, in_place=False, ordering=ordering) or []
    if _reshape(project_id, folded):
        _touch(project_id)


def _reshape(project_id: int, blocks: Sequence[tuple[Ordering, int, int]]) -> bool:
    """Cut or merge those of ``blocks`` ((order, block id, size) as stored) whose size lies
    out of MIN..MAX; whether any was. Cuts recount from the task index: every task of the
    order must be counted by then."""
    reshaped = False
    for order, block_id, size in blocks:
        if MIN_SIZE <= size <= MAX_SIZE:
            continue  # (a block merged into by an earlier step was resized, and cut, there)
        block = rows.by_id(block_id)
        if block is None:  # merged away by an earlier step
            continue
        if block.size > MAX_SIZE:
            _split(project_id, order, block)
            reshaped = True
        elif block.size < MIN_SIZE:
            _join(project_id, order, block)
            reshaped = True
    return reshaped


State = tuple[bool, int | None]  # (is_labeled, completed_at)


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


def _cut_sorted(
    project_id: int,
    ordering: Ordering,
    first: Block | None,
    key_at: Callable[[int], Key],
    count: int,
) -> None:
    """Store ``count`` sorted keys (``key_at(i)``: the i-th) as TARGET-sized blocks: the first
    piece in ``first`` (its size set, its start kept), the others in new blocks starting at
    their first key; without ``first``, every piece in a new block. Only the pieces' first
    keys are made."""
    new = []
    offset = 0
    for number, size in enumerate(_sizes(count)):
        start = key_at(offset)
        if number == 0 and first is not None:
            rows.set_size(first.id, size)
            if start < first.start:  # (only the first block of the order)
                rows.set_start(first.id, start)
        else:
            new.append((project_id, int(ordering), start[0], start[1], size))
        offset += size
    bulk_insert(TaskRankBlock, _BLOCK_COLUMNS, new)


def _append_ids(project_id: int, ordering: Ordering, ids: Sequence[int]) -> None:
    """Count new ids, ascending, that all lie above every id counted in an id order: the last
    block is filled up to TARGET (or grows by a short tail while it stays under MAX_SIZE),
    the rest is cut into new blocks from the ids themselves, without reading a task key back
    (a million ids are not copied into a million keys)."""
    last = rows.last_block(project_id, ordering)
    taken = 0
    if last is not None:
        if len(ids) < MIN_SIZE and last.size + len(ids) <= MAX_SIZE:
            rows.set_size(last.id, last.size + len(ids))
            return
        taken = min(max(0, TARGET - last.size), len(ids))
        if taken:
            rows.set_size(last.id, last.size + taken)
    _cut_sorted(project_id, ordering, None, lambda i: (0, ids[taken + i]), len(ids) - taken)


def _ascending(values: Sequence[int]) -> bool:
    return all(a <= b for a, b in itertools.pairwise(values))


def _count_completed(
    project_id: int, ats: Sequence[int], ids: Sequence[int], existing_below: int
) -> list[tuple[Ordering, int, int]]:
    """Count an import's completion-order keys ``(ats[i], ids[i])`` (ids ascending), which may
    fall anywhere in the order; returns the (order, block id, size) of the blocks it resized.

    A key below the last block's start adds 1 to the size of the block it falls in (one below
    every start moves the first block's start down); those blocks are cut or merged after,
    by :func:`count_import`. The keys from the last block's start on (all of them, usually:
    labeled tasks imported after the others; every key when the order has one block) are
    merged with that block's keys of the tasks that were there before (ids below
    ``existing_below``: at most one block's worth, read from the index) and cut into blocks
    from the merged keys, so the import's keys are not read back from the database."""
    ordering = Ordering.COMPLETED
    # (at, id) order without a million pairs: a stable sort by time keeps ids ascending (no
    # sort when the times ascend already, as when labeled tasks are imported in their order).
    order: Sequence[int] = range(len(ats))
    if not _ascending(ats):
        order = sorted(order, key=ats.__getitem__)

    def key(index: int) -> Key:
        return (ats[index], ids[index])

    blocks = rows.all_blocks(project_id, ordering)
    if not blocks:
        _cut_sorted(project_id, ordering, None, lambda i: key(order[i]), len(order))
        return []
    last = blocks[-1]
    lone = len(blocks) == 1  # the first block too: it covers every key below its start
    cut = 0 if lone else bisect_left(order, last.start, key=key)
    changed: list[tuple[Ordering, int, int]] = []
    if cut:
        starts = [b.start for b in blocks]
        if key(order[0]) < starts[0]:
            rows.set_start(blocks[0].id, key(order[0]))
        counts = Counter(max(0, bisect_right(starts, key(i)) - 1) for i in order[:cut])
        sizes = [(blocks[i].id, blocks[i].size + n) for i, n in sorted(counts.items())]
        rows.set_sizes(sizes)
        changed = [(ordering, block_id, size) for block_id, size in sizes]
    above = len(order) - cut
    if not above:
        return changed
    if above < MIN_SIZE and last.size + above <= MAX_SIZE:
        rows.set_size(last.id, last.size + above)
        if key(order[cut]) < last.start:  # (a lone block)
            rows.set_start(last.id, key(order[cut]))
        return changed
    since = None if lone else last.start
    before = _task_keys(project_id, ordering, since, None, below_id=existing_below)
    first_new = key(order[cut])
    if not before or before[-1] < first_new:  # the usual case: the new keys follow
        split = len(before)

        def key_at(i: int) -> Key:
            return before[i] if i < split else key(order[cut + i - split])

    else:  # interleaved with the block's earlier keys
        merged = list(heapq.merge(before, map(key, order[cut:])))

        def key_at(i: int) -> Key:
            return merged[i]

    _cut_sorted(project_id, ordering, last, key_at, len(before) + above)
    return changed


def count_import(
    project_id: int,
    ids: Sequence[int],
    unlabeled: Sequence[int],
    completed: tuple[Sequence[int], Sequence[int]],
) -> None:
    """Count a bulk import's new tasks in the blocks once every one of them is stored.

    ``ids``: the new tasks' ids, ascending; ``unlabeled``: those of them without a completion,
    ascending; ``completed``: the others' ``completed_at`` values and ids, ids ascending. The
    caller holds the blocks' lock exclusively (:func:`lock`): on PostgreSQL per-task writers
    of the project ran beside the import until then (its project lock is shared, see
    :func:`server.services.projects.lock_project_for_import`), and their pending changes were
    folded by them meanwhile.

    1. Every pending change is folded into the sizes, without cutting or merging yet: a cut
       recounts a block from the task index, which holds the new tasks, not counted yet.
    2. New ids lie above every id counted (nothing else adds tasks to the project during an
       import), so the id orders' blocks are cut from the ids alone. Completion keys may fall
       anywhere (imported completion times; completions saved beside the import): see
       :func:`_count_completed`.
    3. Blocks left out of MIN..MAX are cut or merged: every task is counted now, so a cut's
       recount from the index agrees with the sizes.
    """
    changed = _fold(project_id, in_place=False) or []
    _touch(project_id)
    if ids:  # (the blocks _append_ids writes hold MIN..MAX tasks but for a lone or last one)
        _append_ids(project_id, Ordering.ID, ids)
    if unlabeled:
        _append_ids(project_id, Ordering.UNLABELED, unlabeled)
    ats, labeled = completed
    if labeled:
        changed += _count_completed(project_id, ats, labeled, ids[0])
    _reshape(project_id, changed)


def clear(project_id: int, *orderings: Ordering) -> None:
    """Drop the blocks and pending changes of these orders (a bulk writer, before
    :func:`rebuild`)."""
    for ordering in orderings:
        rows.take_changes(project_id, int(ordering))
    TaskRankBlock.delete().where(
        TaskRankBlock.project == project_id,
        TaskRankBlock.ordering.in_([int(o) for o in orderings]),
    ).execute()
    _touch(project_id)


def rebuild(ordering: Ordering, project_id: int | None = None) -> None:
    """Write an order's blocks from the task table in one statement (migrations, bulk resets):
    every TARGET-th key in the order starts a block. The caller cleared the old blocks (with
    :func:`clear`, which gives the blocks a new version)."""
    columns = key_columns(ordering)
    partition = [Task.project]
    number = peewee.fn.ROW_NUMBER().over(partition_by=partition, order_by=list(columns))
    total = peewee.fn.COUNT(Task.id).over(partition_by=partition)
    # Constants as literals (they come from code): PostgreSQL types a bare parameter in a
    # SELECT list as text, and the statement's PREPARE then failed for the integer columns.
    at = Task.completed_at if ordering is Ordering.COMPLETED else peewee.SQL("0")
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
        [ranked], [c.project_id, peewee.SQL(str(int(ordering))), c.start_at, c.start_id, size]
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
def _key_sql(param: str, ordering: Ordering) -> str:
    """The seek inside a block (the conditions are the partial indexes' literal ones)."""
    if ordering is Ordering.COMPLETED:
        columns, seek = '"completed_at", "id"', f'("completed_at", "id") >= ({param}, {param})'
    else:
        columns, seek = '"id"', f'"id" >= {param}'
    return (
        f'SELECT {columns} FROM "task" WHERE "project_id" = {param}'
        f"{_MEMBER_CONDITION[ordering]} AND {seek} ORDER BY {columns} LIMIT 1 OFFSET {param}"
    )


@dataclass(frozen=True)
class _Blocks:
    """An order's blocks as a process keeps them, for one version of the project's blocks:
    starts ascending, the number of tasks before each (their stored sizes summed), sizes and
    ids."""

    version: int | None
    starts: list[Key]
    before: list[int]
    sizes: list[int]
    ids: list[int]

    @classmethod
    def of(cls, version: int | None, blocks: list[rows.BlockRow]) -> _Blocks:
        """From (start, size, id) rows in any order."""
        blocks.sort()
        return cls.made(
            version,
            [start for start, _, _ in blocks],
            [size for _, size, _ in blocks],
            [block_id for _, _, block_id in blocks],
        )

    @classmethod
    def made(
        cls, version: int | None, starts: list[Key], sizes: list[int], ids: list[int]
    ) -> _Blocks:
        before = list(itertools.accumulate(sizes[:-1], initial=0)) if sizes else []
        return cls(version, starts, before, sizes, ids)


def _cache_key(project_id: int, ordering: int) -> tuple[str, int, int]:
    return (str(database.obj.database), project_id, int(ordering))


class _BlockCache:
    """The blocks of recently paged orders, by (database, project, order); bounded."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, int, int], _Blocks] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int, int]) -> _Blocks | None:
        return self._items.get(key)

    def put(self, key: tuple[str, int, int], blocks: _Blocks) -> None:
        with self._lock:
            self._items[key] = blocks
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


_cache = _BlockCache()


def _blocks_and_pending(
    project_id: int, ordering: Ordering
) -> tuple[_Blocks, list[Key], list[int]]:
    """The order's blocks (cached while their version holds) and its pending changes: keys
    ascending and the running sum of their deltas (``sums[j]``: the first j keys')."""
    cache_key = _cache_key(project_id, ordering)
    cached = _cache.get(cache_key)
    if cached is not None:
        version, pending, _ = rows.read_order(project_id, int(ordering), with_blocks=False)
        if version is None or version != cached.version:
            cached = None
    if cached is None:
        version, pending, found = rows.read_order(project_id, int(ordering), with_blocks=True)
        cached = _Blocks.of(version, found)
        if version is not None:
            _cache.put(cache_key, cached)
    pending.sort()
    keys = [key for key, _ in pending]
    sums = list(itertools.accumulate((delta for _, delta in pending), initial=0))
    return cached, keys, sums


def kth_key(project_id: int, ordering: Ordering, k: int) -> Key | None:
    """The key of the k-th (0-based) task of an order, or None past its end."""
    if k < 0:
        return None
    blocks, keys, sums = _blocks_and_pending(project_id, ordering)
    starts, before = blocks.starts, blocks.before

    def tasks_before(index: int) -> int:
        """Tasks before block ``index``: its stored prefix plus the pending changes below its
        start (the first block has none before it: keys below its start are its own)."""
        if index == 0:
            return 0
        return before[index] + sums[bisect_left(keys, starts[index])]

    if not starts:
        if not keys:
            return None
        seek, skip = keys[0], k
    else:  # the last block with at most k tasks before it
        low, high = 0, len(starts) - 1
        while low < high:
            middle = (low + high + 1) // 2
            if tasks_before(middle) <= k:
                low = middle
            else:
                high = middle - 1
        seek, skip = starts[low], k - tasks_before(low)
        if low == 0 and keys and keys[0] < seek:
            seek = keys[0]
    params = (seek[0], seek[1]) if ordering is Ordering.COMPLETED else (seek[1],)
    found = database.execute_sql(
        _key_sql(database.param, ordering), (project_id, *params, skip)
    ).fetchone()
    if found is None:
        return None
    if ordering is Ordering.COMPLETED:
        return (int(found[0]), int(found[1]))
    return (0, int(found[0]))
