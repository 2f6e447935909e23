"""Webhook tables: the registered receivers, one delivery per (webhook, event) and each
attempt to deliver it (created by a migration in :mod:`server.migrations`)."""

from __future__ import annotations

import peewee

from server.models import BaseModel, IdField, JSONField, Project, now_seconds


class Webhook(BaseModel):
    id = IdField()
    project = peewee.ForeignKeyField(Project, backref="webhooks", on_delete="CASCADE")
    project_id: int
    url = peewee.TextField()
    send_payload = peewee.BooleanField(default=True)
    send_for_all_actions = peewee.BooleanField(default=True)
    actions = JSONField(default=list)  # Label Studio 1.x action names
    headers = JSONField(default=dict)
    is_active = peewee.BooleanField(default=True)
    secret = peewee.TextField()  # the HMAC-SHA256 key of the signature header
    created_at = peewee.IntegerField(default=now_seconds)
    updated_at = peewee.IntegerField(default=now_seconds)


class WebhookDelivery(BaseModel):
    """One event to deliver to one webhook: pending until a receiver answered 2xx
    (delivered) or every attempt failed (failed)."""

    id = IdField()
    webhook = peewee.ForeignKeyField(Webhook, backref="deliveries", on_delete="CASCADE")
    webhook_id: int
    action = peewee.CharField(max_length=64)
    body = peewee.TextField()  # the JSON body, exactly as signed and sent
    state = peewee.CharField(max_length=16, default="pending")  # pending delivered failed
    attempts = peewee.IntegerField(default=0)
    next_attempt_at = peewee.DoubleField(index=True)  # epoch seconds: REAL would round
    created_at = peewee.IntegerField(default=now_seconds)
    finished_at = peewee.IntegerField(null=True)


class WebhookAttempt(BaseModel):
    id = IdField()
    delivery = peewee.ForeignKeyField(WebhookDelivery, backref="tries", on_delete="CASCADE")
    delivery_id: int
    started_at = peewee.DoubleField()
    duration = peewee.DoubleField()  # seconds
    status_code = peewee.IntegerField(null=True)  # null: no HTTP answer (see error)
    response = peewee.TextField(null=True)  # the start of the receiver's answer
    error = peewee.TextField(null=True)


WEBHOOK_MODELS: list[type[peewee.Model]] = [Webhook, WebhookDelivery, WebhookAttempt]
