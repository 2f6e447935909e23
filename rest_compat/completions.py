"""/api/tasks/<id>/completions[/<cid>] and /api/completions."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from rest_compat._http import (
    Operation,
    answer,
    bad_request,
    endpoint,
    execute,
    parse_flag,
    path_id,
    read_json,
)
from server.principal import Role

CREATE_COMPLETION = Operation(
    "mutation RestCompletionCreate($taskId: Int!, $completion: JSON!, $wasCancelled: Boolean) {"
    " createCompletion(taskId: $taskId, completion: $completion, wasCancelled: $wasCancelled)"
    " { id } }",
    short_write=True,
)
DELETE_TASK_COMPLETIONS = Operation(
    "mutation RestTaskCompletionsDelete($taskId: Int!) { deleteTaskCompletions(taskId: $taskId) }",
    short_write=True,
)
UPDATE_COMPLETION = Operation(
    "mutation RestCompletionUpdate($taskId: Int!, $id: Int!, $completion: JSON!,"
    " $wasCancelled: Boolean) { updateCompletion(taskId: $taskId, id: $id,"
    " completion: $completion, wasCancelled: $wasCancelled) { id } }",
    short_write=True,
)
DELETE_COMPLETION = Operation(
    "mutation RestCompletionDelete($taskId: Int!, $id: Int!) {"
    " deleteCompletion(taskId: $taskId, id: $id) }",
    short_write=True,
)
LABELED_TASK_IDS = Operation("query RestCompletionIds { project { labeledTaskIds } }")
DELETE_ALL_COMPLETIONS = Operation("mutation RestCompletionsDelete { deleteAllCompletions }")


async def _completion_body(request: Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_request("The completion must be a JSON object (Content-Type: application/json)")
    return body


def _is_null(request: Request) -> bool:
    return bool(request.path_params["completion_id"] == "null")


_NULL_ID = {"detail": "completion id is null"}


@endpoint("/tasks/{task_id}/completions", "POST", CREATE_COMPLETION, permission=Role.ANNOTATOR)
async def task_completions_post(request: Request) -> Response:
    task_id = path_id(request, "task_id", "Task")
    body = await _completion_body(request)
    cancelled = parse_flag(request.query_params.get("was_cancelled"), "was_cancelled")
    variables = {"taskId": task_id, "completion": body, "wasCancelled": cancelled}
    data = await execute(request, CREATE_COMPLETION, variables)
    return answer({"id": data["createCompletion"]["id"]}, 201, CREATE_COMPLETION)


@endpoint("/tasks/{task_id}/completions", "DELETE", DELETE_TASK_COMPLETIONS, permission=Role.ADMIN)
async def task_completions_delete(request: Request) -> Response:
    task_id = path_id(request, "task_id", "Task")
    await execute(request, DELETE_TASK_COMPLETIONS, {"taskId": task_id})
    return answer(None, 204, DELETE_TASK_COMPLETIONS)


async def _completion_update(request: Request) -> Response:
    if _is_null(request):
        return answer(_NULL_ID, 200, UPDATE_COMPLETION)
    task_id = path_id(request, "task_id", "Task")
    completion_id = path_id(request, "completion_id", "Completion")
    body = await _completion_body(request)
    cancelled = parse_flag(request.query_params.get("was_cancelled"), "was_cancelled")
    variables = {
        "taskId": task_id,
        "id": completion_id,
        "completion": body,
        "wasCancelled": cancelled,
    }
    await execute(request, UPDATE_COMPLETION, variables)
    return answer({"detail": "created"}, 201, UPDATE_COMPLETION)


endpoint(
    "/tasks/{task_id}/completions/{completion_id}",
    "PATCH",
    UPDATE_COMPLETION,
    permission=Role.ANNOTATOR,
)(_completion_update)
endpoint(
    "/tasks/{task_id}/completions/{completion_id}",
    "POST",
    UPDATE_COMPLETION,
    permission=Role.ANNOTATOR,
)(_completion_update)


@endpoint(
    "/tasks/{task_id}/completions/{completion_id}",
    "DELETE",
    DELETE_COMPLETION,
    permission=Role.ANNOTATOR,
)
async def completion_delete(request: Request) -> Response:
    if _is_null(request):
        return answer(_NULL_ID, 200, DELETE_COMPLETION)
    task_id = path_id(request, "task_id", "Task")
    completion_id = path_id(request, "completion_id", "Completion")
    await execute(request, DELETE_COMPLETION, {"taskId": task_id, "id": completion_id})
    return answer(None, 204, DELETE_COMPLETION)


@endpoint("/completions", "GET", LABELED_TASK_IDS, permission=Role.ANNOTATOR)
async def completions_get(request: Request) -> Response:
    data = await execute(request, LABELED_TASK_IDS)
    return answer({"ids": data["project"]["labeledTaskIds"]}, 200, LABELED_TASK_IDS)


@endpoint("/completions", "DELETE", DELETE_ALL_COMPLETIONS, permission=Role.ADMIN)
async def completions_delete(request: Request) -> Response:
    await execute(request, DELETE_ALL_COMPLETIONS)
    return answer({"detail": "done"}, 201, DELETE_ALL_COMPLETIONS)
