"""Listing webhooks with their deliveries and attempts reads each relation once (no N+1)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from server.app import create_app
from server.db import with_connection
from server.settings import Settings
from server.webhook_models import WebhookAttempt, WebhookDelivery
from tests.query_log import count_queries

LIST = """query ($first: Int!) { webhooks { id deliveries(first: $first) {
  id action attempts { statusCode } } } }"""


@pytest.fixture
def hooks_client(settings: Settings) -> Iterator[TestClient]:
    allowed = dataclasses.replace(settings, webhook_allow_private=True)
    with TestClient(create_app(allowed)) as client:
        yield client


def _add_webhooks(client: TestClient, count: int, deliveries_each: int) -> list[int]:
    """Webhooks with finished deliveries (the sender leaves those alone), two attempts each."""
    ids = []
    for n in range(count):
        answer = client.post("/api/webhooks", json={"url": f"http://192.0.2.{n + 1}/hook"})
        assert answer.status_code == 201, answer.text
        ids.append(answer.json()["id"])

    def insert() -> None:
        for webhook_id in ids:
            for d in range(deliveries_each):
                delivery = WebhookDelivery.create(
                    webhook=webhook_id,
                    action=f"ACTION_{webhook_id}_{d}",
                    body="{}",
                    state="delivered",
                    attempts=2,
                    next_attempt_at=0.0,
                )
                for status in (500, 200):
                    WebhookAttempt.create(
                        delivery=delivery, started_at=0.0, duration=0.1, status_code=status
                    )

    with_connection(insert)
    return ids


def _list(client: TestClient, first: int) -> tuple[list[dict[str, Any]], int]:
    with count_queries() as counter:
        answer = client.post("/graphql", json={"query": LIST, "variables": {"first": first}})
    body = answer.json()
    assert "errors" not in body, body
    return body["data"]["webhooks"], counter.count


def test_webhook_lists_read_deliveries_and_attempts_once(hooks_client: TestClient) -> None:
    ids = _add_webhooks(hooks_client, count=2, deliveries_each=3)
    _, few = _list(hooks_client, first=2)
    ids += _add_webhooks(hooks_client, count=4, deliveries_each=3)
    webhooks, many = _list(hooks_client, first=2)
    assert many == few  # the same statements for 2 webhooks as for 6
    assert [w["id"] for w in webhooks] == sorted(ids)
    for webhook in webhooks:
        # The newest two of each webhook's own three deliveries, newest first.
        actions = [d["action"] for d in webhook["deliveries"]]
        assert actions == [f"ACTION_{webhook['id']}_2", f"ACTION_{webhook['id']}_1"]
        for delivery in webhook["deliveries"]:
            assert [a["statusCode"] for a in delivery["attempts"]] == [500, 200]


def test_one_webhook_and_a_zero_limit(hooks_client: TestClient) -> None:
    (webhook_id,) = _add_webhooks(hooks_client, count=1, deliveries_each=2)
    one = hooks_client.post(
        "/graphql",
        json={
            "query": "query ($id: Int!) { webhook(id: $id) { deliveries { action "
            "attempts { statusCode } } } }",
            "variables": {"id": webhook_id},
        },
    ).json()["data"]["webhook"]
    assert [d["action"] for d in one["deliveries"]] == [
        f"ACTION_{webhook_id}_1",
        f"ACTION_{webhook_id}_0",
    ]
    webhooks, _ = _list(hooks_client, first=0)
    assert webhooks == [{"id": webhook_id, "deliveries": []}]
