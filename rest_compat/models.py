"""/api/models, /api/models/train, /api/models/predictions (ml-backend.md §1.3, §4.4, §5.1).

``mode=all_tasks`` and ``mode=specific_tasks`` start a prediction job and wait for it without
holding a worker thread (the job state is polled with short sleeps), then answer Label Studio's
``{"detail": "predictions are ready"}``.
"""

from __future__ import annotations

from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response

from rest_compat._http import (
    INT_MAX,
    INT_MIN,
    Operation,
    OperationFailed,
    RestError,
    answer,
    bad_request,
    content_type,
    endpoint,
    error_body,
    execute,
    read_json,
)
from server.principal import Role

LIST_MODELS = Operation("query RestModels { project { mlBackends { name } } }")
REMOVE_MODEL = Operation(
    "mutation RestModelsDelete($name: String!) { removeMlBackend(name: $name) }"
)
TRAIN = Operation("mutation RestModelsTrain { trainMlBackends { name status job error } }")
PREDICT = Operation(
    "mutation RestModelsPredictions($data: Boolean!, $task: JSON, $taskIds: [Int!], "
    "$allTasks: Boolean! = false) {"
    " predictTaskData(task: $task) @include(if: $data)"
    " startPredictionJob(taskIds: $taskIds, allTasks: $allTasks) @skip(if: $data) { id state } }"
)
JOB = Operation("query RestPredictionJob($id: Int!) { job(id: $id) { state error } }")

MODES = ("data", "all_tasks", "specific_tasks")
NOT_CONNECTED = "Training is not started: seems that you don't have any ML backend connected"
POLL_FIRST, POLL_MAX = 0.01, 0.25


@endpoint("/models", "GET", LIST_MODELS, permission=Role.ADMIN)
async def models_get(request: Request) -> Response:
    data = await execute(request, LIST_MODELS)
    names = [backend["name"] for backend in data["project"]["mlBackends"]]
    return answer({"models": names}, 200, LIST_MODELS)


@endpoint("/models", "DELETE", REMOVE_MODEL, permission=Role.ADMIN)
async def models_delete(request: Request) -> Response:
    body = await _json_or_form(request)
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str):
        raise RestError(400, error_body(400, 'Request JSON data must have "name"'), REMOVE_MODEL)
    await execute(request, REMOVE_MODEL, {"name": name})
    return answer(None, 204, REMOVE_MODEL)


@endpoint("/models/train", "POST", TRAIN, permission=Role.ADMIN)
async def models_train_post(request: Request) -> Response:
    outcomes = (await execute(request, TRAIN))["trainMlBackends"]
    failed = [o for o in outcomes if o["status"] == "FAILED"]
    if failed:
        # Label Studio stopped at the first refusal (500); every backend was asked here.
        errors = [{"name": o["name"], "detail": o["error"]} for o in failed]
        raise RestError(502, error_body(502, failed[0]["error"], errors=errors), TRAIN)
    if not any(o["status"] == "STARTED" for o in outcomes):
        raise RestError(400, error_body(400, NOT_CONNECTED), TRAIN)
    return answer({"detail": "Training started"}, 200, TRAIN)


async def _json_or_form(request: Request) -> Any:
    if content_type(request) in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return dict(await request.form())
    return await read_json(request)


def _task_ids(raw: Any) -> list[int] | None:
    """``task_ids`` from a query/form string ``1,2`` or a JSON list (compat Q-14)."""
    if raw is None or raw == "":
        return None
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list):
        raise bad_request("task_ids must be a list of task ids")
    ids = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int | str):
            raise bad_request(f"task_ids must be integers, not {repr(item)[:40]}")
        try:
            task_id = int(item)
        except ValueError:
            raise bad_request(f"task_ids must be integers, not {repr(item)[:40]}") from None
        if not INT_MIN <= task_id <= INT_MAX:  # beyond every id: as any unknown task
            raise RestError(404, error_body(404, f"Task {task_id} not found"), PREDICT)
        ids.append(task_id)
    return ids


async def _predictions(request: Request) -> Response:
    form: dict[str, Any] = {}
    body: Any = None
    if content_type(request) in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = dict(await request.form())
    else:
        body = await read_json(request)
    mode = request.query_params.get("mode") or form.get("mode") or "data"
    if mode not in MODES:
        raise RestError(422, error_body(422, "unknown mode"), PREDICT)
    if mode == "data":
        variables: dict[str, Any] = {"data": True, "task": body}
        try:
            data = await execute(request, PREDICT, variables)
        except OperationFailed as exc:
            if exc.extensions.get("field") == "task":
                raise RestError(422, error_body(422, exc.message), PREDICT) from None
            raise
        return answer(data["predictTaskData"], 200, PREDICT)
    variables = {"data": False, "allTasks": mode == "all_tasks"}
    if mode == "specific_tasks":
        raw = request.query_params.get("task_ids") or form.get("task_ids")
        if raw is None and isinstance(body, dict):
            raw = body.get("task_ids")
        variables["taskIds"] = _task_ids(raw)
    job = (await execute(request, PREDICT, variables))["startPredictionJob"]
    await _wait_for(request, job["id"])
    return answer({"detail": "predictions are ready"}, 200, PREDICT)


async def _wait_for(request: Request, job_id: int) -> None:
    """Poll the job until it is over; the event loop and the worker threads stay free."""
    delay = POLL_FIRST
    while True:
        job = (await execute(request, JOB, {"id": job_id}))["job"]
        if job["state"] == "FAILED":
            detail = f"Prediction job {job_id} failed: {job['error']}"
            raise RestError(500, error_body(500, detail), PREDICT)
        if job["state"] == "DONE":
            return
        await anyio.sleep(delay)
        delay = min(POLL_MAX, delay * 2)


endpoint("/models/predictions", "GET", PREDICT, permission=Role.ADMIN)(_predictions)
endpoint("/models/predictions", "POST", PREDICT, permission=Role.ADMIN)(_predictions)
