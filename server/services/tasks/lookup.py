"""A task by id on the request path (every task GET and task write looks one up first), with
its SQL built once (:class:`server.db.PreparedSelect`): the same lookup as
:func:`server.services.tasks.tasks.get_task` without ``for_update``."""

from __future__ import annotations

from server.db import PreparedSelect
from server.errors import not_found
from server.models import Task

_BY_ID = PreparedSelect(Task, lambda task_id: Task.select().where(Task.id == task_id).limit(1), 1)
_BY_ID_IN_PROJECT = PreparedSelect(
    Task,
    lambda task_id, project_id: (
        Task.select().where((Task.id == task_id) & (Task.project == project_id)).limit(1)
    ),
    2,
)


def find_task(task_id: int, project_id: int | None = None) -> Task:
    """A task by id (only within ``project_id`` when given); NOT_FOUND when there is none."""
    if project_id is None:
        task = _BY_ID.first(task_id)
    else:
        task = _BY_ID_IN_PROJECT.first(task_id, project_id)
    if task is None:
        raise not_found("Task", task_id)
    return task
