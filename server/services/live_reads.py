"""What subscriptions read after an event (on a worker thread): small, by id."""

from __future__ import annotations

from typing import Any

from server.ls_json import completion_json, task_json
from server.models import Completion, Job, Task
from server.services import counters
from server.services.tasks.tasks import load_children


def task_as_json(task_id: int) -> dict[str, Any] | None:
    """A task in Label Studio's served form (None once deleted)."""
    task = Task.get_or_none(Task.id == task_id)
    if task is None:
        return None
    children = load_children([task.id])
    return task_json(
        task, children.completions.get(task.id, []), children.predictions.get(task.id, [])
    )


def completion_as_json(completion_id: int) -> dict[str, Any] | None:
    completion = Completion.get_or_none(Completion.id == completion_id)
    return None if completion is None else completion_json(completion)


def project_counters(project_id: int) -> dict[str, int]:
    return counters.read(project_id)


def job_state(job_id: int) -> dict[str, Any]:
    job = Job.get_by_id(job_id)
    return {
        "job_id": job.id,
        "project_id": job.project_id,
        "state": job.state,
        "total": job.total,
        "done": job.done,
        "failed": job.failed,
        "error": job.error,
    }
