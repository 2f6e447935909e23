"""POST /api/project/import (JSON bodies)."""

from __future__ import annotations

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
    "mutation RestImport($tasks: JSON!) { importTasks(tasks: $tasks) { lsJson } }"
)


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
    return answer(data["importTasks"]["lsJson"], 201, IMPORT_TASKS)
