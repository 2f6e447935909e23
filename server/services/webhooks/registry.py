"""Registering webhooks: validation and storage (a change is announced to every process)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from peewee import fn

from server.db import write_transaction
from server.errors import DomainError, not_found
from server.models import now_seconds
from server.services import events
from server.services.net_guard import AddressRefused, vetted_addresses
from server.services.projects import get_project
from server.services.webhooks.actions import ACTIONS
from server.webhook_models import Webhook, WebhookAttempt, WebhookDelivery

WEBHOOK_SWITCH = "LABELGRAPH_WEBHOOK_ALLOW_PRIVATE"
MAX_URL = 2048
MAX_HEADERS = 20
MAX_HEADER_VALUE = 1024
FIELDS = ("url", "send_payload", "send_for_all_actions", "actions", "headers", "is_active")


@dataclass(frozen=True)
class UrlPolicy:
    allow_private: bool = False
    resolve: bool = True  # look the host up now (refuse non-public answers)


def _invalid(field: str, message: str) -> DomainError:
    return DomainError("invalid", message, {"field": field})


def check_url(value: Any, policy: UrlPolicy) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _invalid("url", "url must be an http or https URL")
    url = value.strip()
    if len(url) > MAX_URL:
        raise _invalid("url", f"url is longer than {MAX_URL} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _invalid("url", "url must be an http or https URL with a host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise _invalid("url", "url has a bad port") from None
    if policy.resolve:
        try:
            vetted_addresses(
                parts.hostname, port, allow_private=policy.allow_private, switch=WEBHOOK_SWITCH
            )
        except AddressRefused as exc:
            raise _invalid("url", f"Webhooks to {parts.hostname} are not allowed: {exc}") from None
    return url


def _check_actions(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
        raise _invalid("actions", "actions must be a list of action names")
    unknown = [a for a in value if a not in ACTIONS]
    if unknown:
        raise _invalid("actions", f"unknown action {unknown[0]!r}: use one of {', '.join(ACTIONS)}")
    return list(dict.fromkeys(value))


def _check_headers(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or len(value) > MAX_HEADERS:
        raise _invalid("headers", f"headers must be an object of at most {MAX_HEADERS} strings")
    for name, text in value.items():
        bad_name = not name or not all(c.isalnum() or c in "-_" for c in name)
        if bad_name or not isinstance(text, str) or len(text) > MAX_HEADER_VALUE:
            raise _invalid("headers", f"header {name!r}: a token name and a short string value")
        if any(c in text for c in "\r\n\0"):
            raise _invalid("headers", f"header {name!r}: no line breaks in values")
    return dict(value)


def _check_bool(changes: dict[str, Any], key: str) -> bool:
    value = changes[key]
    if not isinstance(value, bool):
        raise _invalid(key, f"{key} must be true or false")
    return value


def _values(changes: dict[str, Any], policy: UrlPolicy) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key in FIELDS:
        if changes.get(key) is None:
            continue
        if key == "url":
            values[key] = check_url(changes[key], policy)
        elif key == "actions":
            values[key] = _check_actions(changes[key])
        elif key == "headers":
            values[key] = _check_headers(changes[key])
        else:
            values[key] = _check_bool(changes, key)
    return values


def create_webhook(project_id: int, changes: dict[str, Any], policy: UrlPolicy) -> Webhook:
    if changes.get("url") is None:
        raise _invalid("url", "url is required")
    values = _values(changes, policy)
    get_project(project_id)
    with write_transaction():
        webhook = Webhook.create(project=project_id, secret=secrets.token_urlsafe(32), **values)
        events.add(events.Event(events.WEBHOOKS_CHANGED, project_id))
    return webhook


def update_webhook(
    webhook_id: int, changes: dict[str, Any], policy: UrlPolicy, project_id: int | None = None
) -> Webhook:
    values = _values(changes, policy)
    with write_transaction():
        webhook = get_webhook(webhook_id, project_id)
        if values:
            values["updated_at"] = now_seconds()
            Webhook.update(values).where(Webhook.id == webhook.id).execute()
            events.add(events.Event(events.WEBHOOKS_CHANGED, webhook.project_id))
        return get_webhook(webhook_id)


def delete_webhook(webhook_id: int, project_id: int | None = None) -> int:
    with write_transaction():
        webhook = get_webhook(webhook_id, project_id)
        webhook.delete_instance(recursive=True)
        events.add(events.Event(events.WEBHOOKS_CHANGED, webhook.project_id))
    return webhook_id


def get_webhook(webhook_id: int, project_id: int | None = None) -> Webhook:
    query = Webhook.select().where(Webhook.id == webhook_id)
    if project_id is not None:
        query = query.where(Webhook.project == project_id)
    found: Webhook | None = query.first()
    if found is None:
        raise not_found("Webhook", webhook_id)
    return found


def list_webhooks(project_id: int) -> list[Webhook]:
    return list(Webhook.select().where(Webhook.project == project_id).order_by(Webhook.id))


def newest_deliveries(webhook_ids: Sequence[int], limit: int) -> dict[int, list[WebhookDelivery]]:
    """The newest ``limit`` deliveries of each webhook, newest first, in one query."""
    found: dict[int, list[WebhookDelivery]] = {webhook_id: [] for webhook_id in webhook_ids}
    if not found or limit <= 0:
        return found
    newest_first = fn.ROW_NUMBER().over(
        partition_by=[WebhookDelivery.webhook], order_by=[WebhookDelivery.id.desc()]
    )
    ranked = (
        WebhookDelivery.select(WebhookDelivery.id.alias("delivery_id"), newest_first.alias("rank"))
        .where(WebhookDelivery.webhook.in_(list(found)))
        .alias("ranked")
    )
    query = (
        WebhookDelivery.select()
        .join(ranked, on=(WebhookDelivery.id == ranked.c.delivery_id))
        .where(ranked.c.rank <= limit)
        .order_by(WebhookDelivery.id.desc())
    )
    for delivery in query:
        found[delivery.webhook_id].append(delivery)
    return found


def attempts_of(delivery_ids: Sequence[int]) -> dict[int, list[WebhookAttempt]]:
    """The attempts of each delivery, oldest first, in one query."""
    found: dict[int, list[WebhookAttempt]] = {delivery_id: [] for delivery_id in delivery_ids}
    if not found:
        return found
    query = WebhookAttempt.select().where(WebhookAttempt.delivery.in_(list(found)))
    for attempt in query.order_by(WebhookAttempt.id):
        found[attempt.delivery_id].append(attempt)
    return found
