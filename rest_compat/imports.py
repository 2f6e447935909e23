"""POST /api/project/import (JSON bodies)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from rest_compat._http import (
    Operation,
    OperationFailed,
    RestError,
    answer,
    content_type,
    endpoint,
    execute,
    read_json,
)

IMPORT_TASKS = Operation(
    "mutation RestImport($tasks: JSON!) { importTasks(tasks: $tasks) {"
    " projectName taskCount completionCount predictionCount duration newTaskIds"
    " taskPreview foundFormats } }"
)


def ls_import_report(report: dict[str, Any]) -> dict[str, Any]:
    """GraphQL ImportReport -> the 201 body of rest-api.md §6.6, with the v0.8 names too."""
    return {
        "id": 1,
        "project": report["projectName"],
        "task_preview": report["taskPreview"],
        "columns_to_draw": [],
        "total_tasks": report["taskCount"],
        "total_completions": report["completionCount"],
        "total_predictions": report["predictionCount"],
        "found_formats": report["foundFormats"],
        "selected_formats": None,
        "selected_objects": None,
        "files_as_tasks_list": {"type": None, "selected": True},
        "show_files_as_tasks_list": None,
        "duration": report["duration"],
        "new_task_ids": report["newTaskIds"],
        # Label Studio 0.8 names of the same figures (compat Q-19).
        "task_count": report["taskCount"],
        "completion_count": report["completionCount"],
        "prediction_count": report["predictionCount"],
        "formats": report["foundFormats"],
    }


@endpoint("/project/import", "POST", IMPORT_TASKS)
async def project_import_post(request: Request) -> Response:
    if content_type(request) != "application/json":
        raise RestError(
            400,
            [
                "Send tasks as a JSON body (Content-Type: application/json); this server does "
                "not accept file uploads yet"
            ],
            IMPORT_TASKS,
        )
    try:
        tasks = await read_json(request)
    except RestError as exc:
        raise RestError(400, [exc.body["detail"]], IMPORT_TASKS) from None
    if tasks is None:
        raise RestError(400, ["data is empty"], IMPORT_TASKS)
    try:
        data = await execute(request, IMPORT_TASKS, {"tasks": tasks})
    except OperationFailed as exc:
        if exc.code == "INVALID_TASKS":
            raise RestError(422, exc.messages, IMPORT_TASKS) from None
        if exc.code in ("INVALID", "TOO_LARGE"):
            raise RestError(exc.status, exc.messages, IMPORT_TASKS) from None
        raise
    return answer(ls_import_report(data["importTasks"]), 201, IMPORT_TASKS)
