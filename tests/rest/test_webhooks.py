"""/api/webhooks in Label Studio 1.x's shape, the URL guard, and deliveries recorded in the
transaction of the change (in-process: no delivery is attempted to these URLs)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from server.app import create_app
from server.db import with_connection
from server.settings import Settings
from server.webhook_models import WebhookDelivery
from tests.conftest import fixture_text

RESULT = [
    {
        "from_name": "sentiment",
        "to_name": "text",
        "type": "choices",
        "value": {"choices": ["Positive"]},
    }
]
# A reserved documentation address (RFC 5737): public by the guard's rules only when private
# addresses are allowed, never reachable.
PUBLIC_LOOKING = "http://192.0.2.10/hook"


@pytest.fixture
def open_client(settings: Settings) -> Iterator[TestClient]:
    """A server that lets webhooks reach any address (the receivers here never answer)."""
    allowed = dataclasses.replace(
        settings, webhook_allow_private=True, webhook_retry_delay=3600.0, webhook_timeout=0.5
    )
    with TestClient(create_app(allowed)) as client:
        config = fixture_text("configs/sentiment.xml")
        assert client.post("/api/project/config", data={"label_config": config}).is_success
        yield client


def _deliveries() -> list[WebhookDelivery]:
    return list(WebhookDelivery.select().order_by(WebhookDelivery.id))


def test_a_loopback_url_is_refused_unless_allowed(client: TestClient) -> None:
    answer = client.post("/api/webhooks", json={"url": "http://127.0.0.1:9/hook"})
    assert answer.status_code == 400
    (message,) = answer.json()["url"]
    assert "not allowed" in message and "LABELGRAPH_WEBHOOK_ALLOW_PRIVATE" in message
    assert client.get("/api/webhooks").json() == []


def test_create_list_update_delete_in_label_studio_shape(open_client: TestClient) -> None:
    body = {
        "url": PUBLIC_LOOKING,
        "send_payload": False,
        "send_for_all_actions": False,
        "actions": ["ANNOTATION_CREATED", "TASKS_DELETED"],
        "headers": {"Authorization": "Token abc"},
    }
    created = open_client.post("/api/webhooks", json=body)
    assert created.status_code == 201, created.text
    webhook = created.json()
    assert {k: webhook[k] for k in body} == body
    assert webhook["is_active"] is True and len(webhook["secret"]) >= 32
    assert set(webhook) >= {"id", "project", "created_at", "updated_at"}
    assert open_client.get("/api/webhooks").json() == [webhook]
    assert open_client.get(f"/api/webhooks/{webhook['id']}").json() == webhook

    patched = open_client.patch(f"/api/webhooks/{webhook['id']}", json={"is_active": False})
    assert patched.status_code == 200
    assert patched.json()["is_active"] is False and patched.json()["url"] == PUBLIC_LOOKING

    assert open_client.delete(f"/api/webhooks/{webhook['id']}").status_code == 204
    missing = open_client.get(f"/api/webhooks/{webhook['id']}")
    assert missing.status_code == 404 and missing.json()["status"] == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "url"),
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": PUBLIC_LOOKING, "actions": ["NOPE"]}, None),
        ({"url": PUBLIC_LOOKING, "actions": "ANNOTATION_CREATED"}, "actions"),
        ({"url": PUBLIC_LOOKING, "headers": {"X-A": "a\r\nb"}}, "headers"),
        ({"url": PUBLIC_LOOKING, "is_active": "yes"}, None),
    ],
)
def test_bad_webhooks_are_400(open_client: TestClient, body: dict[str, Any], field: str) -> None:
    answer = open_client.post("/api/webhooks", json=body)
    assert answer.status_code == 400, answer.text
    if field is not None:
        assert field in answer.json()
    assert open_client.get("/api/webhooks").json() == []


def test_deliveries_are_recorded_with_the_change_and_only_for_chosen_actions(
    open_client: TestClient,
) -> None:
    hook = open_client.post(
        "/api/webhooks",
        json={
            "url": PUBLIC_LOOKING,
            "send_for_all_actions": False,
            "actions": ["ANNOTATION_CREATED", "TASKS_CREATED"],
        },
    ).json()
    task_id = open_client.post("/api/project/import", json=[{"text": "a"}]).json()["new_task_ids"][
        0
    ]
    completion = open_client.post(f"/api/tasks/{task_id}/completions", json={"result": RESULT})
    assert completion.status_code == 201
    open_client.patch("/api/project", json={"description": "not chosen: no delivery"})
    # A rolled-back import records nothing.
    bad = open_client.post("/api/project/import", json=[{"text": "b"}, {"other": 1}])
    assert bad.status_code == 422

    rows = _deliveries()
    assert [r.action for r in rows] == ["TASKS_CREATED", "ANNOTATION_CREATED"]
    assert all(r.webhook_id == hook["id"] and r.state == "pending" for r in rows)
    created, annotated = (orjson.loads(r.body) for r in rows)
    assert created["tasks"] == [{"id": task_id}]
    assert annotated["annotation"]["id"] == completion.json()["id"]
    assert annotated["task"]["id"] == task_id


def test_without_payload_only_the_action_is_sent(open_client: TestClient) -> None:
    open_client.post("/api/webhooks", json={"url": PUBLIC_LOOKING, "send_payload": False})
    open_client.patch("/api/project", json={"title": "renamed"})
    assert [orjson.loads(r.body) for r in _deliveries()] == [{"action": "PROJECT_UPDATED"}]


def test_retry_times_keep_sub_second_precision(open_client: TestClient) -> None:
    """Epoch seconds in a 4-byte REAL (peewee's FloatField on PostgreSQL) round to ~2 minutes:
    a retry would wait that long."""
    hook = open_client.post("/api/webhooks", json={"url": PUBLIC_LOOKING, "is_active": False})
    due = 1_800_000_000.25

    def store_and_read() -> float:
        row = WebhookDelivery.create(
            webhook=hook.json()["id"], action="X", body="{}", next_attempt_at=due
        )
        return float(WebhookDelivery.get_by_id(row.id).next_attempt_at)

    assert with_connection(store_and_read) == due
