"""Label Studio 0.9.1's data-manager columns (``GET /api/project/columns``) and the completions
of a view's tasks (``GET /api/project/tabs/<id>/annotations``)."""

from __future__ import annotations

from typing import Any

from server.ls_json import completed_at_text, completion_json
from server.models import Completion, Project, Task
from server.services.config import derived_schema
from server.services.config.model import UNDEFINED_KEY
from server.services.datamanager.listing import TaskSelection, conditions
from server.services.projects import parsed_config

_HIDDEN = {"explore": False, "labeling": False}
_SHOWN = {"explore": True, "labeling": False}
TASK_COLUMNS: list[dict[str, Any]] = [
    {"id": "id", "title": "ID", "type": "Number", "help": "Task ID", "target": "tasks"},
    {
        "id": "completed_at",
        "title": "Completed",
        "type": "Datetime",
        "target": "tasks",
        "help": "Last completion date",
    },
    {
        "id": "total_completions",
        "title": "Completions",
        "type": "Number",
        "target": "tasks",
        "help": "Total completions per task",
        "visibility_defaults": _SHOWN,
    },
    {
        "id": "cancelled_completions",
        "title": "Cancelled",
        "type": "Number",
        "target": "tasks",
        "help": "Total cancelled (skipped) completions",
        "visibility_defaults": _SHOWN,
    },
    {
        "id": "total_predictions",
        "title": "Predictions",
        "type": "Number",
        "target": "tasks",
        "help": "Total predictions per task",
        "visibility_defaults": _SHOWN,
    },
    {
        "id": "completions_results",
        "title": "Completions results",
        "type": "String",
        "target": "tasks",
        "help": "Completion results stacked over all completions",
        "visibility_defaults": _HIDDEN,
    },
    {
        "id": "predictions_score",
        "title": "Predictions score",
        "type": "Number",
        "target": "tasks",
        "help": "Average prediction score over all task predictions",
        "visibility_defaults": _HIDDEN,
    },
    {
        "id": "predictions_results",
        "title": "Predictions results",
        "type": "String",
        "target": "tasks",
        "help": "Prediction results stacked over all predictions",
        "visibility_defaults": _HIDDEN,
    },
]
_KEPT_TYPES = ("Image", "Audio", "AudioPlus", "Unknown")


def columns(project: Project) -> dict[str, Any]:
    """The config's data keys first, then the keys every task has, then the task fields and
    the ``data`` group (as Label Studio 0.9.1's ``get_all_columns``)."""
    from_config: dict[str, str] = dict(parsed_config(project).data_types)
    data_types = dict(from_config)
    known: frozenset[str] = frozenset()
    if project.task_count:  # (a session's unsaved project has none, and is not written)
        known = derived_schema.current(project).input_keys or frozenset()
    for key in sorted(known):
        data_types.setdefault(key, "Unknown")
    if from_config:  # the upload placeholder resolves to the config's first key
        data_types.pop(UNDEFINED_KEY, None)
    found: list[dict[str, Any]] = []
    for index, (key, kind) in enumerate(data_types.items()):
        found.append(
            {
                "id": key,
                "title": key if key != UNDEFINED_KEY else "data",
                "type": kind if kind in _KEPT_TYPES else "String",
                "target": "tasks",
                "parent": "data",
                "visibility_defaults": {"explore": True, "labeling": index == 0},
            }
        )
    children = [c["id"] for c in found]
    group = {"id": "data", "title": "data", "type": "List", "target": "tasks", "children": children}
    return {"columns": [*found, *TASK_COLUMNS, group]}


def completions_page(
    project: Project, query: TaskSelection, page: int, page_size: int
) -> dict[str, Any]:
    """Completions of the selected tasks (task id order), each with its ``task_id`` and
    ``created_at`` in Appendix A's datetime form, with their total."""
    where = conditions(project.id, query)
    selected = Completion.select().join(Task, on=(Completion.task == Task.id)).where(*where)
    total = selected.count()
    rows = selected.order_by(Completion.task, Completion.id)
    items = []
    for completion in rows.offset((page - 1) * page_size).limit(page_size):
        item = completion_json(completion)
        item["task_id"] = completion.task_id
        item["created_at"] = completed_at_text(completion.created_at)
        items.append(item)
    return {"annotations": items, "total": total}
