"""The same scenario through GraphQL and through REST leaves the same state."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from tests.choices import choice_result
from tests.conftest import GraphQL, fixture_json, fixture_text

RESULT = choice_result("Neutral")


def scrub(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop what legitimately differs between two runs: ids and timestamps."""
    for task in tasks:
        task.pop("id")
        task.pop("completed_at")
        for completion in task.get("completions", []):
            completion.pop("id")
            completion.pop("created_at")
    return tasks


def via_rest(client: TestClient) -> list[dict[str, Any]]:
    client.post("/api/project/config", data={"label_config": fixture_text("configs/sentiment.xml")})
    client.post("/api/project/import", json=fixture_json("tasks/sentiment_mixed.json"))
    client.post("/api/tasks/1/completions", json={"result": RESULT, "lead_time": 2})
    client.post("/api/tasks/2/completions?was_cancelled=1", json={"result": []})
    client.patch("/api/tasks/4", json={"data": {"text": "patched"}})
    client.delete("/api/tasks/5")
    tasks: list[dict[str, Any]] = client.get("/api/tasks?page_size=100").json()["tasks"]
    return tasks


def via_graphql(gql: GraphQL) -> list[dict[str, Any]]:
    gql(
        "mutation($c: String!) { setLabelConfig(labelConfig: $c) { id } }",
        {"c": fixture_text("configs/sentiment.xml")},
    )
    ids = gql(
        "mutation($t: JSON!) { importTasks(tasks: $t) { newTaskIds } }",
        {"t": fixture_json("tasks/sentiment_mixed.json")},
    )["importTasks"]["newTaskIds"]
    gql(
        "mutation($id: Int!, $c: JSON!) { createCompletion(taskId: $id, completion: $c) { id } }",
        {"id": ids[0], "c": {"result": RESULT, "lead_time": 2}},
    )
    gql(
        "mutation($id: Int!) { createCompletion(taskId: $id, completion: {result: []}, "
        "wasCancelled: true) { id } }",
        {"id": ids[1]},
    )
    gql(
        'mutation($id: Int!) { updateTask(id: $id, data: {text: "patched"}) { id } }',
        {"id": ids[3]},
    )
    gql("mutation($id: Int!) { deleteTask(id: $id) }", {"id": ids[4]})
    page = gql("{ project { tasks(first: 100) { nodes { lsJson } } } }")
    return [node["lsJson"] for node in page["project"]["tasks"]["nodes"]]


def test_rest_and_graphql_reach_the_same_state(
    client: TestClient, gql: GraphQL, tmp_path: Any
) -> None:
    rest_tasks = scrub(via_rest(client))
    client.delete("/api/tasks")
    graphql_tasks = scrub(via_graphql(gql))
    assert len(rest_tasks) == 4
    assert rest_tasks == graphql_tasks
