"""Committed events become webhook deliveries in the same transaction (an outbox).

The outbox keeps, per process, which projects have active webhooks (read at start-up and
again whenever a webhook changes here or in another process), so a write in a project without
webhooks costs no query. For a project with webhooks, :meth:`WebhookOutbox.record` writes one
``webhook_delivery`` row per (webhook, action) inside the write transaction, so a delivery
exists exactly when its change was committed, and survives a restart until delivered.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from server.db import with_connection
from server.models import dump_json
from server.services.events import Event
from server.services.webhooks.actions import action_of, payload
from server.webhook_models import Webhook, WebhookDelivery

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    webhook_id: int
    send_payload: bool
    actions: frozenset[str] | None  # None: every action


def _full_body(action: str, event: Event) -> str:
    """The body with the changed objects; only the action and project if they cannot be
    read (the change itself must not fail for its webhook)."""
    try:
        return dump_json(payload(action, event))
    except Exception:
        log.exception("building the %s webhook body failed", action)
        return dump_json({"action": action, "project": {"id": event.project_id}})


class WebhookOutbox:
    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake = wake
        self._targets: dict[int, list[Target]] = {}
        self._lock = threading.Lock()

    def load(self) -> None:
        """Read the active webhooks (on a thread with a database connection)."""
        targets: dict[int, list[Target]] = {}
        for row in Webhook.select().where(Webhook.is_active == True).order_by(Webhook.id):  # noqa: E712
            actions = None if row.send_for_all_actions else frozenset(row.actions or [])
            targets.setdefault(row.project_id, []).append(Target(row.id, row.send_payload, actions))
        with self._lock:
            self._targets = targets

    def wants(self, project_id: int) -> bool:
        return project_id in self._targets

    def record(self, events: list[Event]) -> None:
        rows: list[dict[str, object]] = []
        now = time.time()
        for event in events:
            targets = self._targets.get(event.project_id)
            if not targets:
                continue
            action = action_of(event)
            if action is None:
                continue
            full: str | None = None
            for target in targets:
                if target.actions is not None and action not in target.actions:
                    continue
                if target.send_payload:
                    if full is None:
                        full = _full_body(action, event)
                    body = full
                else:
                    body = dump_json({"action": action})
                rows.append(
                    {
                        "webhook": target.webhook_id,
                        "action": action,
                        "body": body,
                        "next_attempt_at": now,
                    }
                )
        if rows:
            WebhookDelivery.insert_many(rows).execute()
            events[0].memo["webhooks"] = True

    def committed(self, events: list[Event]) -> None:
        if events and events[0].memo.get("webhooks"):
            self._wake()

    def changed(self) -> None:
        try:
            with_connection(self.load)
        except Exception:
            log.exception("could not re-read the webhooks")
