"""The background worker that delivers webhook rows, with retries and exponential back-off.

A thread per process sleeps until it is woken (a transaction recorded deliveries) or the next
retry it knows of is due. It claims due deliveries (on PostgreSQL with ``FOR UPDATE SKIP
LOCKED``, so several processes never send the same one at once) by pushing their next attempt a
lease ahead, posts them (a few at once) without holding a database connection, and records each
attempt: a 2xx answer delivers; anything else is retried after ``webhook_retry_delay`` seconds,
doubled after each failure up to ``webhook_max_retry_delay``, until ``webhook_max_attempts``.
Without webhooks the worker makes no query at all.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import peewee

from server.db import is_sqlite, released, with_connection, write_transaction
from server.models import now_seconds
from server.services.webhooks import sender
from server.settings import Settings
from server.webhook_models import Webhook, WebhookAttempt, WebhookDelivery

log = logging.getLogger(__name__)
BATCH = 16
SENDERS = 4
LEASE_MARGIN = 30.0
INACTIVE = "not sent: the webhook is not active"


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    attempts: int
    action: str
    body: bytes
    url: str
    headers: dict[str, str]
    secret: str
    active: bool


def retry_delay(settings: Settings, failures: int) -> float:
    """Seconds before the next attempt after ``failures`` failed ones (1, 2, ...)."""
    delay = settings.webhook_retry_delay * 2 ** min(failures - 1, 30)
    return float(min(delay, settings.webhook_max_retry_delay))


def next_due() -> float | None:
    value = (
        WebhookDelivery.select(peewee.fn.MIN(WebhookDelivery.next_attempt_at))
        .where(WebhookDelivery.state == "pending")
        .scalar()
    )
    return None if value is None else float(value)


class WebhookWorker:
    def __init__(self, settings: Settings, first_due: float | None) -> None:
        self.settings = settings
        self._due = first_due
        self._wakeup = threading.Event()
        self._stopping = False
        self._senders = ThreadPoolExecutor(SENDERS, thread_name_prefix="labelgraph-webhook-post")
        self._thread = threading.Thread(target=self._run, name="labelgraph-webhooks", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wakeup.set()

    def close(self, timeout: float) -> None:
        self._stopping = True
        self._wakeup.set()
        self._thread.join(timeout)
        self._senders.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        while not self._stopping:
            wait = None if self._due is None else max(0.0, self._due - time.time())
            self._wakeup.wait(wait)
            self._wakeup.clear()
            if self._stopping:
                return
            try:
                self._due = with_connection(self._round)
            except Exception:
                log.exception("webhook delivery round failed")
                self._due = time.time() + self.settings.webhook_retry_delay

    def _round(self) -> float | None:
        while not self._stopping:
            claimed = self._claim()
            if not claimed:
                break
            with released():
                outcomes = list(self._senders.map(self._send, claimed))
            for item, outcome in zip(claimed, outcomes, strict=True):
                self._record(item, outcome)
        return next_due()

    def _claim(self) -> list[Claimed]:
        now = time.time()
        lease = now + self.settings.webhook_timeout + LEASE_MARGIN
        with write_transaction():
            query = (
                WebhookDelivery.select()
                .where(WebhookDelivery.state == "pending", WebhookDelivery.next_attempt_at <= now)
                .order_by(WebhookDelivery.id)
                .limit(BATCH)
            )
            if not is_sqlite():
                query = query.for_update("FOR UPDATE SKIP LOCKED")  # type: ignore[arg-type]
            rows = list(query)
            if not rows:
                return []
            ids = [row.id for row in rows]
            WebhookDelivery.update(next_attempt_at=lease).where(
                WebhookDelivery.id.in_(ids)
            ).execute()
            hooks = {
                hook.id: hook
                for hook in Webhook.select().where(Webhook.id.in_({r.webhook_id for r in rows}))
            }
        return [
            Claimed(
                row.id,
                row.attempts,
                row.action,
                row.body.encode(),
                hooks[row.webhook_id].url,
                dict(hooks[row.webhook_id].headers or {}),
                hooks[row.webhook_id].secret,
                hooks[row.webhook_id].is_active,
            )
            for row in rows
        ]

    def _send(self, item: Claimed) -> sender.Outcome:
        if not item.active:
            return sender.Outcome(duration=0.0, error=INACTIVE)
        headers = {
            **item.headers,
            sender.SIGNATURE_HEADER: sender.signature(item.secret, item.body),
            sender.DELIVERY_HEADER: str(item.delivery_id),
            sender.EVENT_HEADER: item.action,
        }
        return sender.post(
            item.url,
            item.body,
            headers,
            self.settings.webhook_timeout,
            self.settings.webhook_allow_private,
        )

    def _record(self, item: Claimed, outcome: sender.Outcome) -> None:
        attempts = item.attempts + 1
        changes: dict[str, object] = {"attempts": attempts}
        if outcome.delivered:
            changes.update(state="delivered", finished_at=now_seconds())
        elif attempts >= self.settings.webhook_max_attempts or outcome.error == INACTIVE:
            changes.update(state="failed", finished_at=now_seconds())
        else:
            changes["next_attempt_at"] = time.time() + retry_delay(self.settings, attempts)
        with write_transaction():
            WebhookAttempt.create(
                delivery=item.delivery_id,
                started_at=time.time() - outcome.duration,
                duration=outcome.duration,
                status_code=outcome.status_code,
                response=outcome.response,
                error=outcome.error,
            )
            WebhookDelivery.update(changes).where(WebhookDelivery.id == item.delivery_id).execute()
        if not outcome.delivered:
            log.info(
                "webhook delivery %d attempt %d failed: %s",
                item.delivery_id,
                attempts,
                outcome.error or f"HTTP {outcome.status_code}",
            )
