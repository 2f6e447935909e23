"""/api/project, /api/project/config, /api/validate-config, /api/project/next."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from rest_compat._http import (
    OPERATION_HEADER,
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
from schema.projects import NEW_NEEDS_MULTI_SESSION
from server.principal import OPEN, SCOPE_KEY, Role
from server.services.session_projects import NOT_A_UUID
from server.services.storage.storage_types import TYPES

PROJECT_FIELDS = """
fragment LsProject on Project {
  name title description instruction labelConfigLine dataTypes configHasControlTags
  sampling allowDeleteCompletions showInstruction showSkipButton enableEmptyCompletion
  showProjectLinksInMultisession labelConfigUpdated taskCount labeledTaskCount
  mlBackends @include(if: $admin) { name url }
  sourceStorage @include(if: $admin) { ...LsStorage }
  targetStorage @include(if: $admin) { ...LsStorage }
}
fragment LsStorage on Storage { type configured path params readablePath syncing }
"""

GET_PROJECT = Operation(
    "query RestProject($admin: Boolean! = true) { project { ...LsProject } }" + PROJECT_FIELDS
)
UPDATE_PROJECT = Operation(
    "mutation RestProjectPatch($input: ProjectSettingsInput!, $admin: Boolean! = true, "
    '$mlBackend: String! = "", $addBackend: Boolean! = false, '
    "$mlBackends: [MlBackendInput!]! = [], $setBackends: Boolean! = false) {"
    " setMlBackends(backends: $mlBackends) @include(if: $setBackends) { name }"
    " addMlBackend(url: $mlBackend) @include(if: $addBackend) { name }"
    " updateProject(input: $input) { ...LsProject } }" + PROJECT_FIELDS
)
SET_CONFIG = Operation(
    "mutation RestProjectConfig($config: String!) { setLabelConfig(labelConfig: $config) "
    "{ labelConfig labelConfigLine dataTypes configHasControlTags } }"
)
VALIDATE_CONFIG = Operation(
    "query RestValidateConfig($config: String!) "
    "{ validateLabelConfig(labelConfig: $config) { ok errors { message } } }"
)
NEW_PROJECT = Operation(
    "mutation RestProjectNew($description: String!, $admin: Boolean! = true) "
    "{ createProject(description: $description) { ...LsProject } }" + PROJECT_FIELDS
)
SWITCH_PROJECT = Operation(
    "mutation RestProjectSwitch($uuid: String!, $admin: Boolean! = true) "
    "{ selectProject(uuid: $uuid) { ...LsProject } }" + PROJECT_FIELDS
)
NEXT_TASK = Operation(
    "query RestNextTask { project { nextTask { lsSourceJson(livePredictions: true) } } }"
)

HIDDEN_STORAGE: dict[str, Any] = {
    "type": None,
    "configured": False,
    "path": None,
    "params": {},
    "readablePath": "",
    "syncing": False,
}

# Label Studio's list in its order (by description, then registration).
AVAILABLE_STORAGES = [
    [name, TYPES[name].description]
    for name in (
        "s3",
        "s3-completions",
        "azure-blob",
        "azure-blob-completions",
        "gcs",
        "gcs-completions",
        "completions-dir",
        "tasks-json",
        "redis-completions",
        "redis",
    )
]
_SETTING_KEYS = {
    "title": "title",
    "description": "description",
    "instruction": "instruction",
    "sampling": "sampling",
    "allow_delete_completions": "allowDeleteCompletions",
    "show_instruction": "showInstruction",
    "show_skip_button": "showSkipButton",
    "enable_empty_completion": "enableEmptyCompletion",
    "show_project_links_in_multisession": "showProjectLinksInMultisession",
}


def ls_project(project: dict[str, Any], request: Request) -> dict[str, Any]:
    """GraphQL Project -> Label Studio's ``GET /api/project`` body (rest-api.md §7.1).
    Annotators get no ML backends and storages (admin-only: ``$admin`` false), in the same
    shape: an empty list and storages of type null."""
    settings = request.app.state.settings
    project = {"sourceStorage": HIDDEN_STORAGE, "targetStorage": HIDDEN_STORAGE, **project}
    config = {
        "title": project["title"],
        "description": project["description"],
        "protocol": "http://",
        "host": settings.host,
        "port": settings.port,
        "debug": False,
        "label_config": "config.xml",
        "label_config_updated": project["labelConfigUpdated"],
        "input_path": "tasks.json",
        "output_dir": "completions",
        "instruction": project["instruction"],
        "allow_delete_completions": project["allowDeleteCompletions"],
        "templates_dir": "examples",
        "editor": {"debug": False},
        "sampling": project["sampling"],
        "ml_backends": [
            {"url": b["url"], "name": b["name"]} for b in project.get("mlBackends", [])
        ],
        "task_page_auto_update_timer": 10000,
        "show_project_links_in_multisession": project["showProjectLinksInMultisession"],
        "show_instruction": project["showInstruction"],
        "show_skip_button": project["showSkipButton"],
        "enable_empty_completion": project["enableEmptyCompletion"],
        "experimental_features": False,
        "first_page_full_render": True,
        "source": _config_entry(project["sourceStorage"], "Tasks"),
        "target": _config_entry(project["targetStorage"], "Completions"),
    }
    return {
        "project_name": project["name"],
        "task_count": project["taskCount"],
        "completion_count": project["labeledTaskCount"],
        "config": config,
        "instruction": project["instruction"],
        "can_manage_tasks": True,
        "can_manage_completions": True,
        "can_delete_tasks": True,
        "source_storage": {"readable_path": project["sourceStorage"]["readablePath"]},
        "target_storage": {"readable_path": project["targetStorage"]["readablePath"]},
        "available_storages": AVAILABLE_STORAGES,
        "source_syncing": project["sourceStorage"]["syncing"],
        "target_syncing": project["targetStorage"]["syncing"],
        "data_types": project["dataTypes"],
        "label_config_line": project["labelConfigLine"],
        "config_has_control_tags": project["configHasControlTags"],
        "multi_session_mode": settings.multi_session,
    }


def _config_entry(storage: dict[str, Any], default_name: str) -> dict[str, Any]:
    """``config.json``'s ``source``/``target`` (rest-api.md §7.3); credentials masked."""
    if not storage["configured"]:
        return {"name": default_name, "type": storage["type"], "path": storage["readablePath"]}
    role = "source" if default_name == "Tasks" else "target"
    return {
        "name": role,
        "type": storage["type"],
        "path": storage["path"],
        "params": storage["params"],
    }


def _role_variables(request: Request) -> dict[str, Any]:
    """``$admin``: whether the caller may see the admin-only project fields."""
    return {"admin": request.scope.get(SCOPE_KEY, OPEN).role >= Role.ADMIN}


@endpoint("/project", "GET", GET_PROJECT, permission=Role.ANNOTATOR)
async def project_get(request: Request) -> Response:
    data = await execute(request, GET_PROJECT, _role_variables(request))
    return answer(ls_project(data["project"], request), operation=GET_PROJECT)


@endpoint("/project", "POST", GET_PROJECT, permission=Role.ADMIN)
async def project_post(request: Request) -> Response:
    """Like GET; with ``new=…`` (multi-session mode) a new project for the session's user,
    selected, ``desc`` its description: 201 (``NEW_PROJECT``)."""
    if not request.query_params.get("new"):
        return await project_get(request)
    if not request.app.state.settings.multi_session:
        raise RestError(400, error_body(400, NEW_NEEDS_MULTI_SESSION), GET_PROJECT)
    variables = {"description": request.query_params.get("desc") or ""}
    data = await execute(request, NEW_PROJECT, variables)
    return answer(ls_project(data["createProject"], request), 201, NEW_PROJECT)


SWITCH_REDIRECT = "/api/project"


async def _project_switch(request: Request) -> Response:
    """Make the project with ``uuid`` the session's current one (rest-api.md §3.1): GET
    redirects (302, as Label Studio) to ``/api/project``, which shows the switched-to project
    (Label Studio's target, the /settings page, is not served here); POST answers the new
    current project (compat Q-10); an unknown uuid is 404 and leaves the session as it was
    (Q-11)."""
    project_uuid = request.query_params.get("uuid")
    if not project_uuid:
        raise RestError(400, error_body(400, NOT_A_UUID), SWITCH_PROJECT)
    data = await execute(
        request, SWITCH_PROJECT, {"uuid": project_uuid, **_role_variables(request)}
    )
    if request.method == "GET":
        headers = {OPERATION_HEADER: SWITCH_PROJECT.name}
        return RedirectResponse(SWITCH_REDIRECT, status_code=302, headers=headers)
    return answer(ls_project(data["selectProject"], request), 200, SWITCH_PROJECT)


endpoint("/project-switch", "GET", SWITCH_PROJECT, permission=Role.ANNOTATOR)(_project_switch)
endpoint("/project-switch", "POST", SWITCH_PROJECT, permission=Role.ANNOTATOR)(_project_switch)


def ml_backend_variables(body: dict[str, Any]) -> dict[str, Any]:
    """``ml_backend`` (``URL`` or ``NAME=URL``, connected after a /health check) and
    ``ml_backends`` (the whole list, compat Q-15) of a PATCH body."""
    variables: dict[str, Any] = {}
    if "ml_backends" in body:
        entries = body["ml_backends"]
        valid = isinstance(entries, list) and all(
            isinstance(e, dict) and isinstance(e.get("url"), str) and isinstance(e.get("name"), str)
            for e in entries
        )
        if not valid:
            raise bad_request('ml_backends must be a list of {"url": …, "name": …} objects')
        variables["mlBackends"] = [{"name": e["name"], "url": e["url"]} for e in entries]
        variables["setBackends"] = True
    if "ml_backend" in body:
        if not isinstance(body["ml_backend"], str):
            raise bad_request('ml_backend must be a string: "URL" or "NAME=URL"')
        variables["mlBackend"] = body["ml_backend"]
        variables["addBackend"] = True
    return variables


@endpoint("/project", "PATCH", UPDATE_PROJECT, permission=Role.ADMIN)
async def project_patch(request: Request) -> Response:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_request("PATCH /api/project needs a JSON object body")
    settings = {gql: body[key] for key, gql in _SETTING_KEYS.items() if key in body}
    variables: dict[str, Any] = {"input": settings, **ml_backend_variables(body)}
    data = await execute(request, UPDATE_PROJECT, variables)
    return answer(ls_project(data["updateProject"], request), 201, UPDATE_PROJECT)


async def read_label_config(request: Request) -> str | None:
    """The config from a form field, a JSON key or an XML body (compat Q-16)."""
    kind = content_type(request)
    if kind in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        value = form.get("label_config")
        return value if isinstance(value, str) else None
    if kind == "application/json":
        body = await read_json(request)
        value = body.get("label_config") if isinstance(body, dict) else None
        return value if isinstance(value, str) else None
    if kind in ("application/xml", "text/xml"):
        raw = await request.body()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise RestError(400, {"label_config": ["Label config must be UTF-8 text"]}) from None
    return None


@endpoint("/project/config", "POST", SET_CONFIG, permission=Role.ADMIN)
async def project_config_post(request: Request) -> Response:
    text = await read_label_config(request)
    if text is None:
        raise RestError(400, {"label_config": ["can only parse strings"]}, SET_CONFIG)
    try:
        data = await execute(request, SET_CONFIG, {"config": text})
    except OperationFailed as exc:
        if exc.code != "INVALID_LABEL_CONFIG":
            raise
        raise RestError(400, {"label_config": exc.messages}, SET_CONFIG) from None
    return answer(saved_config_body(data["setLabelConfig"]), 201, SET_CONFIG)


def saved_config_body(project: dict[str, Any]) -> dict[str, Any]:
    """The 201 body: the config as saved and what it derives (Label Studio answered an empty
    body; docs/compat.md), with the names ``GET /api/project`` uses."""
    return {
        "label_config": project["labelConfig"],
        "label_config_line": project["labelConfigLine"],
        "data_types": project["dataTypes"],
        "config_has_control_tags": project["configHasControlTags"],
    }


@endpoint("/validate-config", "POST", VALIDATE_CONFIG, permission=Role.ADMIN)
async def validate_config_post(request: Request) -> Response:
    text = await read_label_config(request)
    if text is None:
        raise RestError(417, error_body(417, "No label_config in POST"), VALIDATE_CONFIG)
    data = await execute(request, VALIDATE_CONFIG, {"config": text})
    result = data["validateLabelConfig"]
    if not result["ok"]:
        # Label Studio stops at the first problem: one message.
        messages = [result["errors"][0]["message"]]
        return answer({"label_config": messages}, 400, VALIDATE_CONFIG)
    return answer(None, 204, VALIDATE_CONFIG)


@endpoint("/project/next", "GET", NEXT_TASK, permission=Role.ANNOTATOR)
async def project_next_get(request: Request) -> Response:
    data = await execute(request, NEXT_TASK)
    task = data["project"]["nextTask"]
    if task is None:
        body = {"id": None, "status": 404, "detail": "No more tasks to label"}
        return answer(body, 404, NEXT_TASK)
    return answer(task["lsSourceJson"], 200, NEXT_TASK)
