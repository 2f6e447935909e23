"""GraphQL subscriptions against a real uvicorn process, over both WebSocket protocols."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from server.services.imports.pipeline import CHUNK
from tests.choices import choice_result
from tests.conftest import fixture_text
from tests.live_server import running_server
from tests.ws_client import PROTOCOLS, GraphQLSocket

pytestmark = pytest.mark.live

RESULT = choice_result("Positive")
TASKS = "subscription { taskChanged { kind taskIds count task } }"
COMPLETIONS = "subscription { completionChanged { kind taskId completionIds completion } }"
IMPORTS = "subscription { importProgress { state tasks completions } }"
PROJECT = "subscription { projectChanged { reason taskCount labeledTaskCount completionCount } }"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(tmp_path_factory.mktemp("subscriptions") / "project") as base:
        with httpx.Client(base_url=base, timeout=10) as http:
            config = fixture_text("configs/sentiment.xml")
            assert http.post("/api/project/config", data={"label_config": config}).is_success
        yield base


def _poke_project(http: httpx.Client) -> None:
    assert http.patch("/api/project", json={"description": "poke"}).is_success


def _poke_tasks(http: httpx.Client) -> None:
    assert http.post("/api/project/import", json=[{"text": "poke"}]).is_success


def _poke_completions(http: httpx.Client) -> None:
    task_id = http.post("/api/project/import", json=[{"text": "poke"}]).json()["new_task_ids"][0]
    assert http.post(f"/api/tasks/{task_id}/completions", json={"result": RESULT}).is_success


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_completion_reaches_task_completion_and_project_subscribers(
    server: str, protocol: str
) -> None:
    with httpx.Client(base_url=server, timeout=10) as http, GraphQLSocket(server, protocol) as ws:
        ws.subscribe_confirmed("p", PROJECT, lambda: _poke_project(http))
        ws.subscribe_confirmed("t", TASKS, lambda: _poke_tasks(http))
        ws.subscribe_confirmed("c", COMPLETIONS, lambda: _poke_completions(http))
        report = http.post("/api/project/import", json=[{"text": "to label"}]).json()
        task_id = report["new_task_ids"][0]
        created = ws.data_for("t")["taskChanged"]
        assert created["kind"] == "CREATED" and created["taskIds"] == [task_id]
        assert created["task"]["data"] == {"text": "to label"}
        counters = ws.data_for("p")["projectChanged"]
        assert counters["reason"] == "counters"
        project = http.get("/api/project").json()
        assert counters["taskCount"] == project["task_count"]

        answer = http.post(f"/api/tasks/{task_id}/completions", json={"result": RESULT})
        assert answer.status_code == 201
        completion_id = answer.json()["id"]
        completion = ws.data_for("c")["completionChanged"]
        assert completion["kind"] == "CREATED" and completion["taskId"] == task_id
        assert completion["completionIds"] == [completion_id]
        assert completion["completion"]["id"] == completion_id
        assert completion["completion"]["result"] == RESULT
        labeled = ws.data_for("t")["taskChanged"]
        assert labeled["kind"] == "LABELED" and labeled["taskIds"] == [task_id]
        assert labeled["task"]["completions"][0]["id"] == completion_id
        after = ws.data_for("p")["projectChanged"]
        assert after["completionCount"] == counters["completionCount"] + 1
        assert after["labeledTaskCount"] == counters["labeledTaskCount"] + 1

        assert http.delete(f"/api/tasks/{task_id}").status_code == 204
        deleted = ws.data_for("t")["taskChanged"]
        assert deleted == {"kind": "DELETED", "taskIds": [task_id], "count": 1, "task": None}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_rolled_back_import_announces_nothing(server: str, protocol: str) -> None:
    with httpx.Client(base_url=server, timeout=10) as http, GraphQLSocket(server, protocol) as ws:
        ws.subscribe_confirmed("t", TASKS, lambda: _poke_tasks(http))
        ws.subscribe_confirmed("p", PROJECT, lambda: _poke_project(http))
        ws.subscribe_confirmed("i", IMPORTS, lambda: _poke_tasks(http))
        before = http.get("/api/project").json()["task_count"]
        # The last item is invalid: a chunk of tasks was inserted, then all is rolled back.
        items = [{"text": f"fine {n}"} for n in range(CHUNK + 10)] + [{"other": 1}]
        refused = http.post("/api/project/import", json=items)
        assert refused.status_code == 422
        assert http.get("/api/project").json()["task_count"] == before
        # The import's progress is told (a chunk stored, then it failed)...
        running = ws.data_for("i")["importProgress"]
        assert running == {"state": "running", "tasks": CHUNK, "completions": None}
        assert ws.data_for("i")["importProgress"]["state"] == "failed"
        # ...but no task or project change: a later import's events come next.
        report = http.post("/api/project/import", json=[{"text": "after"}]).json()
        created = ws.data_for("t")["taskChanged"]
        assert created["taskIds"] == report["new_task_ids"]
        counters = ws.data_for("p")["projectChanged"]
        assert counters["taskCount"] == before + 1
        stored = ws.data_for("i")["importProgress"]
        assert stored == {"state": "running", "tasks": 1, "completions": None}
        done = ws.data_for("i")["importProgress"]
        assert done == {"state": "done", "tasks": 1, "completions": 0}


def test_queries_over_a_websocket_are_refused(server: str) -> None:
    with GraphQLSocket(server, PROTOCOLS[0]) as ws:
        ws.subscribe("q", "{ project { taskCount } }")
        message = ws.message_for("q")
        assert message["type"] == "error", message


def test_subscribing_to_an_unknown_job_is_not_found(server: str) -> None:
    with GraphQLSocket(server, PROTOCOLS[0]) as ws:
        ws.subscribe("j", "subscription { jobProgress(id: 999) { state } }")
        message = ws.message_for("j")
        errors = message["payload"]["errors"] if message["type"] == "next" else message["payload"]
        assert errors[0]["extensions"]["code"] == "NOT_FOUND", message


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_subscribers_of_one_document_each_get_their_own_id_and_the_same_data(
    server: str, protocol: str
) -> None:
    """Results shared between subscribers are encoded once (server/live_frames.py): each
    operation still gets its own id, on one connection and on another one."""
    with (
        httpx.Client(base_url=server, timeout=10) as http,
        GraphQLSocket(server, protocol) as ws,
        GraphQLSocket(server, PROTOCOLS[1 - PROTOCOLS.index(protocol)]) as other,
    ):
        ws.subscribe_confirmed("first", COMPLETIONS, lambda: _poke_completions(http))
        ws.subscribe_confirmed("second", COMPLETIONS, lambda: _poke_completions(http))
        other.subscribe_confirmed("third", COMPLETIONS, lambda: _poke_completions(http))
        ws.drain(0.3)
        task_id = http.post("/api/project/import", json=[{"text": "shared"}]).json()
        task_id = task_id["new_task_ids"][0]
        answer = http.post(f"/api/tasks/{task_id}/completions", json={"result": RESULT})
        completion_id = answer.json()["id"]
        first, second = ws.message_for("first"), ws.message_for("second")
        third = other.message_for("third")
        assert (first["id"], second["id"], third["id"]) == ("first", "second", "third")
        assert first["payload"] == second["payload"] == third["payload"]
        change = first["payload"]["data"]["completionChanged"]
        assert change["completionIds"] == [completion_id] and change["taskId"] == task_id
