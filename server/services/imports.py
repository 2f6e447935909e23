"""Task import: validate everything first, then insert in bulk in one transaction.

All-or-nothing: any invalid item rejects the whole batch before anything is written, and the
insert itself is one transaction. Task counters are computed in Python from the imported
completions/predictions, so no per-task statistics query runs afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from server.db import bulk_insert, database, write_transaction
from server.errors import DomainError
from server.gc_pause import paused_gc
from server.ls_json import completion_json, is_cancelled, mean_score
from server.models import Completion, Prediction, Project, Task, dump_json, now_seconds
from server.services.projects import get_project, lock_project, parsed_config
from server.services.task_validation import ValidTask, validate_tasks
from server.services.tasks import PREDICTION_COLUMNS, prediction_rows

CHUNK = 2000
PREVIEW_SIZE = 10

TASK_COLUMNS = [
    "project_id",
    "position",
    "data",
    "meta",
    "created_at",
    "updated_at",
    "total_completions",
    "cancelled_completions",
    "total_predictions",
    "is_labeled",
    "completed_at",
    "predictions_score",
]
# A task without completions, predictions or meta needs only these (the rest are SQL defaults).
PLAIN_TASK_COLUMNS = ["project_id", "position", "data", "created_at", "updated_at"]
COMPLETION_COLUMNS = [
    "project_id",
    "task_id",
    "created_at",
    "updated_at",
    "was_cancelled",
    "payload",
]


@dataclass
class ImportResult:
    task_ids: list[int]
    completion_count: int
    prediction_count: int
    preview: list[dict[str, Any]]
    duration: float
    project_name: str = ""
    formats: dict[str, int] = field(default_factory=dict)


def as_task_list(payload: Any) -> list[Any]:
    """A JSON body -> list of items: a list as is, one object as a one-item list."""
    if isinstance(payload, dict):
        return [payload]
    if isinstance(payload, list):
        if not payload:
            raise DomainError("invalid", "data is empty", {"errors": ["data is empty"]})
        return payload
    message = "Incorrect input data type, it must be JSON dict or list"
    raise DomainError("invalid_tasks", message, {"errors": [message]})


def _chunks(items: Sequence[ValidTask], size: int) -> Iterator[Sequence[ValidTask]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _completion_payload(completion: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    payload = {k: v for k, v in completion.items() if k not in ("id", "created_at")}
    created = completion.get("created_at")
    if not isinstance(created, int) or isinstance(created, bool) or created < 0:
        created = now_seconds()
    return created, payload


def _task_row(project_id: int, position: int, task: ValidTask, now: int) -> tuple[Any, ...]:
    completed_at = None
    cancelled = 0
    for completion in task.completions:
        created, payload = _completion_payload(completion)
        completed_at = created if completed_at is None else max(completed_at, created)
        cancelled += is_cancelled(payload)
    return (
        project_id,
        position,
        dump_json(task.data),
        None if task.meta is None else dump_json(task.meta),
        now,
        now,
        len(task.completions),
        cancelled,
        len(task.predictions),
        bool(task.completions),
        completed_at,
        mean_score(task.predictions),
    )


def import_tasks(project_id: int, items: Any) -> ImportResult:
    """Validate and store tasks (with their completions and predictions) atomically."""
    with paused_gc():
        return _import_tasks(project_id, items)


def _import_tasks(project_id: int, items: Any) -> ImportResult:
    started = time.perf_counter()
    items = as_task_list(items)
    project = get_project(project_id)
    config_text = project.label_config
    valid = validate_tasks(items, parsed_config(project))
    with write_transaction():
        project = lock_project(project_id)
        if project.label_config != config_text:
            valid = validate_tasks(items, parsed_config(project))
        result = _insert(project, valid)
    result.duration = round(time.perf_counter() - started, 6)
    return result


def _insert(project: Project, valid: list[ValidTask]) -> ImportResult:
    now = now_seconds()
    start = project.task_count
    position = start
    # Insert in position order (ids must rise with positions): consecutive runs of plain
    # tasks use the short column list.
    for chunk in _chunks(valid, CHUNK):
        run: list[tuple[Any, ...]] = []
        run_is_plain = True
        for task in chunk:
            plain = not (task.completions or task.predictions or task.meta is not None)
            if plain != run_is_plain and run:
                bulk_insert(Task, PLAIN_TASK_COLUMNS if run_is_plain else TASK_COLUMNS, run)
                run = []
            run_is_plain = plain
            if plain:
                run.append((project.id, position, dump_json(task.data), now, now))
            else:
                run.append(_task_row(project.id, position, task, now))
            position += 1
        bulk_insert(Task, PLAIN_TASK_COLUMNS if run_is_plain else TASK_COLUMNS, run)
    query = (
        Task.select(Task.id)
        .where(Task.project == project.id, Task.position >= start)
        .order_by(Task.position)
    )
    task_ids = [row[0] for row in database.execute(query).fetchall()]
    completions, predictions = _insert_children(project.id, valid, task_ids, now)
    labeled = sum(1 for task in valid if task.completions)
    Project.update(
        task_count=Project.task_count + len(valid),
        labeled_task_count=Project.labeled_task_count + labeled,
        completion_count=Project.completion_count + completions,
        prediction_count=Project.prediction_count + predictions,
        updated_at=now,
    ).where(Project.id == project.id).execute()
    return ImportResult(
        task_ids=task_ids,
        completion_count=completions,
        prediction_count=predictions,
        preview=_preview(valid, task_ids),
        duration=0.0,
        project_name=project.name,
    )


def _insert_children(
    project_id: int, valid: list[ValidTask], task_ids: list[int], now: int
) -> tuple[int, int]:
    completion_rows: list[tuple[Any, ...]] = []
    prediction_rows_: list[tuple[Any, ...]] = []
    completions = predictions = 0
    for task, task_id in zip(valid, task_ids, strict=True):
        for completion in task.completions:
            created, payload = _completion_payload(completion)
            completion_rows.append(
                (project_id, task_id, created, now, is_cancelled(payload), dump_json(payload))
            )
        if task.predictions:
            prediction_rows_.extend(prediction_rows(project_id, task_id, task.predictions, now))
        if len(completion_rows) >= CHUNK:
            completions += len(completion_rows)
            bulk_insert(Completion, COMPLETION_COLUMNS, completion_rows)
            completion_rows = []
        if len(prediction_rows_) >= CHUNK:
            predictions += len(prediction_rows_)
            bulk_insert(Prediction, PREDICTION_COLUMNS, prediction_rows_)
            prediction_rows_ = []
    completions += len(completion_rows)
    predictions += len(prediction_rows_)
    bulk_insert(Completion, COMPLETION_COLUMNS, completion_rows)
    bulk_insert(Prediction, PREDICTION_COLUMNS, prediction_rows_)
    return completions, predictions


def _preview(valid: list[ValidTask], task_ids: list[int]) -> list[dict[str, Any]]:
    """The first tasks as data objects with their completions (new ids) and predictions."""
    head = task_ids[:PREVIEW_SIZE]
    stored: dict[int, list[Completion]] = {}
    if any(task.completions for task in valid[:PREVIEW_SIZE]):
        for c in Completion.select().where(Completion.task.in_(head)).order_by(Completion.id):
            stored.setdefault(c.task_id, []).append(c)
    preview = []
    for task, task_id in zip(valid[:PREVIEW_SIZE], head, strict=True):
        item = dict(task.data)
        if task.completions:
            item["completions"] = [completion_json(c) for c in stored.get(task_id, [])]
        if task.predictions:
            item["predictions"] = task.predictions
        preview.append(item)
    return preview
