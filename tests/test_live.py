"""End to end against a real uvicorn process on 127.0.0.1 (marker ``live``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import fixture_json, fixture_text
from tests.live_server import running_server

pytestmark = pytest.mark.live


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    with running_server(tmp_path / "live") as base:
        yield base


def test_label_a_task_over_http(server: str) -> None:
    with httpx.Client(base_url=server, timeout=10) as http:
        config = fixture_text("configs/sentiment.xml")
        assert http.post("/api/project/config", data={"label_config": config}).status_code == 201
        report = http.post("/api/project/import", json=fixture_json("tasks/sentiment_mixed.json"))
        assert report.status_code == 201 and report.json()["task_count"] == 5
        task = http.get("/api/project/next").json()
        assert task["id"] == 1
        result = [
            {
                "from_name": "sentiment",
                "to_name": "text",
                "type": "choices",
                "value": {"choices": ["Positive"]},
            }
        ]
        created = http.post(f"/api/tasks/{task['id']}/completions", json={"result": result})
        assert created.status_code == 201
        assert http.get("/api/project/next").json()["id"] == 2
        query = (
            "{ project { labeledTaskCount tasks(first: 1) { nodes { completions { result } } } } }"
        )
        data = http.post("/graphql", json={"query": query}).json()["data"]["project"]
        assert data["labeledTaskCount"] == 2
        assert data["tasks"]["nodes"][0]["completions"][0]["result"] == result


def test_graphiql_is_served_to_browsers(server: str) -> None:
    response = httpx.get(server + "/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()
