"""Webhooks: registered receivers of a project's changes, their deliveries and attempts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from enum import Enum
from typing import Any

import strawberry

from schema.context import Context, Info
from schema.permissions import IsAdmin, inherits_access
from schema.scalars import JSON, from_seconds
from server.errors import not_found
from server.principal import Role
from server.services.webhooks import registry
from server.services.webhooks.actions import (
    ANNOTATION_CREATED,
    ANNOTATION_UPDATED,
    ANNOTATIONS_DELETED,
    PROJECT_UPDATED,
    TASKS_CREATED,
    TASKS_DELETED,
)
from server.services.webhooks.registry import UrlPolicy
from server.webhook_models import Webhook as WebhookRow
from server.webhook_models import WebhookAttempt as AttemptRow
from server.webhook_models import WebhookDelivery as DeliveryRow

MAX_DELIVERIES = 100


class Siblings:
    """The ids of rows listed together. The first row asked for its children loads them for
    every sibling with one query (a DataLoader scoped to one list), so listing webhooks with
    their deliveries and the deliveries' attempts costs three queries whatever the lengths."""

    def __init__(self, ids: list[int]) -> None:
        self.ids = ids
        self._loaded: dict[object, dict[int, list[Any]]] = {}
        self._children_siblings: dict[object, Siblings] = {}

    def load(
        self, key: object, loader: Callable[[list[int]], dict[int, list[Any]]]
    ) -> dict[int, list[Any]]:
        """The children of every sibling by parent id (loaded once per key)."""
        if key not in self._loaded:
            self._loaded[key] = loader(self.ids)
        return self._loaded[key]

    def children_siblings(self, key: object) -> Siblings:
        """The children loaded under ``key``, as siblings of one another."""
        if key not in self._children_siblings:
            rows = self._loaded[key].values()
            self._children_siblings[key] = Siblings([row.id for group in rows for row in group])
        return self._children_siblings[key]


@strawberry.enum(description="What a webhook is told of (Label Studio 1.x's action names).")
class WebhookAction(Enum):
    ANNOTATION_CREATED = ANNOTATION_CREATED
    ANNOTATION_UPDATED = ANNOTATION_UPDATED
    ANNOTATIONS_DELETED = ANNOTATIONS_DELETED
    TASKS_CREATED = TASKS_CREATED
    TASKS_DELETED = TASKS_DELETED
    PROJECT_UPDATED = PROJECT_UPDATED


def _at(seconds: float | None) -> dt.datetime | None:
    return None if seconds is None else dt.datetime.fromtimestamp(seconds, dt.UTC)


@inherits_access(Role.ADMIN)
@strawberry.type(description="One attempt to deliver a webhook event, and its answer.")
class WebhookAttempt:
    row: strawberry.Private[AttemptRow]

    @strawberry.field
    def started_at(self) -> dt.datetime:
        return _at(self.row.started_at)  # type: ignore[return-value]

    @strawberry.field(description="Seconds the attempt took.")
    def duration(self) -> float:
        return self.row.duration

    @strawberry.field(description="The receiver's HTTP status (null: no answer, see error).")
    def status_code(self) -> int | None:
        return self.row.status_code

    @strawberry.field(description="The start of the receiver's answer (1,000 characters).")
    def response(self) -> str | None:
        return self.row.response

    @strawberry.field
    def error(self) -> str | None:
        return self.row.error


@inherits_access(Role.ADMIN)
@strawberry.type(description="One event to deliver to a webhook.")
class WebhookDelivery:
    row: strawberry.Private[DeliveryRow]
    siblings: strawberry.Private[Siblings]

    @strawberry.field(description="Also sent as the X-Labelgraph-Delivery header.")
    def id(self) -> int:
        return self.row.id

    @strawberry.field
    def action(self) -> str:
        return self.row.action

    @strawberry.field(description="`pending`, `delivered` or `failed` (every attempt failed).")
    def state(self) -> str:
        return self.row.state

    @strawberry.field
    def attempt_count(self) -> int:
        return self.row.attempts

    @strawberry.field(description="The JSON body sent (and signed).")
    def body(self) -> JSON:
        import orjson

        value: Any = orjson.loads(self.row.body)
        return value

    @strawberry.field
    def created_at(self) -> dt.datetime:
        return from_seconds(self.row.created_at)  # type: ignore[return-value]

    @strawberry.field(description="When the next attempt is due (pending deliveries).")
    def next_attempt_at(self) -> dt.datetime | None:
        return _at(self.row.next_attempt_at) if self.row.state == "pending" else None

    @strawberry.field
    def finished_at(self) -> dt.datetime | None:
        return from_seconds(self.row.finished_at)

    @strawberry.field(description="The attempts so far, oldest first.")
    def attempts(self) -> list[WebhookAttempt]:
        attempts = self.siblings.load("attempts", registry.attempts_of)
        return [WebhookAttempt(row=r) for r in attempts.get(self.row.id, [])]


@inherits_access(Role.ADMIN)
@strawberry.type(description="A URL told of a project's changes by signed HTTP POSTs.")
class Webhook:
    row: strawberry.Private[WebhookRow]
    siblings: strawberry.Private[Siblings]

    @classmethod
    def listed(cls, rows: list[WebhookRow]) -> list[Webhook]:
        siblings = Siblings([row.id for row in rows])
        return [cls(row=row, siblings=siblings) for row in rows]

    @classmethod
    def alone(cls, row: WebhookRow) -> Webhook:
        return cls(row=row, siblings=Siblings([row.id]))

    @strawberry.field
    def id(self) -> int:
        return self.row.id

    @strawberry.field
    def project_id(self) -> int:
        return self.row.project_id

    @strawberry.field
    def url(self) -> str:
        return self.row.url

    @strawberry.field(description="Send the changed objects (otherwise only the action).")
    def send_payload(self) -> bool:
        return self.row.send_payload

    @strawberry.field(description="Send every action (otherwise only `actions`).")
    def send_for_all_actions(self) -> bool:
        return self.row.send_for_all_actions

    @strawberry.field
    def actions(self) -> list[str]:
        return list(self.row.actions or [])

    @strawberry.field(description="Extra HTTP headers sent with each delivery.")
    def headers(self) -> JSON:
        return dict(self.row.headers or {})

    @strawberry.field
    def is_active(self) -> bool:
        return self.row.is_active

    @strawberry.field(
        description="The key of the X-Labelgraph-Signature-256 header: HMAC-SHA256 of the body."
    )
    def secret(self) -> str:
        return self.row.secret

    @strawberry.field
    def created_at(self) -> dt.datetime:
        return from_seconds(self.row.created_at)  # type: ignore[return-value]

    @strawberry.field
    def updated_at(self) -> dt.datetime:
        return from_seconds(self.row.updated_at)  # type: ignore[return-value]

    @strawberry.field(description="The newest deliveries first (at most 100).")
    def deliveries(self, first: int = 20) -> list[WebhookDelivery]:
        limit = max(0, min(first, MAX_DELIVERIES))
        key = ("deliveries", limit)
        deliveries = self.siblings.load(key, lambda ids: registry.newest_deliveries(ids, limit))
        siblings = self.siblings.children_siblings(key)
        return [WebhookDelivery(row=r, siblings=siblings) for r in deliveries.get(self.row.id, [])]


@strawberry.input(description="A webhook's settings; omitted fields keep their value.")
class WebhookInput:
    url: str | None = None
    send_payload: bool | None = None
    send_for_all_actions: bool | None = None
    actions: list[WebhookAction] | None = None
    headers: JSON | None = None
    is_active: bool | None = None

    def changes(self) -> dict[str, Any]:
        values = {k: v for k, v in vars(self).items() if v is not None}
        if "actions" in values:
            values["actions"] = [a.value for a in values["actions"]]
        return values


def url_policy(context: Context) -> UrlPolicy:
    return UrlPolicy(allow_private=context.settings.webhook_allow_private)


def _visible(context: Context, webhook_id: int) -> WebhookRow:
    """A webhook of a project the request may see; otherwise NOT_FOUND as for an unknown id
    (ids reveal nothing, as :meth:`Context.job`)."""
    row = registry.get_webhook(webhook_id)
    context._check_visible(row.project_id, not_found("Webhook", webhook_id))
    return row


@strawberry.type
class WebhookQuery:
    @strawberry.field(
        description="The webhooks of a project (default: the current one).",
        permission_classes=[IsAdmin],
    )
    def webhooks(self, info: Info, project_id: int | None = None) -> list[Webhook]:
        pid = info.context.project(project_id).id
        return Webhook.listed(registry.list_webhooks(pid))

    @strawberry.field(permission_classes=[IsAdmin])
    def webhook(self, info: Info, id: int) -> Webhook:
        return Webhook.alone(_visible(info.context, id))


@strawberry.type
class WebhookMutation:
    @strawberry.mutation(
        description="Register a webhook (a URL to a non-public address is refused unless "
        "LABELGRAPH_WEBHOOK_ALLOW_PRIVATE).",
        permission_classes=[IsAdmin],
    )
    def create_webhook(
        self, info: Info, input: WebhookInput, project_id: int | None = None
    ) -> Webhook:
        pid = info.context.resolve_project_id(project_id)
        row = registry.create_webhook(pid, input.changes(), url_policy(info.context))
        return Webhook.alone(row)

    @strawberry.mutation(permission_classes=[IsAdmin])
    def update_webhook(self, info: Info, id: int, input: WebhookInput) -> Webhook:
        row = _visible(info.context, id)
        updated = registry.update_webhook(row.id, input.changes(), url_policy(info.context))
        return Webhook.alone(updated)

    @strawberry.mutation(
        description="Delete a webhook with its deliveries; returns its id.",
        permission_classes=[IsAdmin],
    )
    def delete_webhook(self, info: Info, id: int) -> int:
        return registry.delete_webhook(_visible(info.context, id).id)
