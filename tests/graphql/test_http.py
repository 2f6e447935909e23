"""/graphql over HTTP (server/graphql_http.py): media types and status codes of the
graphql-over-http spec, JSON error bodies with codes, the response size cap."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from graphql.utilities import get_introspection_query
from starlette.testclient import TestClient

from server.graphql_http import prefers_graphql_response_json

GRAPHQL_RESPONSE = "application/graphql-response+json"
NEW = {"accept": f"{GRAPHQL_RESPONSE}, application/json;q=0.9"}
LEGACY = {"accept": "application/json"}
INTROSPECTION = get_introspection_query(input_value_deprecation=True, schema_description=True)


def post(client: TestClient, headers: dict[str, str], **body: Any) -> Any:
    return client.post("/graphql", json=body, headers=headers)


def only_error(body: dict[str, Any]) -> dict[str, Any]:
    assert "data" not in body, body  # failed before execution: no data entry
    [error] = body["errors"]
    return {"message": error["message"], **error["extensions"]}


def test_parse_error_is_400_with_graphql_response_json(client: TestClient) -> None:
    response = post(client, NEW, query="{ health ")
    assert response.status_code == 400
    assert response.headers["content-type"] == f"{GRAPHQL_RESPONSE}; charset=utf-8"
    error = only_error(response.json())
    assert error["code"] == "GRAPHQL_PARSE_FAILED"
    assert error["message"] == "Syntax Error: Expected Name, found <EOF>."


def test_parse_error_stays_200_with_application_json(client: TestClient) -> None:
    response = post(client, LEGACY, query="{ health ")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert only_error(response.json())["code"] == "GRAPHQL_PARSE_FAILED"
    # No Accept preference at all: legacy too.
    response = client.post("/graphql", json={"query": "{ health "}, headers={"accept": "*/*"})
    assert (response.status_code, response.headers["content-type"]) == (200, "application/json")


@pytest.mark.parametrize(
    ("query", "variables", "code"),
    [
        ("{ nope }", None, "GRAPHQL_VALIDATION_FAILED"),
        ("query($id: Int!) { task(id: $id) { id } }", {"id": "x"}, "GRAPHQL_VALIDATION_FAILED"),
        ("{ " + " ".join(f"a{i}: health" for i in range(51)) + " }", None, "QUERY_TOO_COMPLEX"),
        ("{ project { tasks(first: 5000) { totalCount } } }", None, "QUERY_TOO_COMPLEX"),
        ("{ " + "a: health " * 3000 + "}", None, "DOCUMENT_TOO_LARGE"),
    ],
)
def test_request_errors_are_400(
    client: TestClient, query: str, variables: dict[str, Any] | None, code: str
) -> None:
    response = post(client, NEW, query=query, variables=variables)
    assert response.status_code == 400
    assert only_error(response.json())["code"] == code
    response = post(client, LEGACY, query=query, variables=variables)
    assert response.status_code == 200
    assert only_error(response.json())["code"] == code


def test_field_errors_keep_200_and_data(client: TestClient) -> None:
    response = post(client, NEW, query="{ task(id: 999) { id } }")
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert body["errors"][0]["path"] == ["task"]
    response = post(client, NEW, query="{ health }")
    assert (response.status_code, response.json()) == (200, {"data": {"health": "up"}})
    assert response.headers["content-type"] == f"{GRAPHQL_RESPONSE}; charset=utf-8"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{bad json", "Unable to parse request body as JSON"),
        (b'{"query": ""}', "No GraphQL query found in the request"),
        (b"{}", "No GraphQL query found in the request"),
        (b'"{ health }"', "The request body must be a JSON object"),
        (b"null", "The request body must be a JSON object"),
        (b'{"query": 5}', "The GraphQL operation's `query` must be a string or null, if provided."),
    ],
)
def test_bad_requests_answer_json_with_a_code(
    client: TestClient, content: bytes, message: str
) -> None:
    for headers, media in (
        (LEGACY, "application/json"),
        (NEW, f"{GRAPHQL_RESPONSE}; charset=utf-8"),
    ):
        headers = {**headers, "content-type": "application/json"}
        response = client.post("/graphql", content=content, headers=headers)
        assert response.status_code == 400
        assert response.headers["content-type"] == media
        assert response.json() == {
            "errors": [{"message": message, "extensions": {"code": "BAD_REQUEST"}}]
        }


def test_get_without_query_is_a_json_error(client: TestClient) -> None:
    response = client.get("/graphql", headers=LEGACY)
    assert response.status_code == 400
    assert only_error(response.json())["code"] == "BAD_REQUEST"


@pytest.mark.parametrize(
    "accept", ["application/json, multipart/mixed", f"{GRAPHQL_RESPONSE}, application/json"]
)
def test_graphiql_page_and_introspection(client: TestClient, accept: str) -> None:
    page = client.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()
    response = client.post(
        "/graphql",
        json={"query": INTROSPECTION, "operationName": "IntrospectionQuery"},
        headers={"accept": accept},
    )
    assert response.status_code == 200
    types = {t["name"] for t in response.json()["data"]["__schema"]["types"]}
    assert {"Query", "Mutation", "Project", "Task"} <= types


def test_large_answers_are_refused(app_with_settings: Callable[..., TestClient]) -> None:
    client = app_with_settings(graphql_max_response_size=4096)
    tasks = [{"text": "x" * 200} for _ in range(30)]
    assert client.post("/api/project/import", json=tasks).status_code == 201
    query = "{ project { tasks(first: 30) { nodes { id data } } } }"
    for headers, status in ((LEGACY, 200), (NEW, 400)):
        response = post(client, headers, query=query)
        assert response.status_code == status
        error = only_error(response.json())
        assert error["code"] == "RESPONSE_TOO_LARGE"
        assert (error["limit"], error["max"]) == ("responseSize", 4096)
        assert error["found"] > 30 * 200
    small = post(client, NEW, query="{ project { tasks(first: 3) { nodes { id } } } }")
    assert small.status_code == 200
    assert small.json()["data"]["project"]["tasks"]["nodes"] == [{"id": 1}, {"id": 2}, {"id": 3}]
    # The REST facade answers in full: the cap is /graphql's.
    assert len(client.get("/api/tasks", params={"page_size": 30}).json()["tasks"]) == 30


def test_uploads_run_within_strict_limits(app_with_settings: Callable[..., TestClient]) -> None:
    from tests.graphql.test_imports import multipart

    client = app_with_settings(graphql_max_aliases=1, graphql_max_depth=3, graphql_max_tokens=200)
    response = client.post(
        "/graphql", headers={"apollo-require-preflight": "true", **NEW}, **multipart(["lines.txt"])
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["importTasks"]["taskCount"] == 4


@pytest.mark.parametrize(
    ("accept", "wanted"),
    [
        ("", False),
        ("*/*", False),
        ("application/json", False),
        (GRAPHQL_RESPONSE, True),
        (f"application/json, {GRAPHQL_RESPONSE}", True),
        (f"application/json, {GRAPHQL_RESPONSE};q=0.5", False),
        (f"{GRAPHQL_RESPONSE};q=0", False),
        (f"{GRAPHQL_RESPONSE};q=bad, application/json", False),
    ],
)
def test_accept_negotiation(accept: str, wanted: bool) -> None:
    assert prefers_graphql_response_json(accept) is wanted
