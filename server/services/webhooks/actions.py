"""Label Studio 1.x webhook actions, and the bodies sent for them."""

from __future__ import annotations

from typing import Any

from server.ls_json import completion_json
from server.models import Completion, Project, Task
from server.services import events
from server.services.events import Event

ANNOTATION_CREATED = "ANNOTATION_CREATED"
ANNOTATION_UPDATED = "ANNOTATION_UPDATED"
ANNOTATIONS_DELETED = "ANNOTATIONS_DELETED"
TASKS_CREATED = "TASKS_CREATED"
TASKS_DELETED = "TASKS_DELETED"
PROJECT_UPDATED = "PROJECT_UPDATED"
ACTIONS = (
    ANNOTATION_CREATED,
    ANNOTATION_UPDATED,
    ANNOTATIONS_DELETED,
    TASKS_CREATED,
    TASKS_DELETED,
    PROJECT_UPDATED,
)
_BY_KIND = {
    events.COMPLETION_CREATED: ANNOTATION_CREATED,
    events.COMPLETION_UPDATED: ANNOTATION_UPDATED,
    events.COMPLETION_DELETED: ANNOTATIONS_DELETED,
    events.TASK_CREATED: TASKS_CREATED,
    events.TASK_DELETED: TASKS_DELETED,
}


def action_of(event: Event) -> str | None:
    """The webhook action an event is (None: no webhook is sent for it). A project's counters
    change with every completion: only its settings and config are PROJECT_UPDATED."""
    if event.kind == events.PROJECT_UPDATED:
        return PROJECT_UPDATED if event.data.get("reason") in ("settings", "config") else None
    return _BY_KIND.get(event.kind)


def project_json(project_id: int) -> dict[str, Any]:
    project = Project.get_by_id(project_id)
    return {
        "id": project.id,
        "title": project.title,
        "description": project.description,
        "label_config": project.label_config,
        "task_number": project.task_count,
        "num_tasks_with_annotations": project.labeled_task_count,
        "total_annotations_number": project.completion_count,
        "total_predictions_number": project.prediction_count,
    }


def task_json(task: Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "data": task.data,
        "meta": task.meta,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
        "is_labeled": task.is_labeled,
        "project": task.project_id,
    }


def payload(action: str, event: Event) -> dict[str, Any]:
    """The full body of an action (``send_payload``), read inside the event's transaction."""
    body: dict[str, Any] = {"action": action, "project": project_json(event.project_id)}
    if action in (ANNOTATION_CREATED, ANNOTATION_UPDATED):
        completion = Completion.get_or_none(Completion.id == event.ids[0])
        if completion is not None:
            body["annotation"] = completion_json(completion)
            task = Task.get_or_none(Task.id == completion.task_id)
            if task is not None:
                body["task"] = task_json(task)
    elif action == ANNOTATIONS_DELETED:
        body["annotations"] = [{"id": ident} for ident in event.ids]
    elif action in (TASKS_CREATED, TASKS_DELETED):
        body["tasks"] = [{"id": ident} for ident in event.ids]
    if event.count > len(event.ids):
        body["count"] = event.count
    return body
