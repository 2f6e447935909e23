"""/api/webhooks and /api/webhooks/<id>: webhooks in Label Studio 1.x's shape (0.9 has none).

Bodies and answers use Label Studio 1.x's fields (``url``, ``project``, ``send_payload``,
``send_for_all_actions``, ``headers``, ``is_active``, ``actions``, ``created_at``,
``updated_at``) plus ``secret``, the key of the signature header.
"""

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
    path_id,
    read_json,
)
from server.principal import Role

FIELDS = (
    "id projectId url sendPayload sendForAllActions actions headers isActive secret "
    "createdAt updatedAt"
)
LIST_WEBHOOKS = Operation(
    f"query RestWebhooks($projectId: Int) {{ webhooks(projectId: $projectId) {{ {FIELDS} }} }}"
)
GET_WEBHOOK = Operation(f"query RestWebhook($id: Int!) {{ webhook(id: $id) {{ {FIELDS} }} }}")
CREATE_WEBHOOK = Operation(
    "mutation RestWebhookCreate($projectId: Int, $input: WebhookInput!) "
    f"{{ createWebhook(projectId: $projectId, input: $input) {{ {FIELDS} }} }}"
)
UPDATE_WEBHOOK = Operation(
    "mutation RestWebhookUpdate($id: Int!, $input: WebhookInput!) "
    f"{{ updateWebhook(id: $id, input: $input) {{ {FIELDS} }} }}"
)
DELETE_WEBHOOK = Operation("mutation RestWebhookDelete($id: Int!) { deleteWebhook(id: $id) }")
_INPUT_KEYS = {
    "url": "url",
    "send_payload": "sendPayload",
    "send_for_all_actions": "sendForAllActions",
    "actions": "actions",
    "headers": "headers",
    "is_active": "isActive",
}


def ls_webhook(webhook: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": webhook["id"],
        "project": webhook["projectId"],
        "url": webhook["url"],
        "send_payload": webhook["sendPayload"],
        "send_for_all_actions": webhook["sendForAllActions"],
        "headers": webhook["headers"],
        "is_active": webhook["isActive"],
        "actions": webhook["actions"],
        "created_at": webhook["createdAt"],
        "updated_at": webhook["updatedAt"],
        "secret": webhook["secret"],
    }


def _project_param(raw: Any) -> int | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool) or not str(raw).isdigit() or len(str(raw)) > 18:
        raise bad_request("project must be a project id")
    return int(raw)


async def _input(request: Request, operation: Operation) -> tuple[dict[str, Any], Any]:
    body = await read_json(request, None)
    if not isinstance(body, dict):
        raise bad_request("The webhook must be a JSON object")
    values: dict[str, Any] = {}
    for key, name in _INPUT_KEYS.items():
        if body.get(key) is not None:
            values[name] = body[key]
    actions = values.get("actions")
    if actions is not None and (
        not isinstance(actions, list) or not all(isinstance(a, str) for a in actions)
    ):
        raise RestError(400, {"actions": ["Expected a list of items."]}, operation)
    return values, body.get("project")


async def _run(request: Request, operation: Operation, variables: dict[str, Any]) -> Any:
    """Run ``operation``; an invalid field answers Label Studio 1.x's ``{field: [message]}``."""
    try:
        return await execute(request, operation, variables)
    except OperationFailed as exc:
        field = exc.extensions.get("field")
        if exc.code == "INVALID" and isinstance(field, str):
            raise RestError(400, {field: [exc.message]}, operation) from None
        if exc.code == "GRAPHQL_VALIDATION_FAILED":
            raise RestError(400, error_body(400, exc.message), operation) from None
        raise


@endpoint("/webhooks", "GET", LIST_WEBHOOKS, permission=Role.ADMIN)
async def webhooks_get(request: Request) -> Response:
    project = _project_param(request.query_params.get("project"))
    data = await _run(request, LIST_WEBHOOKS, {"projectId": project})
    return answer([ls_webhook(w) for w in data["webhooks"]], 200, LIST_WEBHOOKS)


@endpoint("/webhooks", "POST", CREATE_WEBHOOK, permission=Role.ADMIN)
async def webhooks_post(request: Request) -> Response:
    values, project = await _input(request, CREATE_WEBHOOK)
    if "url" not in values:
        raise RestError(400, {"url": ["This field is required."]}, CREATE_WEBHOOK)
    variables = {"projectId": _project_param(project), "input": values}
    data = await _run(request, CREATE_WEBHOOK, variables)
    return answer(ls_webhook(data["createWebhook"]), 201, CREATE_WEBHOOK)


@endpoint("/webhooks/{webhook_id}", "GET", GET_WEBHOOK, permission=Role.ADMIN)
async def webhook_get(request: Request) -> Response:
    webhook_id = path_id(request, "webhook_id", "Webhook")
    data = await _run(request, GET_WEBHOOK, {"id": webhook_id})
    return answer(ls_webhook(data["webhook"]), 200, GET_WEBHOOK)


async def _webhook_update(request: Request) -> Response:
    webhook_id = path_id(request, "webhook_id", "Webhook")
    values, _project = await _input(request, UPDATE_WEBHOOK)
    data = await _run(request, UPDATE_WEBHOOK, {"id": webhook_id, "input": values})
    return answer(ls_webhook(data["updateWebhook"]), 200, UPDATE_WEBHOOK)


endpoint("/webhooks/{webhook_id}", "PATCH", UPDATE_WEBHOOK, permission=Role.ADMIN)(_webhook_update)
endpoint("/webhooks/{webhook_id}", "PUT", UPDATE_WEBHOOK, permission=Role.ADMIN)(_webhook_update)


@endpoint("/webhooks/{webhook_id}", "DELETE", DELETE_WEBHOOK, permission=Role.ADMIN)
async def webhook_delete(request: Request) -> Response:
    webhook_id = path_id(request, "webhook_id", "Webhook")
    await _run(request, DELETE_WEBHOOK, {"id": webhook_id})
    return answer(None, 204, DELETE_WEBHOOK)
