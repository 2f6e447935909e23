"""/api/tasks and /api/tasks/<id>."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from rest_compat._http import (
    Operation,
    OperationFailed,
    RestError,
    answer,
    bad_request,
    endpoint,
    execute,
    path_id,
    query_paging,
    read_json,
)
from server.principal import Role

LIST_TASKS = Operation(
    "query RestTasks($page: Int!, $pageSize: Int!, $order: TaskOrder!) {"
    " project { taskPage(page: $page, pageSize: $pageSize, orderBy: $order) {"
    " lsJson total totalCompletions totalPredictions } } }"
)
DELETE_TASKS = Operation("mutation RestTasksDelete { deleteAllTasks }")
GET_TASK = Operation(
    "query RestTask($id: Int!) { task(id: $id) { lsJson(livePredictions: true) } }"
)
UPDATE_TASK = Operation(
    "mutation RestTaskPatch($id: Int!, $data: JSON, $predictions: JSON, $meta: JSON) {"
    " updateTask(id: $id, data: $data, predictions: $predictions, meta: $meta) { id } }",
    short_write=True,
)
DELETE_TASK = Operation(
    "mutation RestTaskDelete($id: Int!) { deleteTask(id: $id) }", short_write=True
)

# ``order`` values (compat Q-2): the documented ones and Label Studio's ``tasks:`` forms.
_ORDER_ENUM = {
    "id": "ID_ASC",
    "-id": "ID_DESC",
    "completed_at": "COMPLETED_AT_ASC",
    "-completed_at": "COMPLETED_AT_DESC",
}
ORDERS = {**_ORDER_ENUM}
ORDERS.update(
    {f"{'-' if k[0] == '-' else ''}tasks:{k.lstrip('-')}": v for k, v in _ORDER_ENUM.items()}
)


@endpoint("/tasks", "GET", LIST_TASKS, permission=Role.ANNOTATOR)
async def tasks_get(request: Request) -> Response:
    order = request.query_params.get("order") or "id"
    if order not in ORDERS:
        raise bad_request(f"Unknown order {order!r}; use one of: {', '.join(ORDERS)}")
    page, page_size = query_paging(request, LIST_TASKS)
    variables = {"page": page, "pageSize": page_size, "order": ORDERS[order]}
    data = await execute(request, LIST_TASKS, variables)
    return answer(task_page_body(data["project"]["taskPage"]), 200, LIST_TASKS)


def task_page_body(page: dict[str, Any]) -> dict[str, Any]:
    """A ``taskPage`` answer in Label Studio's shape (``GET /api/tasks`` and a tab's tasks)."""
    return {
        "tasks": page["lsJson"],
        "total": page["total"],
        "total_completions": page["totalCompletions"],
        "total_predictions": page["totalPredictions"],
    }


@endpoint("/tasks", "DELETE", DELETE_TASKS, permission=Role.ADMIN)
async def tasks_delete(request: Request) -> Response:
    await execute(request, DELETE_TASKS)
    return answer(None, 204, DELETE_TASKS)


@endpoint("/tasks/{task_id}", "GET", GET_TASK, permission=Role.ANNOTATOR)
async def task_get(request: Request) -> Response:
    task_id = path_id(request, "task_id", "Task")
    data = await execute(request, GET_TASK, {"id": task_id})
    indent = 2 if request.query_params.get("pretty") else None
    return answer(data["task"]["lsJson"], 200, GET_TASK, indent=indent)


async def _task_patch(request: Request) -> Response:
    task_id = path_id(request, "task_id", "Task")
    body = await read_json(request)
    if not isinstance(body, dict):
        raise RestError(
            400,
            ['Task root must be dict with "data", "meta", "completions", "predictions" fields'],
            UPDATE_TASK,
        )
    variables = {"id": task_id}
    variables.update({k: body[k] for k in ("data", "predictions", "meta") if k in body})
    try:
        await execute(request, UPDATE_TASK, variables)
    except OperationFailed as exc:
        if exc.code != "INVALID_TASKS":
            raise
        raise RestError(400, exc.messages, UPDATE_TASK) from None
    return answer({"detail": "Task patched", "data": body}, 200, UPDATE_TASK)


endpoint("/tasks/{task_id}", "PATCH", UPDATE_TASK, permission=Role.ADMIN)(_task_patch)
endpoint("/tasks/{task_id}", "POST", UPDATE_TASK, permission=Role.ADMIN)(_task_patch)


@endpoint("/tasks/{task_id}", "DELETE", DELETE_TASK, permission=Role.ADMIN)
async def task_delete(request: Request) -> Response:
    task_id = path_id(request, "task_id", "Task")
    await execute(request, DELETE_TASK, {"id": task_id})
    return answer(None, 204, DELETE_TASK)
