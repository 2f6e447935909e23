"""Rows -> Label Studio 0.9 JSON forms (rest-api.md §4.2, §5)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from server.models import Completion, Prediction, Task


def completion_json(completion: Completion) -> dict[str, Any]:
    """``completed_by`` (the user's id, Label Studio 1.x's field) only when a signed-in user
    made it: without users the JSON stays Label Studio 0.9's."""
    body = {**completion.payload, "id": completion.id, "created_at": completion.created_at}
    if completion.completed_by is not None:
        body["completed_by"] = completion.completed_by
    return body


def prediction_json(prediction: Prediction) -> dict[str, Any]:
    return dict(prediction.payload)


def completed_at_text(seconds: int | None) -> str | None:
    """``YYYY-MM-DDTHH:MM:SS.000000Z`` in real UTC (compat Q-18)."""
    if seconds is None:
        return None
    moment = dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _results_text(items: Sequence[dict[str, Any]]) -> str:
    if not items:
        return ""
    return json.dumps([item.get("result") for item in items], separators=(",", ":"))


def mean_score(predictions: Sequence[dict[str, Any]]) -> float | None:
    scores = [
        p["score"]
        for p in predictions
        if isinstance(p.get("score"), int | float) and not isinstance(p.get("score"), bool)
    ]
    return sum(scores) / len(scores) if scores else None


def is_cancelled(completion: dict[str, Any]) -> bool:
    return bool(completion.get("was_cancelled") or completion.get("skipped"))


def task_json(
    task: Task,
    completions: Sequence[Completion],
    predictions: Sequence[Prediction],
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The served form of a task, with its computed fields."""
    comps = [completion_json(c) for c in completions]
    preds = [prediction_json(p) for p in predictions]
    body: dict[str, Any] = {"id": task.id, "data": task.data if data is None else data}
    if task.meta is not None:
        body["meta"] = task.meta
    if comps:
        body["completions"] = comps
    if comps or preds:
        body["predictions"] = preds
    body["completed_at"] = completed_at_text(max(c["created_at"] for c in comps) if comps else None)
    body["completions_results"] = _results_text(comps)
    body["predictions_results"] = _results_text(preds)
    score = mean_score(preds)
    if score is not None:
        body["predictions_score"] = score
    body["total_completions"] = len(comps)
    body["total_predictions"] = len(preds)
    body["cancelled_completions"] = sum(1 for c in comps if is_cancelled(c))
    return body


def source_task_json(
    task: Task, predictions: Sequence[Prediction], data: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The source form served by the label stream (§8): id, data, stored predictions."""
    body: dict[str, Any] = {"id": task.id, "data": task.data if data is None else data}
    if task.meta is not None:
        body["meta"] = task.meta
    body["predictions"] = [prediction_json(p) for p in predictions]
    return body


def import_report_json(
    project_name: str,
    task_ids: Sequence[int],
    completion_count: int,
    prediction_count: int,
    preview: list[dict[str, Any]],
    duration: float,
    found_formats: dict[str, int],
    *,
    selected_formats: list[str] | None = None,
    selected_objects: list[str | None] | None = None,
    files_as_tasks_list: bool = True,
    show_files_as_tasks_list: bool | None = None,
    total_tasks: int | None = None,
    staged_id: int | None = None,
) -> dict[str, Any]:
    """The 201 body of ``POST /api/project/import`` (rest-api.md §6.6), with the v0.8 names of
    the same figures too (compat Q-19). A staged import (``staged_id``) is reported without
    ``duration`` and ``new_task_ids``, as Label Studio's ``GET /api/project/import/<id>``."""
    total = len(task_ids) if total_tasks is None else total_tasks
    body: dict[str, Any] = {
        "id": 1 if staged_id is None else staged_id,
        "project": project_name,
        "task_preview": preview,
        "columns_to_draw": [],
        "total_tasks": total,
        "total_completions": completion_count,
        "total_predictions": prediction_count,
        "found_formats": found_formats,
        "selected_formats": selected_formats,
        "selected_objects": selected_objects,
        "files_as_tasks_list": {"type": None, "selected": files_as_tasks_list},
        "show_files_as_tasks_list": show_files_as_tasks_list,
    }
    if staged_id is None:
        body["duration"] = duration
        body["new_task_ids"] = list(task_ids)
    body.update(
        task_count=total,
        completion_count=completion_count,
        prediction_count=prediction_count,
        formats=found_formats,
    )
    return body
