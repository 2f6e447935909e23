"""Values no store keeps faithfully are refused with the field they are in, nothing stored:
lone UTF-16 surrogates (an insert ended in UnicodeEncodeError, a 500) and non-finite numbers
(``lead_time: 1e999`` was stored as null). Ids and pages beyond GraphQL's Int are an unknown
id (404) and an empty page, not a 400 quoting GraphQL's coercion message."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from tests.conftest import GraphQL

SURROGATE = "a lone UTF-16 surrogate (\\ud800-\\udfff) is not valid Unicode text"
NOT_FINITE = "Infinity and NaN are not numbers that can be stored; send a finite number"
JSON_HEADERS = {"content-type": "application/json"}


def send(client: TestClient, method: str, path: str, body: str) -> tuple[int, object]:
    response = client.request(method, path, content=body, headers=JSON_HEADERS)
    return response.status_code, response.json()


def state(client: TestClient) -> object:
    tasks = client.get("/api/tasks", params={"page_size": 100}).json()
    return tasks, client.get("/api/project").json()


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("PATCH", "/api/tasks/1", '{"data": {"text": "a\\ud800b"}}', "data.text"),
        ("POST", "/api/tasks/1/completions", '{"result": [{"v": "\\udc00"}]}', "result[0].v"),
        ("PATCH", "/api/project", '{"title": "a\\ud800b"}', "title"),
        ("PATCH", "/api/project", '{"title": "ok", "\\ud800": 1}', "value"),
        ("POST", "/api/tasks/1/completions", '{"result": [], "lead_time": 1e999}', "lead_time"),
        ("POST", "/api/tasks/1/completions", '{"result": [], "lead_time": NaN}', "lead_time"),
        (
            "PATCH",
            "/api/tasks/1",
            '{"predictions": [{"score": -Infinity}]}',
            "predictions[0].score",
        ),
    ],
)
def test_rest_bodies_are_refused_naming_the_field(
    sentiment_project: TestClient, method: str, path: str, body: str, field: str
) -> None:
    client = sentiment_project
    before = state(client)
    status, answer = send(client, method, path, body)
    problem = NOT_FINITE if "Infinity" in body or "NaN" in body or "1e999" in body else SURROGATE
    if field == "value":
        problem = "a key holds " + SURROGATE
    assert (status, answer) == (400, {"status": 400, "detail": f"{field}: {problem}"})
    assert state(client) == before


def test_import_body_is_refused_with_the_import_error_array(client: TestClient) -> None:
    body = '[{"text": "ok"}, {"text": "a\\ud800b"}]'
    assert send(client, "POST", "/api/project/import", body) == (400, [f"[1].text: {SURROGATE}"])
    body = '[{"data": {"text": "x"}, "completions": [{"result": [], "lead_time": 1e999}]}]'
    status, answer = send(client, "POST", "/api/project/import/prepare", body)
    assert (status, answer) == (400, [f"[0].completions[0].lead_time: {NOT_FINITE}"])
    assert client.get("/api/tasks").json()["total"] == 0


def test_paired_surrogates_and_large_finite_numbers_are_stored(client: TestClient) -> None:
    body = '[{"text": "\\ud83d\\ude00", "n": 1e308, "big": 123456789012345678901234567890}]'
    assert send(client, "POST", "/api/project/import", body)[0] == 201
    [task] = client.get("/api/tasks").json()["tasks"]
    assert task["data"] == {"text": "😀", "n": 1e308, "big": 123456789012345678901234567890}


def graphql(client: TestClient, body: dict[str, object]) -> tuple[int, object]:
    raw = json.dumps(body)  # escapes the lone surrogate as \ud800, allows Infinity
    return send(client, "POST", "/graphql", raw)


def test_graphql_variables_are_refused_before_execution(sentiment_project: TestClient) -> None:
    client = sentiment_project
    before = state(client)
    title = "mutation($t: String) { updateProject(input: {title: $t}) { id } }"
    assert graphql(client, {"query": title, "variables": {"t": "a\ud800b"}}) == (
        400,
        {
            "errors": [
                {
                    "message": f"variables.t: {SURROGATE}",
                    "extensions": {"field": "variables.t", "code": "INVALID"},
                }
            ]
        },
    )
    create = "mutation($c: JSON!) { createCompletion(taskId: 1, completion: $c) { id } }"
    variables = {"c": {"result": [], "lead_time": float("inf")}}
    status, body = graphql(client, {"query": create, "variables": variables})
    assert status == 400
    assert body["errors"][0]["extensions"] == {  # type: ignore[index]
        "field": "variables.c.lead_time",
        "code": "INVALID",
    }
    assert state(client) == before


def test_graphql_json_literals_and_in_process_variables_are_checked(
    sentiment_project: TestClient, gql: GraphQL
) -> None:
    before = state(sentiment_project)
    literal = "mutation { createCompletion(taskId: 1, completion: {result: [], t: 1e999}) { id } }"
    assert gql.error(literal) == {"message": f"t: {NOT_FINITE}", "field": "t", "code": "INVALID"}
    update = "mutation($d: JSON) { updateTask(id: 1, data: $d) { id } }"
    error = gql.error(update, {"d": {"text": "\udfff"}})
    assert error["code"] == "INVALID" and error["field"] == "text"
    assert error["message"].endswith(f"text: {SURROGATE}")
    assert state(sentiment_project) == before


@pytest.mark.parametrize("task_id", ["2147483648", "9223372036854775808", "1" + "0" * 30])
def test_ids_beyond_the_int_range_are_unknown(sentiment_project: TestClient, task_id: str) -> None:
    client = sentiment_project
    response = client.get(f"/api/tasks/{task_id}")
    assert (response.status_code, response.json()) == (
        404,
        {"status": 404, "detail": f"Task {task_id} not found"},
    )
    response = client.delete(f"/api/tasks/1/completions/{task_id}")
    assert response.json() == {"status": 404, "detail": f"Completion {task_id} not found"}
    response = client.get(
        "/api/models/predictions", params={"mode": "specific_tasks", "task_ids": task_id}
    )
    assert (response.status_code, response.json()["detail"]) == (404, f"Task {task_id} not found")


def test_a_page_beyond_the_int_range_is_an_empty_page(sentiment_project: TestClient) -> None:
    totals = sentiment_project.get("/api/tasks").json()
    for page in (2**31, 2**70):
        answer = sentiment_project.get("/api/tasks", params={"page": page}).json()
        assert answer == {**totals, "tasks": []}


def test_ids_and_timestamps_beyond_64_bits_inside_json_are_not_an_overflow(
    sentiment_project: TestClient,
) -> None:
    client = sentiment_project
    created = client.post("/api/tasks/1/completions", json={"result": [], "id": 2**70})
    assert created.status_code == 201  # an unknown completion id: a new completion
    completion_id = created.json()["id"]
    path = f"/api/tasks/1/completions/{completion_id}"
    assert client.patch(path, json={"created_at": 2**70}).status_code == 201
    completions = client.get("/api/tasks/1").json()["completions"]
    [stored] = [c for c in completions if c["id"] == completion_id]
    assert 0 < stored["created_at"] < 2**31
    body = [{"data": {"text": "x"}, "completions": [{"result": [], "created_at": 2**64}]}]
    assert client.post("/api/project/import", json=body).status_code == 201
