"""POST /api/project/import (JSON, multipart uploads, form ``url=``) and the staged variant:
POST /api/project/import/prepare, GET|PATCH /api/project/import/<id>,
POST /api/project/import/<id>/apply (rest-api.md §6)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from rest_compat._http import (
    Operation,
    OperationFailed,
    RestError,
    answer,
    body_or_spool,
    content_type,
    endpoint,
    execute,
    path_id,
    read_json,
    replayed,
)
from server.principal import Role
from server.services.imports.json_import import SpooledJSON

SOURCE_VARIABLES = "$tasks: JSON, $files: [Upload!], $url: String"
SOURCE_ARGUMENTS = "tasks: $tasks, files: $files, url: $url"
IMPORT_TASKS = Operation(
    f"mutation RestImport({SOURCE_VARIABLES}) {{ importTasks({SOURCE_ARGUMENTS}) {{ lsJson }} }}"
)
PREPARE_IMPORT = Operation(
    f"mutation RestPrepareImport({SOURCE_VARIABLES}) "
    f"{{ prepareImport({SOURCE_ARGUMENTS}) {{ id }} }}"
)
STAGED_IMPORT = Operation(
    "query RestStagedImport($id: Int!) { stagedImport(id: $id) { report { lsJson } } }"
)
UPDATE_STAGED_IMPORT = Operation(
    "mutation RestUpdateStagedImport($id: Int!, $selectedFormats: [String!], "
    "$filesAsTasksList: Boolean) { updateStagedImport(id: $id, selectedFormats: "
    "$selectedFormats, filesAsTasksList: $filesAsTasksList) { report { lsJson } } }"
)
APPLY_STAGED_IMPORT = Operation(
    "mutation RestApplyStagedImport($id: Int!) { applyStagedImport(id: $id) { newTaskIds } }"
)

NO_DATA = "load_tasks: No data found in values or in files"
SPOOL_JSON_BYTES = 32 * 1024 * 1024  # larger JSON bodies are imported from a file (bounded memory)
NO_URL = "No URL to import: send it in the form field url"
MAX_FORM_FIELDS = 1000


async def _run(
    request: Request, operation: Operation, variables: dict[str, Any], invalid_status: int
) -> dict[str, Any]:
    """Execute an import operation; import errors answer Label Studio's array of messages
    (``invalid_status``: 422 for imports, 400 for prepare, as Label Studio)."""
    try:
        return await execute(request, operation, variables)
    except OperationFailed as exc:
        if exc.code in ("INVALID_TASKS", "FETCH_FAILED"):
            raise RestError(invalid_status, exc.messages, operation) from None
        if exc.code in ("INVALID", "TOO_LARGE"):
            raise RestError(exc.status, exc.messages, operation) from None
        raise


async def _import(request: Request, operation: Operation, invalid_status: int) -> dict[str, Any]:
    """Read the import's source from the request (§6.1) and run ``operation`` on it."""
    kind = content_type(request)
    if kind == "multipart/form-data":
        limit = request.app.state.settings.max_upload_files
        try:
            async with request.form(max_files=limit, max_fields=MAX_FORM_FIELDS) as form:
                files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
                url = form.get("url")
                if files:
                    variables: dict[str, Any] = {"files": files}
                elif isinstance(url, str) and url.strip():
                    variables = {"url": url}
                else:
                    raise RestError(invalid_status, [NO_DATA], operation)
                return await _run(request, operation, variables, invalid_status)
        except HTTPException as exc:  # a malformed body or too many files or fields
            raise RestError(400, [_form_error(exc.detail, limit)], operation) from None
    if kind == "application/x-www-form-urlencoded":
        try:
            async with request.form(max_fields=MAX_FORM_FIELDS) as form:
                url = form.get("url")
        except HTTPException as exc:
            raise RestError(400, [str(exc.detail)], operation) from None
        if not isinstance(url, str) or not url.strip():
            raise RestError(invalid_status, [NO_URL], operation)
        return await _run(request, operation, {"url": url}, invalid_status)
    if kind == "application/json":
        if operation is IMPORT_TASKS:
            # Large bodies, with a Content-Length or chunked, go to a file and are parsed
            # incrementally by the import.
            spool_dir = request.app.state.settings.import_tmp_dir
            async with body_or_spool(request, spool_dir, SPOOL_JSON_BYTES) as body:
                if isinstance(body, Path):
                    variables = {"tasks": SpooledJSON(body)}
                    return await _run(request, operation, variables, invalid_status)
            request = replayed(request, body)
        try:
            tasks = await read_json(request)
        except RestError as exc:
            raise RestError(400, [exc.body["detail"]], operation) from None
        if tasks is None:
            raise RestError(400, ["data is empty"], operation)
        return await _run(request, operation, {"tasks": tasks}, invalid_status)
    raise RestError(invalid_status, [NO_DATA], operation)


def _form_error(detail: str, limit: int) -> str:
    if detail.startswith("Too many files"):
        return f"Too many files: at most {limit} in one request (LABELGRAPH_MAX_UPLOAD_FILES)"
    return f"Malformed multipart body: {detail}"


@endpoint("/project/import", "POST", IMPORT_TASKS, permission=Role.ADMIN)
async def project_import_post(request: Request) -> Response:
    data = await _import(request, IMPORT_TASKS, 422)
    return answer(data["importTasks"]["lsJson"], 201, IMPORT_TASKS)


@endpoint("/project/import/prepare", "POST", PREPARE_IMPORT, permission=Role.ADMIN)
async def project_import_prepare_post(request: Request) -> Response:
    data = await _import(request, PREPARE_IMPORT, 400)
    return answer({"id": data["prepareImport"]["id"]}, 201, PREPARE_IMPORT)


@endpoint("/project/import/{import_id}", "GET", STAGED_IMPORT, permission=Role.ADMIN)
async def project_import_get(request: Request) -> Response:
    import_id = path_id(request, "import_id", "Import")
    data = await execute(request, STAGED_IMPORT, {"id": import_id})
    return answer(data["stagedImport"]["report"]["lsJson"], 200, STAGED_IMPORT)


@endpoint("/project/import/{import_id}", "PATCH", UPDATE_STAGED_IMPORT, permission=Role.ADMIN)
async def project_import_patch(request: Request) -> Response:
    import_id = path_id(request, "import_id", "Import")
    operation = UPDATE_STAGED_IMPORT
    body = await read_json(request, default={})
    if not isinstance(body, dict):
        raise RestError(400, ["Send a JSON object"], operation)
    variables: dict[str, Any] = {"id": import_id}
    if "selected_formats" in body:
        variables["selectedFormats"] = body["selected_formats"]
    as_list = body.get("files_as_tasks_list")
    if isinstance(as_list, dict) and "selected" in as_list:
        as_list = as_list["selected"]
    if as_list is not None:
        if not isinstance(as_list, bool):
            raise RestError(400, ["files_as_tasks_list.selected must be true or false"], operation)
        variables["filesAsTasksList"] = as_list
    try:
        data = await _run(request, operation, variables, 400)
    except OperationFailed as exc:
        if exc.code == "GRAPHQL_VALIDATION_FAILED":
            raise RestError(
                400, ["selected_formats must be a list of strings"], operation
            ) from None
        raise
    return answer(data["updateStagedImport"]["report"]["lsJson"], 200, operation)


@endpoint("/project/import/{import_id}/apply", "POST", APPLY_STAGED_IMPORT, permission=Role.ADMIN)
async def project_import_apply_post(request: Request) -> Response:
    import_id = path_id(request, "import_id", "Import")
    data = await _run(request, APPLY_STAGED_IMPORT, {"id": import_id}, 422)
    return answer(
        {"new_task_ids": data["applyStagedImport"]["newTaskIds"]}, 201, APPLY_STAGED_IMPORT
    )
