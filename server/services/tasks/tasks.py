"""Tasks: listing (page numbers and keyset cursors), lookup, update, deletion.

Every listing is index-backed. Page numbers keep Label Studio's meaning (page N of size S is
the tasks S*(N-1)+1 .. S*N of those that exist now, in the order asked): the first task of a
page is found through the counted key blocks of :mod:`server.services.tasks.rank_blocks` (a
bounded cost at any depth, see there why), then the page is one index seek from its key.
Deleting a task uncounts it from its blocks: no later task is renumbered. Keyset cursors seek
on ``(project, id)`` or ``(project, completed_at, id)``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import peewee

from server.db import PreparedSelect, PreparedSelects, bulk_insert, is_sqlite, write_transaction
from server.db_rows import ANALYZE_OVER, analyze_referencing
from server.errors import DomainError, not_found
from server.ls_json import mean_score
from server.models import (
    COMPLETED,
    UNLABELED,
    Completion,
    Prediction,
    Project,
    Task,
    dump_json,
    now_seconds,
)
from server.services import counters, events
from server.services.config import derived_schema
from server.services.config.model import LabelConfig
from server.services.datamanager import labels
from server.services.imports.validation import ROOT_MESSAGE, ItemError, ValidTask, validate_item
from server.services.projects import get_project, lock_project, parsed_config
from server.services.tasks import rank_blocks
from server.services.tasks.cursors import LazyCursors
from server.services.tasks.lookup import lock_task
from server.services.tasks.rank_blocks import Ordering


class TaskOrder(Enum):
    ID_ASC = "id"
    ID_DESC = "-id"
    COMPLETED_AT_ASC = "completed_at"
    COMPLETED_AT_DESC = "-completed_at"


@dataclass
class TaskPage:
    tasks: list[Task]
    total: int
    total_completions: int
    total_predictions: int


@dataclass
class TaskSlice:
    tasks: list[Task]
    cursors: Sequence[str]  # of each task, encoded when read (:class:`LazyCursors`)
    has_next_page: bool
    total: int


def get_task(task_id: int, project_id: int | None = None, *, for_update: bool = False) -> Task:
    """A task by id (optionally only within a project). ``for_update`` locks its row on
    PostgreSQL for the rest of the transaction; SQLite's write transactions are already
    serialised."""
    query = Task.select().where(Task.id == task_id)
    if project_id is not None:
        query = query.where(Task.project == project_id)
    if for_update and not is_sqlite():
        query = query.for_update()
    task: Task | None = query.first()
    if task is None:
        raise not_found("Task", task_id)
    return task


def _in_project(project_id: int) -> peewee.Expression:
    return Task.project == project_id


def _completed_group(project_id: int, descending: bool) -> peewee.ModelSelect[Task]:
    order = (
        (Task.completed_at.desc(), Task.id.desc()) if descending else (Task.completed_at, Task.id)
    )
    return Task.select().where(_in_project(project_id), COMPLETED).order_by(*order)


def _unlabeled_group(project_id: int) -> peewee.ModelSelect[Task]:
    return Task.select().where(_in_project(project_id), UNLABELED).order_by(Task.id)


# A page in id order from its first task's id, the SQL built once (REST's task pages, which
# the mixed load of bench/load/ browses: peewee built it per request at several times the
# cost of the seek): (project, first id, size).
_ID_PAGES = {
    False: PreparedSelect(
        Task,
        lambda p, k, n: (
            Task.select().where(_in_project(p) & (Task.id >= k)).order_by(Task.id).limit(n)
        ),
        3,
    ),
    True: PreparedSelect(
        Task,
        lambda p, k, n: (
            Task.select().where(_in_project(p) & (Task.id <= k)).order_by(Task.id.desc()).limit(n)
        ),
        3,
    ),
}


def _id_page(project_id: int, total: int, offset: int, size: int, desc: bool) -> list[Task]:
    index = total - 1 - offset if desc else offset
    key = rank_blocks.kth_key(project_id, Ordering.ID, index)
    if key is None:
        return []
    return _ID_PAGES[desc].rows(project_id, key[1], size)


# Pages of the completion order from their first task's key, and of the unlabeled tasks from
# their first id, the SQL built once like _ID_PAGES: (project, completed_at, id, size) and
# (project, first id, size).
_COMPLETED_PAGES = {
    desc: PreparedSelect(
        Task,
        lambda p, at, k, n, desc=desc: (
            _completed_group(p, desc)
            .where(
                rank_blocks.key_from(Ordering.COMPLETED, (at, k), "<=" if desc else ">="),
            )
            .limit(n)
        ),
        4,
    )
    for desc in (False, True)
}
_UNLABELED_PAGE = PreparedSelect(
    Task, lambda p, k, n: _unlabeled_group(p).where(Task.id >= k).limit(n), 3
)


def _completed_page(
    project_id: int, labeled: int, offset: int, size: int, desc: bool
) -> list[Task]:
    index = labeled - 1 - offset if desc else offset
    key = rank_blocks.kth_key(project_id, Ordering.COMPLETED, index)
    if key is None:
        return []
    return _COMPLETED_PAGES[desc].rows(project_id, key[0], key[1], size)


def _unlabeled_page(project_id: int, offset: int, size: int) -> list[Task]:
    key = rank_blocks.kth_key(project_id, Ordering.UNLABELED, offset)
    if key is None:
        return []
    return _UNLABELED_PAGE.rows(project_id, key[1], size)


def list_page(project: Project, page: int, page_size: int, order: TaskOrder) -> TaskPage:
    """Page ``page`` (1-based) of a project's tasks, with the project's totals."""
    if page < 1 or page_size < 1:
        raise DomainError("invalid", "Incorrect page or page_size", {"field": "page"})
    project_id = project.id
    offset = (page - 1) * page_size
    tasks: list[Task]
    if offset >= project.task_count:  # past the end (also keeps huge numbers out of SQL)
        tasks = []
    elif order in (TaskOrder.ID_ASC, TaskOrder.ID_DESC):
        desc = order is TaskOrder.ID_DESC
        tasks = _id_page(project_id, project.task_count, offset, page_size, desc)
    else:
        labeled = project.labeled_task_count
        desc = order is TaskOrder.COMPLETED_AT_DESC
        tasks = []
        if offset < labeled:
            tasks = _completed_page(project_id, labeled, offset, page_size, desc)
        if len(tasks) < page_size:
            start = max(0, offset - labeled)
            tasks += _unlabeled_page(project_id, start, page_size - len(tasks))
    return TaskPage(
        tasks=tasks,
        total=project.task_count,
        total_completions=project.completion_count,
        total_predictions=project.prediction_count,
    )


def _encode_cursor(task: Task, order: TaskOrder) -> str:
    if order in (TaskOrder.COMPLETED_AT_ASC, TaskOrder.COMPLETED_AT_DESC):
        raw = json.dumps([order.value, task.completed_at, task.id], separators=(",", ":")).encode()
    else:  # what json.dumps makes of [order, id], a page's worth of times faster
        raw = f'["{order.value}",{int(task.id)}]'.encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, order: TaskOrder) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(value, list) or value[0] != order.value:
            raise ValueError("cursor belongs to another order")
        key = value[1:]
        if not all(k is None or isinstance(k, int) for k in key) or not key:
            raise ValueError("bad cursor key")
        return key
    except (ValueError, binascii.Error, IndexError, TypeError):
        raise DomainError(
            "invalid",
            "Invalid cursor for this order; pass an endCursor you received",
            {"field": "after"},
        ) from None


# Keyset slices in id order, their SQL built once: (project, limit) and (project, after, limit).
_ID_SLICES = {
    TaskOrder.ID_ASC: PreparedSelect(
        Task, lambda p, n: Task.select().where(_in_project(p)).order_by(Task.id).limit(n), 2
    ),
    TaskOrder.ID_DESC: PreparedSelect(
        Task, lambda p, n: Task.select().where(_in_project(p)).order_by(Task.id.desc()).limit(n), 2
    ),
}
_ID_SLICES_AFTER = {
    TaskOrder.ID_ASC: PreparedSelect(
        Task,
        lambda p, k, n: (
            Task.select().where(_in_project(p) & (Task.id > k)).order_by(Task.id).limit(n)
        ),
        3,
    ),
    TaskOrder.ID_DESC: PreparedSelect(
        Task,
        lambda p, k, n: (
            Task.select().where(_in_project(p) & (Task.id < k)).order_by(Task.id.desc()).limit(n)
        ),
        3,
    ),
}


def list_slice(
    project: Project, first: int, after: str | None, order: TaskOrder, max_first: int
) -> TaskSlice:
    """Keyset pagination: up to ``first`` tasks after the cursor ``after``."""
    if first < 0 or first > max_first:
        raise DomainError("invalid", f"first must be between 0 and {max_first}", {"field": "first"})
    project_id = project.id
    key = _decode_cursor(after, order) if after else None
    limit = first + 1
    tasks: list[Task]
    if order in (TaskOrder.ID_ASC, TaskOrder.ID_DESC):
        if key and key[0] is None:
            tasks = []  # as SQL's ``id > NULL``: nothing comes after it
        elif key:
            tasks = _ID_SLICES_AFTER[order].rows(project_id, key[0], limit)
        else:
            tasks = _ID_SLICES[order].rows(project_id, limit)
    else:
        descending = order is TaskOrder.COMPLETED_AT_DESC
        tasks = []
        in_unlabeled_group = bool(key and key[0] is None)
        if not in_unlabeled_group:
            query = _completed_group(project_id, descending)
            if key:
                row = peewee.Tuple(Task.completed_at, Task.id)
                bound = peewee.Tuple(key[0], key[1])
                query = query.where(row < bound if descending else row > bound)
            tasks = list(query.limit(limit))
        if len(tasks) < limit:
            query = _unlabeled_group(project_id)
            if in_unlabeled_group and key:
                query = query.where(Task.id > key[1])
            tasks += list(query.limit(limit - len(tasks)))
    has_next = len(tasks) > first
    tasks = tasks[:first]
    return TaskSlice(
        tasks=tasks,
        cursors=LazyCursors(tasks, functools.partial(_encode_cursor, order=order)),
        has_next_page=has_next,
        total=project.task_count,
    )


@dataclass
class TaskChildren:
    completions: dict[int, list[Completion]]
    predictions: dict[int, list[Prediction]]


# The page loader's queries, their SQL built once per number of tasks (a page's size).
_COMPLETIONS_OF = PreparedSelects(
    Completion,
    lambda *ids: Completion.select().where(Completion.task.in_(ids)).order_by(Completion.id),
    1000,
)
_PREDICTIONS_OF = PreparedSelects(
    Prediction,
    lambda *ids: Prediction.select().where(Prediction.task.in_(ids)).order_by(Prediction.id),
    1000,
)


def load_children(
    task_ids: list[int], prediction_task_ids: list[int] | None = None
) -> TaskChildren:
    """Completions of many tasks and predictions of many (by default the same) tasks in two
    queries at most (the page's batch loader); none for an empty list."""
    completions: dict[int, list[Completion]] = defaultdict(list)
    predictions: dict[int, list[Prediction]] = defaultdict(list)
    if task_ids:
        for c in _COMPLETIONS_OF.rows(task_ids):
            completions[c.task_id].append(c)
    if prediction_task_ids is None:
        prediction_task_ids = task_ids
    if prediction_task_ids:
        for p in _PREDICTIONS_OF.rows(prediction_task_ids):
            predictions[p.task_id].append(p)
    return TaskChildren(completions=completions, predictions=predictions)


def prediction_rows(
    project_id: int, task_id: int, predictions: list[dict[str, Any]], created_at: int
) -> list[tuple[Any, ...]]:
    """Database rows for predictions (columns of :data:`PREDICTION_COLUMNS`)."""
    rows = []
    for p in predictions:
        score = p.get("score")
        rows.append(
            (
                project_id,
                task_id,
                float(score)
                if isinstance(score, int | float) and not isinstance(score, bool)
                else None,
                _opt_text(p.get("model_version")),
                _opt_text(p.get("created_by")),
                created_at,
                dump_json(p),
            )
        )
    return rows


PREDICTION_COLUMNS = [
    "project_id",
    "task_id",
    "score",
    "model_version",
    "created_by",
    "created_at",
    "payload",
]


def _opt_score(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _opt_text(value: Any) -> str | None:
    return None if value is None else str(value)


def update_task(task_id: int, body: Any, project_id: int | None = None) -> Task:
    """Replace the ``data``/``predictions``/``meta`` that ``body`` names (compat Q-7)."""
    if not isinstance(body, dict):
        raise DomainError("invalid_tasks", ROOT_MESSAGE, {"errors": [ROOT_MESSAGE]})
    task = get_task(task_id, project_id)
    config: LabelConfig = parsed_config(get_project(task.project_id))
    item = dict(body)
    if "data" not in item:
        item["data"] = task.data
    try:
        valid: ValidTask = validate_item(item, config)
    except ItemError as exc:
        message = f"Error   at item 0: {exc} :: {body!r}"
        raise DomainError("invalid_tasks", message, {"errors": [message]}) from None
    with write_transaction():
        task = lock_task(task.id, task.project_id)
        changes: dict[str, Any] = {"data": valid.data, "updated_at": now_seconds()}
        if "meta" in body:
            changes["meta"] = valid.meta
        if "predictions" in body:
            old = task.total_predictions
            Prediction.delete().where(Prediction.task == task.id).execute()
            bulk_insert(
                Prediction,
                PREDICTION_COLUMNS,
                prediction_rows(task.project_id, task.id, valid.predictions, now_seconds()),
            )
            changes["total_predictions"] = len(valid.predictions)
            changes["predictions_score"] = mean_score(valid.predictions)
            counters.add(task.project_id, task.id, predictions=len(valid.predictions) - old)
        Task.update(changes).where(Task.id == task.id).execute()
        if not isinstance(task.data, dict) or task.data.keys() != valid.data.keys():
            derived_schema.mark_stale(task.project_id)
        events.emit(events.TASK_UPDATED, task.project_id, (task.id,))
        if "predictions" in body:
            events.emit(events.PROJECT_UPDATED, task.project_id, reason="counters")
        return Task.get_by_id(task.id)


def delete_task(task_id: int, project_id: int | None = None) -> int:
    """Delete a task with its completions and predictions, and uncount it from its blocks."""
    with write_transaction():
        task = lock_task(task_id, project_id)
        # Its completions, predictions and label rows go with it by their foreign keys' ON
        # DELETE CASCADE (foreign_keys=1 on SQLite): one statement, not three round trips.
        Task.delete().where(Task.id == task.id).execute()
        counters.add(
            task.project_id,
            task.id,
            tasks=-1,
            labeled=-1 if task.is_labeled else 0,
            completions=-task.total_completions,
            predictions=-task.total_predictions,
        )
        rank_blocks.record(
            task.project_id,
            [
                (ordering, rank_blocks.key_of(ordering, task.id, task.completed_at), -1)
                for ordering in rank_blocks.orderings_of(task.is_labeled)
            ],
        )
        derived_schema.mark_stale(task.project_id)
        events.emit(events.TASK_DELETED, task.project_id, (task.id,))
        events.emit(events.PROJECT_UPDATED, task.project_id, reason="counters")
        return task.id


def delete_all_tasks(project_id: int) -> int:
    """Delete every task of a project (uploads are kept); returns how many were deleted."""
    if get_project(project_id).task_count > ANALYZE_OVER:
        analyze_referencing(Task)  # see there: the cascades' plans, else O(n²) on PostgreSQL
    with write_transaction():
        project = lock_project(project_id)
        if events.bus.wanted(project_id):
            ids = Task.select(Task.id).where(_in_project(project_id)).order_by(Task.id)
            found = [int(i) for i in ids.limit(events.MAX_IDS).scalars()]
            events.add(
                events.Event(
                    events.TASK_DELETED, project_id, tuple(found), {"count": project.task_count}
                )
            )
            events.emit(events.PROJECT_UPDATED, project_id, reason="counters")
        labels.clear(project_id)
        Completion.delete().where(Completion.project == project_id).execute()
        Prediction.delete().where(Prediction.project == project_id).execute()
        Task.delete().where(_in_project(project_id)).execute()
        rank_blocks.clear(project_id, *Ordering)
        count = project.task_count
        counters.reset(project_id, *counters.FIELDS)
        derived_schema.mark_stale(project_id)
        return count
