"""Subscriptions across processes: two uvicorn processes on one database (PostgreSQL's
LISTEN/NOTIFY, or the local sockets of processes sharing a SQLite file), and a slow subscriber
that falls behind."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.choices import choice_result
from tests.conftest import fixture_text
from tests.live_server import running_server
from tests.ws_client import PROTOCOLS, GraphQLSocket

pytestmark = pytest.mark.live

RESULT = choice_result("Positive")
COMPLETIONS = "subscription { completionChanged { kind taskId completionIds completion } }"


def _new_task(http: httpx.Client, text: str = "poke") -> int:
    answer = http.post("/api/project/import", json=[{"text": text}])
    assert answer.status_code == 201, answer.text
    return int(answer.json()["new_task_ids"][0])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_subscriber_on_one_process_sees_a_completion_posted_to_another(
    tmp_path: Path, protocol: str
) -> None:
    project = tmp_path / "one_project"
    with (
        running_server(project) as base_a,
        running_server(project, reset=False) as base_b,
        httpx.Client(base_url=base_a, timeout=10) as http_a,
        httpx.Client(base_url=base_b, timeout=10) as http_b,
        GraphQLSocket(base_a, protocol) as ws,
    ):
        config = fixture_text("configs/sentiment.xml")
        assert http_b.post("/api/project/config", data={"label_config": config}).is_success

        def poke() -> None:  # written through B: proves B's events reach A
            task_id = _new_task(http_b)
            assert http_b.post(f"/api/tasks/{task_id}/completions", json={"result": RESULT})

        ws.subscribe_confirmed("c", COMPLETIONS, poke)
        task_id = _new_task(http_b, "labeled on B")
        answer = http_b.post(f"/api/tasks/{task_id}/completions", json={"result": RESULT})
        assert answer.status_code == 201
        seen = ws.data_for("c")["completionChanged"]
        assert seen["kind"] == "CREATED" and seen["taskId"] == task_id
        assert seen["completionIds"] == [answer.json()["id"]]
        assert seen["completion"]["result"] == RESULT
        # And the other way round is the same bus: A's own writes still reach A once.
        task_a = _new_task(http_a, "labeled on A")
        own = http_a.post(f"/api/tasks/{task_a}/completions", json={"result": RESULT})
        assert ws.data_for("c")["completionChanged"]["completionIds"] == [own.json()["id"]]
        with pytest.raises(TimeoutError):
            ws.message_for("c", timeout=1)


def test_a_subscriber_that_falls_behind_gets_an_error_and_is_closed(tmp_path: Path) -> None:
    """The client stops reading; the server's buffers fill, the subscription's queue (4 events)
    overflows; writes keep succeeding; once the client reads again it finds the results sent
    before, then SUBSCRIBER_OVERFLOW, then the end of the subscription."""
    env = {"LABELGRAPH_LIVE_QUEUE_SIZE": "4"}
    with (
        running_server(tmp_path / "slow", env=env) as base,
        httpx.Client(base_url=base, timeout=10) as http,
        GraphQLSocket(base, PROTOCOLS[0], receive_buffer=16384, max_queue=1) as ws,
    ):
        config = fixture_text("configs/sentiment.xml")
        assert http.post("/api/project/config", data={"label_config": config}).is_success
        ws.subscribe_confirmed(
            "t", "subscription { taskChanged { kind task } }", lambda: _new_task(http)
        )
        task_id = _new_task(http, "big")
        big = os.urandom(100_000).hex()  # incompressible (permessage-deflate)
        updates = 150  # ~30 MB of results: more than the sockets on both sides hold
        for n in range(updates):
            answer = http.patch(f"/api/tasks/{task_id}", json={"data": {"text": f"{n}{big}"}})
            assert answer.status_code == 200
        received = 0
        while True:
            message = ws.message_for("t", timeout=10)
            if message["type"] != "next" or message["payload"].get("errors"):
                break
            received += 1
        assert message["type"] == "next", message
        assert message["payload"]["errors"][0]["extensions"]["code"] == "SUBSCRIBER_OVERFLOW"
        assert ws.message_for("t", timeout=10)["type"] == "complete"
        assert received < updates
