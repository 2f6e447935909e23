"""Task data written inline in a GraphQL document (literals, not variables) is bounded by
LABELGRAPH_MAX_JSON_DEPTH like every other JSON input: graphql-core itself accepts ~250
levels, which never passed the byte-level check of request bodies."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.conftest import fixture_text

TOO_DEEP = "JSON nesting is deeper than the limit of 100 levels (LABELGRAPH_MAX_JSON_DEPTH)"
MUTATIONS = {
    "importTasks": "importTasks(tasks: {tasks}) {{ taskCount }}",
    "prepareImport": "prepareImport(tasks: {tasks}) {{ id }}",
}


def inline_tasks(levels: int) -> str:
    """A list of one task (2 levels: the list, the task) holding a list nested ``levels`` deep:
    ``levels + 2`` levels in all."""
    return '[{text: "a", nested: ' + "[" * levels + "]" * levels + "}]"


def run(client: TestClient, mutation: str, levels: int) -> dict[str, object]:
    field = MUTATIONS[mutation].format(tasks=inline_tasks(levels))
    response = client.post("/graphql", json={"query": f"mutation {{ {field} }}"})
    assert response.status_code == 200
    return dict(response.json())


@pytest.fixture
def text_client(client: TestClient) -> TestClient:
    config = fixture_text("configs/text_classification.xml")
    assert client.post("/api/project/config", data={"label_config": config}).status_code == 201
    return client


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_inline_tasks_nested_too_deeply_are_invalid(text_client: TestClient, mutation: str) -> None:
    body = run(text_client, mutation, 150)
    assert body["data"] is None
    assert body["errors"] == [
        {
            "message": TOO_DEEP,
            "locations": [{"line": 1, "column": 12}],
            "path": [mutation],
            "extensions": {"code": "INVALID", "errors": [TOO_DEEP]},
        }
    ]
    assert text_client.get("/api/tasks").json()["total"] == 0
    assert list(text_client.app.state.settings.import_tmp_dir.glob("*")) == []  # type: ignore[attr-defined]


def test_inline_tasks_at_the_limit_import(text_client: TestClient) -> None:
    assert run(text_client, "importTasks", 98) == {"data": {"importTasks": {"taskCount": 1}}}
    assert text_client.get("/api/tasks").json()["total"] == 1
