"""Completions (annotations): create, update, delete, and the counters they drive."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

import peewee

from server.db import database, is_sqlite, write_transaction
from server.errors import DomainError, not_found
from server.int_ranges import fits_query, is_timestamp
from server.ls_json import is_cancelled
from server.models import COMPLETED, Completion, Task, dump_json, now_seconds
from server.services import counters, events
from server.services.config import derived_schema
from server.services.datamanager import labels
from server.services.projects import get_project, lock_project
from server.services.storage import config as storage_config
from server.services.storage.storage_types import TARGET
from server.services.tasks import rank_blocks
from server.services.tasks.lookup import lock_task_state
from server.services.tasks.rank_blocks import Ordering

_SERVER_KEYS = ("id", "created_at")


def _check_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise DomainError("invalid", "Completion must be a JSON object", {"field": "completion"})
    if "result" in body and not isinstance(body["result"], list):
        raise DomainError(
            "invalid", '"result" field in completion must be list', {"field": "result"}
        )
    return body


def _payload(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in _SERVER_KEYS}


_ONE, _ZERO = peewee.SQL("1"), peewee.SQL("0")


def refresh_task_stats(task: Task) -> None:
    """Recompute a task's completion counters and shift the project's totals by the change."""
    total, cancelled, newest = (
        Completion.select(
            peewee.fn.COUNT(Completion.id),
            # Literal 1 and 0: PostgreSQL types bare parameters in a CASE as text, which made
            # the statement's PREPARE fail (sum(text)) on every connection that repeated it.
            peewee.fn.SUM(
                peewee.Case(None, [(Completion.was_cancelled == True, _ONE)], _ZERO)  # noqa: E712
            ),
            peewee.fn.MAX(Completion.created_at),
        )
        .where(Completion.task == task.id)
        .scalar(as_tuple=True)
    )
    total, cancelled = int(total or 0), int(cancelled or 0)
    labeled = total > 0
    Task.update(
        total_completions=total,
        cancelled_completions=cancelled,
        is_labeled=labeled,
        completed_at=newest if labeled else None,
        updated_at=now_seconds(),
    ).where(Task.id == task.id).execute()
    labeled_delta = int(labeled) - int(task.is_labeled)
    completions_delta = total - task.total_completions
    kind = events.TASK_LABELED if labeled_delta > 0 else events.TASK_UPDATED
    events.emit(kind, task.project_id, (task.id,))
    events.emit(events.PROJECT_UPDATED, task.project_id, reason="counters")
    counters.add(task.project_id, task.id, labeled=labeled_delta, completions=completions_delta)
    _recount(task, labeled, newest if labeled else None)


def _recount(task: Task, labeled: bool, completed_at: int | None) -> None:
    """Move the task between the completion-order blocks when its key changed (the last step
    of a writer: :func:`rank_blocks.move` takes the blocks' lock)."""
    old = (bool(task.is_labeled), task.completed_at)
    if old != (labeled, completed_at):
        rank_blocks.move(task.project_id, task.id, old, (labeled, completed_at))


def get_completion(completion_id: int, task_id: int | None = None) -> Completion:
    query = Completion.select().where(Completion.id == completion_id)
    if task_id is not None:
        query = query.where(Completion.task == task_id)
    completion: Completion | None = query.first()
    if completion is None:
        raise not_found("Completion", completion_id)
    return completion


@dataclass(frozen=True)
class Stored:
    """A completion created (or merged) by :func:`store_completion`, and whether its project
    had a target storage when it was committed: read inside the transaction, after the
    project's lock, which a storage's save takes exclusively
    (:func:`server.services.storage.config.save`), so a target saved after that read is saved
    after this commit too, and the new target's full write sees this completion."""

    completion: Completion
    has_target: bool


def create_completion(
    task_id: int,
    body: Any,
    was_cancelled: bool | None = None,
    project_id: int | None = None,
    completed_by: int | None = None,
    only_own: bool = False,
) -> Completion:
    """:func:`store_completion`'s completion."""
    return store_completion(
        task_id, body, was_cancelled, project_id, completed_by, only_own
    ).completion


def store_completion(
    task_id: int,
    body: Any,
    was_cancelled: bool | None = None,
    project_id: int | None = None,
    completed_by: int | None = None,
    only_own: bool = False,
) -> Stored:
    """Add a completion to a task (rest-api.md §3.2), made by the user ``completed_by``.

    ``was_cancelled=True`` stores a cancelled (skipped) completion; otherwise the body's
    ``was_cancelled``/``skipped`` keys are dropped. A body ``id`` naming an existing completion
    of the task updates that completion instead (with ``only_own``, only one of
    ``completed_by``'s own: FORBIDDEN otherwise). The answer tells whether the project has a
    target storage (:class:`Stored`), so that the caller need not ask after the commit.
    """
    body = _check_body(body)
    payload = _payload(body)
    if was_cancelled:
        payload["was_cancelled"] = True
    else:
        payload.pop("was_cancelled", None)
        payload.pop("skipped", None)
    with write_transaction():
        task = lock_task_state(task_id, project_id)
        existing_id = body.get("id")
        if fits_query(existing_id):
            existing = Completion.get_or_none(
                (Completion.id == existing_id) & (Completion.task == task.id)
            )
            if existing is not None:
                if only_own and existing.completed_by != completed_by:
                    raise DomainError("forbidden", "You may change only your own completions")
                merged = _merge(
                    existing, task, payload, was_cancelled=True if was_cancelled else None
                )
                return Stored(merged, storage_config.has_target(task.project_id))
        stored = _store_new_completion(task, payload, completed_by)
        completion = stored.completion
        events.emit(events.COMPLETION_CREATED, task.project_id, (completion.id,), task=task.id)
        kind = events.TASK_UPDATED if task.is_labeled else events.TASK_LABELED
        events.emit(kind, task.project_id, (task.id,))
        events.emit(events.PROJECT_UPDATED, task.project_id, reason="counters")
        return stored


# The statements of a new completion, the most frequent write, as SQL written once per
# backend: building them with peewee on each call cost more than running them.


@cache
def _new_completion_sql(p: str, returning: bool) -> tuple[str, str]:
    """(insert the completion, count it on its task) for the backend's parameter marker
    ``p``."""
    insert = (
        'INSERT INTO "completion" ("project_id", "task_id", "created_at", "updated_at", '
        f'"was_cancelled", "payload", "completed_by") VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p})'
    )
    if returning:
        insert += ' RETURNING "id"'
    task = (
        'UPDATE "task" SET "total_completions" = "total_completions" + 1, '
        f'"cancelled_completions" = "cancelled_completions" + {p}, "is_labeled" = {p}, '
        f'"completed_at" = {p}, "updated_at" = {p} WHERE "id" = {p}'
    )
    return insert, task


@lru_cache(maxsize=16)
def _one_statement_sql(p: str, labels_sql: str | None) -> str:
    """PostgreSQL: the writes of a new completion as one statement of data-modifying CTEs
    (the completion, its labels, its task's counts, its project's counts), answering the new
    completion's id and whether the project has a target storage. They share one snapshot
    and none reads what another writes, so they do as the separate statements did: one round
    trip instead of four (five with the target's lookup after the commit). Every row they
    lock besides the (already locked) task is new or the task's counter shard, as before. The
    snapshot is taken after the project's shared lock (an earlier statement), so a target
    storage saved before this writer's turn is seen (:class:`Stored`)."""
    insert, task = _new_completion_sql(p, True)
    parts = [("new_completion", insert), ("task_counts", task)]
    parts.append(("project_counts", counters.add_statement(0, 0)[0]))
    if labels_sql is not None:
        parts.append(("task_labels", labels_sql))
    ctes = ", ".join(f'"{name}" AS ({sql})' for name, sql in parts)
    target = f'EXISTS (SELECT 1 FROM "storage" WHERE "project_id" = {p} AND "role" = {p})'
    return f'WITH {ctes} SELECT "id", {target} FROM "new_completion"'


def _store_new_completion(task: Task, payload: dict[str, Any], completed_by: int | None) -> Stored:
    """Insert a new completion of the locked ``task`` and count it (the task's counts, the
    project's, the labels, and last the completion-order blocks)."""
    if is_sqlite():  # statements are calls into the process's own library: keep them apart
        completion = _insert_completion(task, payload, completed_by)
        labels.add(task.project_id, task.id, [payload])
        _count_new_completion(task, completion)
        return Stored(completion, storage_config.has_target(task.project_id))
    now = now_seconds()
    cancelled = is_cancelled(payload)
    newest = max(task.completed_at or 0, now)
    labels_statement = labels.add_statement(task.project_id, task.id, [payload])
    _sql, counter_params = counters.add_statement(
        task.project_id, task.id, labeled=0 if task.is_labeled else 1, completions=1
    )
    params: list[Any] = [
        *_completion_values(task, payload, completed_by, now, cancelled),
        *(int(cancelled), True, newest, now, task.id),
        *counter_params,
    ]
    labels_sql = None
    if labels_statement is not None:
        labels_sql = labels_statement[0]
        params += labels_statement[1]
    params += (task.project_id, TARGET)
    cursor = database.execute_sql(_one_statement_sql(database.param, labels_sql), params)
    new_id, has_target = cursor.fetchone()
    completion = _completion(task, int(new_id), payload, completed_by, now)
    _recount(task, True, newest)
    return Stored(completion, bool(has_target))


def _completion_values(
    task: Task, payload: dict[str, Any], completed_by: int | None, now: int, cancelled: bool
) -> tuple[Any, ...]:
    return (
        task.project_id,
        task.id,
        now,
        now,
        cancelled,
        dump_json(payload),  # JSON text: what the column holds on both backends
        completed_by,
    )


def _completion(
    task: Task, new_id: int, payload: dict[str, Any], completed_by: int | None, now: int
) -> Completion:
    return Completion(
        id=new_id,
        project=task.project_id,
        task=task.id,
        created_at=now,
        updated_at=now,
        was_cancelled=is_cancelled(payload),
        payload=payload,
        completed_by=completed_by,
    )


def _insert_completion(task: Task, payload: dict[str, Any], completed_by: int | None) -> Completion:
    now = now_seconds()
    cancelled = is_cancelled(payload)
    sqlite = is_sqlite()
    insert, _task = _new_completion_sql(database.param, not sqlite)
    values = _completion_values(task, payload, completed_by, now, cancelled)
    cursor = database.execute_sql(insert, values)
    new_id = cursor.lastrowid if sqlite else cursor.fetchone()[0]
    completion = Completion(
        id=int(new_id),
        project=task.project_id,
        task=task.id,
        created_at=now,
        updated_at=now,
        was_cancelled=cancelled,
        payload=payload,
        completed_by=completed_by,
    )
    return completion


def _count_new_completion(task: Task, completion: Completion) -> None:
    """Shift the counters by one new completion (cheaper than :func:`refresh_task_stats`):
    the task's, its project's (in the task's shard) and, last, the completion-order blocks."""
    newest = max(task.completed_at or 0, completion.created_at)
    _insert, task_sql = _new_completion_sql(database.param, not is_sqlite())
    database.execute_sql(
        task_sql,
        (
            int(completion.was_cancelled),
            True,
            newest,
            completion.created_at,
            task.id,
        ),
    )
    counters.add(task.project_id, task.id, labeled=0 if task.is_labeled else 1, completions=1)
    _recount(task, True, newest)


def _merge(
    completion: Completion, task: Task, payload: dict[str, Any], *, was_cancelled: bool | None
) -> Completion:
    merged = {**completion.payload, **payload}
    if was_cancelled is not None:
        merged["was_cancelled"] = was_cancelled
    elif "was_cancelled" not in payload and merged.get("was_cancelled"):
        merged["was_cancelled"] = False
    created_at = completion.created_at
    if is_timestamp(merged.get("created_at")):
        created_at = merged.pop("created_at")
    merged.pop("created_at", None)
    completion.payload = merged
    completion.created_at = created_at
    completion.was_cancelled = is_cancelled(merged)
    completion.updated_at = now_seconds()
    completion.save()
    events.emit(events.COMPLETION_UPDATED, task.project_id, (completion.id,), task=task.id)
    refresh_task_stats(task)
    if "result" in payload:
        derived_schema.mark_stale(task.project_id)
        labels.refresh(task.project_id, [task.id])
    return completion


def update_completion(
    completion_id: int,
    body: Any,
    was_cancelled: bool | None = None,
    task_id: int | None = None,
    project_id: int | None = None,
) -> Completion:
    """Shallow-merge ``body`` into a completion; ``created_at`` kept unless the body sends one.

    A stored ``was_cancelled`` is reset to false unless the body or ``was_cancelled`` sets it.
    """
    body = _check_body(body)
    payload = {k: v for k, v in body.items() if k != "id"}
    with write_transaction():
        completion = get_completion(completion_id, task_id)
        task = lock_task_state(completion.task_id, project_id)
        return _merge(completion, task, payload, was_cancelled=was_cancelled)


def _check_deletion_allowed(project_id: int) -> None:
    if not get_project(project_id).allow_delete_completions:
        raise DomainError("not_allowed", "Completion removing is not allowed in server config")


def delete_completion(
    completion_id: int, task_id: int | None = None, project_id: int | None = None
) -> int:
    with write_transaction():
        completion = get_completion(completion_id, task_id)
        task = lock_task_state(completion.task_id, project_id)
        _check_deletion_allowed(task.project_id)
        completion.delete_instance()
        events.emit(events.COMPLETION_DELETED, task.project_id, (completion_id,), task=task.id)
        refresh_task_stats(task)
        labels.refresh(task.project_id, [task.id])
        derived_schema.mark_stale(task.project_id)
        return completion_id


def delete_task_completions(task_id: int, project_id: int | None = None) -> int:
    with write_transaction():
        task = lock_task_state(task_id, project_id)
        _check_deletion_allowed(task.project_id)
        _announce_deletions(task.project_id, Completion.task == task.id, task=task.id)
        deleted = Completion.delete().where(Completion.task == task.id).execute()
        refresh_task_stats(task)
        labels.refresh(task.project_id, [task.id])
        derived_schema.mark_stale(task.project_id)
        return int(deleted)


def delete_all_completions(project_id: int) -> int:
    """Remove every completion of a project (not gated, as in Label Studio)."""
    with write_transaction():
        lock_project(project_id)
        _announce_deletions(project_id, Completion.project == project_id)
        deleted = Completion.delete().where(Completion.project == project_id).execute()
        labels.clear(project_id)
        Task.update(
            total_completions=0, cancelled_completions=0, is_labeled=False, completed_at=None
        ).where(Task.project == project_id, COMPLETED).execute()
        counters.reset(project_id, "labeled_task_count", "completion_count")
        rank_blocks.clear(project_id, Ordering.COMPLETED, Ordering.UNLABELED)
        rank_blocks.rebuild(Ordering.UNLABELED, project_id)
        derived_schema.mark_stale(project_id)
        events.emit(events.PROJECT_UPDATED, project_id, reason="counters")
        return int(deleted)


def _announce_deletions(project_id: int, which: peewee.Expression, **data: Any) -> None:
    """A COMPLETION_DELETED event for the completions about to be deleted (their ids are
    read only when someone listens)."""
    if events.bus.wanted(project_id):
        query = Completion.select(Completion.id).where(which).order_by(Completion.id)
        ids = [int(i) for i in query.scalars()]
        if ids:
            events.add(events.bulk(events.COMPLETION_DELETED, project_id, ids, **data))


def labeled_task_ids(project_id: int) -> list[int]:
    """Ids of the tasks that have completions, ascending (compat Q-13)."""
    return list(
        Task.select(Task.id)
        .where(Task.project == project_id, COMPLETED)
        .order_by(Task.id)
        .scalars()
    )
