"""GET|POST /api/project/storage-settings (rest-api.md §9.2)."""

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
    error_body,
    execute,
    read_json,
)
from server.principal import Role

STORAGE_SETTINGS = Operation("query RestStorageSettings { project { storageSettings } }")
SET_STORAGE = Operation(
    "mutation RestStorageUpdate($role: StorageRole!, $type: String, $values: JSON!) "
    "{ setStorage(role: $role, type: $type, values: $values) { type } }"
)


@endpoint("/project/storage-settings", "GET", STORAGE_SETTINGS, permission=Role.ADMIN)
async def storage_settings_get(request: Request) -> Response:
    data = await execute(request, STORAGE_SETTINGS)
    return answer(data["project"]["storageSettings"], 200, STORAGE_SETTINGS)


@endpoint("/project/storage-settings", "POST", SET_STORAGE, permission=Role.ADMIN)
async def storage_settings_post(request: Request) -> Response:
    """``?storage_for=source|target&type=…`` with the field values (and ``type``, what is
    stored) as a JSON body: 201 ``{"result": "ok"}``; field errors 400 ``{"errors": {…}}``; a
    storage that cannot be reached 400 ``{"detail": "Error while storage update: …"}``."""
    role = request.query_params.get("storage_for") or ""
    if role not in ("source", "target"):
        raise bad_request(f"storage_for must be source or target, not {role!r}")
    body = await read_json(request, {})
    if not isinstance(body, dict):
        raise bad_request("The storage settings must be a JSON object")
    asked = request.query_params.get("type")
    stored = body.get("type")
    if stored is not None and not isinstance(stored, str):
        raise RestError(400, {"errors": {"type": ["Not a valid string value"]}}, SET_STORAGE)
    if asked and stored and asked != stored:
        message = f"type in the body ({stored}) differs from ?type= ({asked})"
        raise RestError(400, error_body(400, message), SET_STORAGE)
    type_name = stored or asked or None
    values: dict[str, Any] = {k: v for k, v in body.items() if k != "type"}
    variables = {"role": role.upper(), "type": type_name, "values": values}
    try:
        await execute(request, SET_STORAGE, variables)
    except OperationFailed as exc:
        fields = exc.extensions.get("fields")
        if exc.code == "INVALID" and isinstance(fields, dict):
            raise RestError(400, {"errors": fields}, SET_STORAGE) from None
        if exc.code == "STORAGE":
            detail = f"Error while storage update: {exc.message}"
            raise RestError(400, error_body(400, detail), SET_STORAGE) from None
        raise
    return answer({"result": "ok"}, 201, SET_STORAGE)
