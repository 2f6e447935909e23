"""Webhooks delivered by a real server to a real receiver process that verifies signatures."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.choices import choice_result
from tests.conftest import fixture_text
from tests.live_server import free_port, running_server

pytestmark = pytest.mark.live

RESULT = choice_result("Positive")
ENV = {"LABELGRAPH_WEBHOOK_ALLOW_PRIVATE": "true", "LABELGRAPH_WEBHOOK_RETRY_DELAY": "0.2"}
DELIVERIES = """query ($id: Int!) { webhook(id: $id) { deliveries {
    id action state attemptCount body attempts { statusCode error } } } }"""


class Receiver:
    def __init__(self, directory: Path, fail: int) -> None:
        self.port = free_port()
        self.secret_file = directory / "secret"
        self.log = directory / "requests.jsonl"
        command = [
            sys.executable,
            "-m",
            "tests.webhook_receiver",
            "--port",
            str(self.port),
            "--secret-file",
            str(self.secret_file),
            "--log",
            str(self.log),
            "--fail",
            str(fail),
        ]
        self.process = subprocess.Popen(command, cwd=Path(__file__).parents[1])
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(self.url, timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the receiver did not start"
                time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def requests(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def wait_for(self, count: int) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 30
        while len(self.requests()) < count:
            assert time.monotonic() < deadline, self.requests()
            time.sleep(0.05)
        return self.requests()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    started = Receiver(tmp_path, fail=2)
    try:
        yield started
    finally:
        started.stop()


def _graphql(http: httpx.Client, query: str, **variables: Any) -> dict[str, Any]:
    answer = http.post("/graphql", json={"query": query, "variables": variables}).json()
    assert "errors" not in answer, answer
    data: dict[str, Any] = answer["data"]
    return data


def test_a_receiver_that_fails_twice_gets_the_event_exactly_once_more(
    tmp_path: Path, receiver: Receiver
) -> None:
    with (
        running_server(tmp_path / "hooks", env=ENV) as base,
        httpx.Client(base_url=base, timeout=10) as http,
    ):
        config = fixture_text("configs/sentiment.xml")
        assert http.post("/api/project/config", data={"label_config": config}).is_success
        created = http.post(
            "/api/webhooks",
            json={
                "url": receiver.url,
                "send_payload": True,
                "send_for_all_actions": False,
                "actions": ["ANNOTATION_CREATED"],
                "headers": {"X-Custom": "hello"},
            },
        )
        assert created.status_code == 201, created.text
        webhook = created.json()
        receiver.secret_file.write_text(webhook["secret"])
        task = http.post("/api/project/import", json=[{"text": "hook me"}]).json()
        task_id = task["new_task_ids"][0]
        completion = http.post(f"/api/tasks/{task_id}/completions", json={"result": RESULT})
        assert completion.status_code == 201

        requests = receiver.wait_for(3)
        assert [r["status"] for r in requests] == [500, 500, 200]
        assert all(r["signed"] for r in requests)
        assert len({r["delivery"] for r in requests}) == 1  # the same delivery, retried
        assert {r["event"] for r in requests} == {"ANNOTATION_CREATED"}
        assert {r["custom"] for r in requests} == {"hello"}
        body = requests[0]["body"]
        assert body["action"] == "ANNOTATION_CREATED"
        assert body["annotation"]["id"] == completion.json()["id"]
        assert body["annotation"]["result"] == RESULT
        assert body["task"]["id"] == task_id and body["task"]["data"] == {"text": "hook me"}
        assert body["project"]["id"] == webhook["project"]

        deliveries = _graphql(http, DELIVERIES, id=webhook["id"])["webhook"]["deliveries"]
        assert len(deliveries) == 1
        delivery = deliveries[0]
        assert str(delivery["id"]) == requests[0]["delivery"]
        assert delivery["state"] == "delivered" and delivery["attemptCount"] == 3
        assert [a["statusCode"] for a in delivery["attempts"]] == [500, 500, 200]
        assert delivery["body"] == body
        # Delivered: never sent again (the worker only sends pending deliveries).
        assert len(receiver.requests()) == 3
