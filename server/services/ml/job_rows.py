"""Prediction job rows (ml-backend.md §4.1): create a job, read it, set its state.

A job's row (state, total, done, failed, error) lives in the database, so any worker process
can report it; :mod:`server.services.ml.prediction_job` does the work.
"""

from __future__ import annotations

from typing import Any

import peewee

from server.db import write_transaction
from server.errors import DomainError, not_found
from server.models import Job, Task, now_seconds
from server.services import events
from server.services.ml.backends import (
    NO_ML_BACKEND,
    list_backends,
)
from server.services.projects import get_project

PREDICTIONS = "predictions"
TASK_IDS_MISSING = 'Request JSON data must have "task_ids": [1, 2, ...]'
STOPPED = "The server stopped before the job finished"
CHECK_CHUNK = 1000


def create_prediction_job(
    project_id: int, task_ids: list[int] | None, all_tasks: bool, max_tasks: int
) -> Job:
    """Check the request and store a queued job: predictions for ``task_ids`` (all must exist)
    or for every task of the project (those that exist now)."""
    project = get_project(project_id)
    if not list_backends(project_id):
        raise DomainError("invalid", NO_ML_BACKEND, {"reason": "no_ml_backend"})
    if task_ids is not None and all_tasks:
        raise DomainError("invalid", "Give taskIds or allTasks, not both", {"field": "taskIds"})
    params: dict[str, Any]
    if task_ids is None:
        if not all_tasks:
            raise DomainError("invalid", TASK_IDS_MISSING, {"field": "taskIds"})
        last = Task.select(peewee.fn.MAX(Task.id)).where(Task.project == project_id).scalar() or 0
        params, total = {"all_tasks": True, "last_task_id": last}, project.task_count
    else:
        ids = list(dict.fromkeys(task_ids))
        if len(ids) > max_tasks:
            message = f"At most {max_tasks} task ids per prediction job"
            raise DomainError("invalid", message, {"field": "taskIds"})
        _check_tasks_exist(project_id, ids)
        params, total = {"task_ids": ids}, len(ids)
    with write_transaction():
        return Job.create(project=project_id, kind=PREDICTIONS, params=params, total=total)


def _check_tasks_exist(project_id: int, ids: list[int]) -> None:
    for start in range(0, len(ids), CHECK_CHUNK):
        chunk = ids[start : start + CHECK_CHUNK]
        found = {
            row[0]
            for row in Task.select(Task.id)
            .where(Task.project == project_id, Task.id.in_(chunk))
            .tuples()
            .iterator()
        }
        for task_id in chunk:
            if task_id not in found:
                raise not_found("Task", task_id)


def get_job(job_id: int, project_id: int | None = None) -> Job:
    query = Job.select().where(Job.id == job_id)
    if project_id is not None:
        query = query.where(Job.project == project_id)
    job: Job | None = query.first()
    if job is None:
        raise not_found("Job", job_id)
    return job


def set_state(job_id: int, state: str, error: str | None = None) -> None:
    now = now_seconds()
    with write_transaction():
        if state == "running":
            Job.update(state=state, started_at=now).where(Job.id == job_id).execute()
        else:
            Job.update(state=state, error=error, finished_at=now).where(Job.id == job_id).execute()
        announce(job_id)


def announce(job_id: int) -> None:
    """A JOB_PROGRESS event (in the caller's transaction) for a job whose row changed."""
    if events.bus.listening():
        project_id = Job.select(Job.project).where(Job.id == job_id).scalar()
        if project_id is not None:
            events.emit(events.JOB_PROGRESS, int(project_id), (job_id,))
