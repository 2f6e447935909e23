"""``labelgraph start --workers 2``: two uvicorn workers on one database (the embedded SQLite
file; PostgreSQL in the PostgreSQL run). Writers on many connections, spread over both
workers, lose nothing, and a subscriber on one worker hears every write, whichever worker
made it (on SQLite: the writer gate and the local event broker)."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from tests.choices import choice_result
from tests.conftest import fixture_text
from tests.live_server import running_server
from tests.ws_client import PROTOCOLS, GraphQLSocket

pytestmark = pytest.mark.live

RESULT = choice_result("Positive")
COMPLETIONS = "subscription { completionChanged { kind completionIds } }"
WRITERS = 8
POSTS = 15


def test_two_workers_keep_every_write_and_tell_every_subscriber(tmp_path: Path) -> None:
    with (
        running_server(tmp_path / "project", "--workers", "2") as base,
        httpx.Client(base_url=base, timeout=30) as http,
        GraphQLSocket(base, PROTOCOLS[0]) as ws,
    ):
        config = fixture_text("configs/sentiment.xml")
        assert http.post("/api/project/config", data={"label_config": config}).is_success
        answer = http.post("/api/project/import", json=[{"text": f"t{n}"} for n in range(5)])
        task_ids = answer.json()["new_task_ids"]
        first: list[int] = []

        def poke() -> None:
            posted = http.post(f"/api/tasks/{task_ids[0]}/completions", json={"result": RESULT})
            first.append(posted.json()["id"])

        ws.subscribe_confirmed("c", COMPLETIONS, poke)
        acknowledged: list[int] = []
        failures: list[str] = []

        def write(writer: int) -> None:
            for n in range(POSTS):  # a new connection each time: either worker may take it
                with httpx.Client(base_url=base, timeout=30) as own:
                    task_id = task_ids[(writer + n) % len(task_ids)]
                    posted = own.post(f"/api/tasks/{task_id}/completions", json={"result": RESULT})
                if posted.status_code == 201:
                    acknowledged.append(posted.json()["id"])
                else:
                    failures.append(f"{posted.status_code} {posted.text[:200]}")

        threads = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert failures == []
        assert len(set(acknowledged)) == WRITERS * POSTS
        stored = http.get("/api/project").json()
        assert stored["task_count"] == stored["completion_count"] == len(task_ids)  # all labeled
        query = (
            "{ project { completionCount tasks(first: 10) { nodes { totalCompletions"
            " completions { id } } } } }"
        )
        project = http.post("/graphql", json={"query": query}).json()["data"]["project"]
        stored_ids = [c["id"] for t in project["tasks"]["nodes"] for c in t["completions"]]
        assert sorted(stored_ids) == sorted(first + acknowledged)  # none lost, none twice
        assert project["completionCount"] == len(stored_ids)
        assert sum(t["totalCompletions"] for t in project["tasks"]["nodes"]) == len(stored_ids)
        heard: set[int] = set()
        while not set(acknowledged) <= heard:
            data = ws.data_for("c", timeout=20)["completionChanged"]
            if data["kind"] == "CREATED":
                heard.update(data["completionIds"])
