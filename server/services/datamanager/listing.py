"""Filtered, searched and ordered task listings: keyset slices, numbered pages, counts.

The unfiltered listings in the two historic orders keep their own faster paths
(:mod:`server.services.tasks.tasks`); everything else comes through here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import peewee

from server.db import database, is_sqlite
from server.errors import DomainError
from server.models import Project, Task, TaskLabel
from server.services.datamanager import search as full_text
from server.services.datamanager.compile import compile_filter
from server.services.datamanager.conditions import Condition, Filter, Group
from server.services.datamanager.fields import Operator
from server.services.datamanager.ordering import (
    Phase,
    Position,
    Sort,
    after,
    decode_cursor,
    encode_cursor,
    phases,
)
from server.services.tasks.cursors import LazyCursors
from server.services.tasks.tasks import TaskPage, TaskSlice

SORT_VALUE = "dm_sort_value"


@dataclass(frozen=True)
class TaskSelection:
    """Which tasks of a project: a filter, a full-text search, an explicit set of ids."""

    filter: Filter | None = None
    search: str | None = None
    only_ids: tuple[int, ...] | None = None
    except_ids: tuple[int, ...] | None = None

    @property
    def is_everything(self) -> bool:
        return (
            self.filter is None
            and not (self.search and full_text.words(self.search))
            and self.only_ids is None
            and not self.except_ids
        )


def conditions(
    project_id: int, query: TaskSelection, *, paged: bool = False
) -> list[peewee.ColumnBase]:
    """The selection as conditions on ``Task`` (``paged``: for a keyset page, see
    :func:`server.services.datamanager.compile.compile_filter`)."""
    found: list[peewee.ColumnBase] = [Task.project == project_id]
    if query.filter is not None:
        found.append(compile_filter(project_id, query.filter, paged=paged))
    if query.search:
        match = full_text.matches(query.search)
        if match is not None:
            found.append(match)
    if query.only_ids is not None:
        found.append(Task.id.in_(list(query.only_ids)))
    if query.except_ids:
        found.append(Task.id.not_in(list(query.except_ids)))
    return found


def _phase_query(
    where: list[peewee.ColumnBase], phase: Phase, descending: bool, searched: bool = False
) -> peewee.ModelSelect[Task]:
    """One phase's rows in listing order. With a full-text search on PostgreSQL the id order
    is written ``id + 0``: the planner otherwise walks the primary key computing every task's
    text vector (2.7 s at 1M for a word in 0.1 % of tasks) instead of reading the matches from
    the GIN index and sorting them."""
    columns: list[Any] = [Task]
    if phase.value is not None:
        columns.append(phase.value.alias(SORT_VALUE))
    query = Task.select(*columns).where(*where)
    if phase.condition is not None:
        query = query.where(phase.condition)
    order: list[Any] = []
    if phase.value is not None:
        order.append(phase.value.desc() if descending else phase.value.asc())
    by_id: peewee.ColumnBase = Task.id
    if searched and not is_sqlite():
        by_id = Task.id + 0
    order.append(by_id.desc() if descending and not phase.last else by_id.asc())
    return query.order_by(*order)


def list_slice(
    project: Project,
    query: TaskSelection,
    sort: Sort,
    first: int,
    cursor: str | None,
    max_first: int,
) -> TaskSlice:
    """Up to ``first`` tasks after ``cursor``; ``total`` is -1 (counted on demand)."""
    if first < 0 or first > max_first:
        raise DomainError("invalid", f"first must be between 0 and {max_first}", {"field": "first"})
    where = conditions(project.id, query, paged=True)
    listed = phases(project.id, sort)
    if listed[-1].last and query.filter is not None and rejects_null(query.filter, sort.field):
        listed = listed[:-1]  # the filter needs a value: no task is in the "no value" phase
    position: Position | None = decode_cursor(cursor, sort, len(listed)) if cursor else None
    wanted = first + 1
    rows: list[tuple[Task, int]] = []
    start = position.phase if position else 0
    for index in range(start, len(listed)):
        phase = listed[index]
        searched = bool(query.search and full_text.words(query.search))
        select = _phase_query(where, phase, sort.descending, searched)
        if position is not None and index == position.phase:
            select = select.where(after(phase, position, sort.descending and not phase.last))
        rows += [(task, index) for task in select.limit(wanted - len(rows))]
        if len(rows) >= wanted:
            break
    has_next = len(rows) > first
    rows = rows[:first]

    def cursor_of(row: tuple[Task, int]) -> str:
        task, index = row
        return encode_cursor(sort, index, getattr(task, SORT_VALUE, None), task.id)

    return TaskSlice(
        tasks=[task for task, _ in rows],
        cursors=LazyCursors(rows, cursor_of),
        has_next_page=has_next,
        total=-1,
    )


_NEEDS_VALUE = frozenset(
    {
        Operator.EQUAL,
        Operator.CONTAINS,
        Operator.LESS,
        Operator.GREATER,
        Operator.LESS_OR_EQUAL,
        Operator.GREATER_OR_EQUAL,
        Operator.IN,
    }
)


def rejects_null(node: Filter, field: str) -> bool:
    """Whether every task the filter selects has a value in ``field`` (a scalar field: the
    ordering's last phase, the tasks without one, is then empty and need not be scanned)."""
    if isinstance(node, Group):
        found = [rejects_null(item, field) for item in node.items]
        return bool(found) and (any(found) if node.conjunction == "and" else all(found))
    if node.field.name != field or node.field.data_key is not None:
        return False
    if node.operator is Operator.EMPTY:
        return node.value is False
    return node.operator in _NEEDS_VALUE


def list_page(
    project: Project, query: TaskSelection, sort: Sort, page: int, page_size: int
) -> TaskPage:
    """Page ``page`` (1-based) with the totals of the whole selected set."""
    if page < 1 or page_size < 1:
        raise DomainError("invalid", "Incorrect page or page_size", {"field": "page"})
    where = conditions(project.id, query)
    total, completions, predictions = totals(where)
    offset = (page - 1) * page_size
    tasks: list[Task] = []
    if offset < total:
        listed = phases(project.id, sort)
        ranked = [(p.condition, i) for i, p in enumerate(listed) if p.condition is not None]
        rank = peewee.Case(None, ranked, len(listed)) if ranked else peewee.Value(0)
        order: list[Any] = [rank] if ranked else []
        for phase in listed:
            if phase.value is not None:
                order.append(phase.value.desc() if sort.descending else phase.value.asc())
        if sort.descending:  # ids descend but in the last phase (nulls), as in the id path
            last = len(listed) - 1 if listed[-1].last else -1
            order.append(peewee.Case(None, [(rank == last, Task.id)], Task.id * -1))
        else:
            order.append(Task.id.asc())
        select = Task.select().where(*where).order_by(*order)
        tasks = list(select.offset(offset).limit(page_size))
    return TaskPage(
        tasks=tasks, total=total, total_completions=completions, total_predictions=predictions
    )


def totals(where: list[peewee.ColumnBase]) -> tuple[int, int, int]:
    """How many tasks match, with their completions and predictions."""
    query = Task.select(
        peewee.fn.COUNT(Task.id),
        peewee.fn.SUM(Task.total_completions),
        peewee.fn.SUM(Task.total_predictions),
    ).where(*where)
    count, completions, predictions = database.execute(query).fetchone()
    return int(count or 0), int(completions or 0), int(predictions or 0)


def count(project: Project, query: TaskSelection) -> int:
    """How many tasks the query selects. A lone labeled-state or has-label condition is
    answered from the project's counters or the label index (a count over the task table
    visits every selected row: ~0.3 s for 300k labeled tasks on SQLite)."""
    if query.is_everything:
        return project.task_count
    shortcut = _counted_directly(project, query)
    if shortcut is not None:
        return shortcut
    found = Task.select(peewee.fn.COUNT(Task.id)).where(*conditions(project.id, query)).scalar()
    return int(found or 0)


def _counted_directly(project: Project, query: TaskSelection) -> int | None:
    node = query.filter
    while isinstance(node, Group) and len(node.items) == 1:
        node = node.items[0]
    if not isinstance(node, Condition) or query.search or query.only_ids or query.except_ids:
        return None
    op = node.operator
    if node.field.name == "is_labeled" and op in (Operator.EQUAL, Operator.NOT_EQUAL):
        labeled = bool(node.value) == (op is Operator.EQUAL)
        return (
            project.labeled_task_count
            if labeled
            else project.task_count - project.labeled_task_count
        )
    if node.field.name == "labels" and op is Operator.EQUAL:
        distinct = peewee.fn.COUNT(TaskLabel.task.distinct())
        rows = TaskLabel.select(distinct).where(
            TaskLabel.project == project.id, TaskLabel.label == node.value
        )
        return int(rows.scalar() or 0)
    return None


def task_ids(project: Project, query: TaskSelection) -> list[int]:
    """Ids of every selected task, ascending (for bulk actions)."""
    select = Task.select(Task.id).where(*conditions(project.id, query)).order_by(Task.id)
    return [row[0] for row in database.execute(select).fetchall()]
