"""A task by id on the request path (every task GET and task write looks one up first), with
its SQL built once (:class:`server.db.PreparedSelect`): the same lookup as
:func:`server.services.tasks.tasks.get_task`.

A task read to be served also tells whether its project has an ML backend
(:func:`has_ml_backend`), in the same statement: the task GET and the label stream ask it for
live predictions, and a second statement for it was a second round trip per request."""

from __future__ import annotations

import peewee

from server.db import ADVISORY_PROJECT, PreparedSelect, advisory_xact_lock_sql, is_sqlite
from server.errors import not_found
from server.models import MLBackend, Task
from server.services.projects import share_project

HAS_ML_BACKEND = "lg_has_ml_backend"  # the column (then attribute) of with_ml_backend_flag


def with_ml_backend_flag(query: peewee.ModelSelect[Task]) -> peewee.ModelSelect[Task]:
    """``query`` (of whole tasks) also reading whether each task's project has an ML backend
    (one index probe of ``ml_backend``), which :func:`has_ml_backend` then tells."""
    backend = MLBackend.select(peewee.SQL("1")).where(MLBackend.project == Task.project)
    return query.select_extend(peewee.fn.EXISTS(backend).alias(HAS_ML_BACKEND))


def has_ml_backend(task: Task) -> bool | None:
    """Whether ``task``'s project had an ML backend when ``task`` was read, if it was read by
    a query :func:`with_ml_backend_flag` made (None: not known)."""
    value = task.__dict__.get(HAS_ML_BACKEND)
    return None if value is None else bool(value)


_BY_ID = PreparedSelect(
    Task,
    lambda task_id: with_ml_backend_flag(Task.select().where(Task.id == task_id).limit(1)),
    1,
)
_BY_ID_IN_PROJECT = PreparedSelect(
    Task,
    lambda task_id, project_id: with_ml_backend_flag(
        Task.select().where((Task.id == task_id) & (Task.project == project_id)).limit(1)
    ),
    2,
)


def _locked(query: peewee.ModelSelect[Task]) -> peewee.ModelSelect[Task]:
    """Lock the row on PostgreSQL; SQLite's write transactions are already serialised."""
    return query if is_sqlite() else query.for_update()


_LOCKED_BY_ID = PreparedSelect(
    Task, lambda task_id: _locked(Task.select().where(Task.id == task_id).limit(1)), 1
)
_LOCKED_BY_ID_IN_PROJECT = PreparedSelect(
    Task,
    lambda task_id, project_id: _locked(
        Task.select().where((Task.id == task_id) & (Task.project == project_id)).limit(1)
    ),
    2,
)


# What a writer of a task's completions needs of it (its counters and completion-order key):
# not its data, whose JSON is the costliest part of reading the row.
_STATE_COLUMNS = (Task.id, Task.project, Task.total_completions, Task.is_labeled, Task.completed_at)
_LOCKED_STATE_IN_PROJECT = PreparedSelect(
    Task,
    lambda task_id, project_id: _locked(
        Task.select(*_STATE_COLUMNS)
        .where((Task.id == task_id) & (Task.project == project_id))
        .limit(1)
    ),
    2,
)


def find_task(task_id: int, project_id: int | None = None, *, for_update: bool = False) -> Task:
    """A task by id (only within ``project_id`` when given); NOT_FOUND when there is none.
    ``for_update`` locks its row on PostgreSQL for the rest of the transaction."""
    if project_id is None:
        task = (_LOCKED_BY_ID if for_update else _BY_ID).first(task_id)
    else:
        prepared = _LOCKED_BY_ID_IN_PROJECT if for_update else _BY_ID_IN_PROJECT
        task = prepared.first(task_id, project_id)
    if task is None:
        raise not_found("Task", task_id)
    return task


def lock_task_state(task_id: int, project_id: int | None = None) -> Task:
    """:func:`lock_task` reading only the task's id, project, ``total_completions``,
    ``is_labeled`` and ``completed_at`` (the other fields are left unset): what the writers of
    its completions use."""
    if project_id is None:
        project_id = find_task(task_id).project_id
    if is_sqlite():
        task = _LOCKED_STATE_IN_PROJECT.first(task_id, project_id)
    else:  # the project's shared lock, then the task's row lock: one round trip
        lock = advisory_xact_lock_sql(ADVISORY_PROJECT, project_id, shared=True)
        task = _LOCKED_STATE_IN_PROJECT.first_after(*lock, task_id, project_id)
    if task is None:
        raise not_found("Task", task_id)
    return task


def lock_task(task_id: int, project_id: int | None = None) -> Task:
    """A task to change, locked for the rest of the write transaction.

    On PostgreSQL every writer takes its project's lock before any task's (bulk writers lock
    the project, then touch many tasks): a writer taking them the other way round deadlocks
    against them, and PostgreSQL aborts one of the two. A per-task writer takes it shared
    (:func:`server.services.projects.share_project`): writers of different tasks do not wait
    for each other. An unknown project's task is read once unlocked to learn its project.
    SQLite's write transactions are serialised."""
    if is_sqlite():
        return find_task(task_id, project_id)
    if project_id is None:
        project_id = find_task(task_id).project_id
    share_project(project_id)
    return find_task(task_id, project_id, for_update=True)
