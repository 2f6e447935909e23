"""Every REST route is a stored GraphQL operation run in-process (the facade's contract)."""

from __future__ import annotations

import pytest
from graphql import parse, validate
from starlette.testclient import TestClient

from rest_compat._http import ENDPOINTS, OPERATION_HEADER
from schema import schema
from tests.conftest import fixture_json, fixture_text

# One valid request per route: (method, path, keyword arguments for the client).
REQUESTS: dict[tuple[str, str], dict[str, object]] = {
    ("GET", "/api/project"): {},
    ("POST", "/api/project"): {},
    ("PATCH", "/api/project"): {"json": {"title": "T"}},
    ("POST", "/api/project/config"): {
        "data": {"label_config": fixture_text("configs/sentiment.xml")}
    },
    ("POST", "/api/validate-config"): {
        "data": {"label_config": fixture_text("configs/sentiment.xml")}
    },
    ("POST", "/api/project/import"): {"json": fixture_json("tasks/sentiment_mixed.json")},
    ("GET", "/api/project/next"): {},
    ("GET", "/api/tasks"): {},
    ("DELETE", "/api/tasks"): {},
    ("GET", "/api/tasks/{task_id}"): {},
    ("PATCH", "/api/tasks/{task_id}"): {"json": {"data": {"text": "x"}}},
    ("POST", "/api/tasks/{task_id}"): {"json": {"data": {"text": "y"}}},
    ("DELETE", "/api/tasks/{task_id}"): {},
    ("POST", "/api/tasks/{task_id}/completions"): {"json": {"result": []}},
    ("DELETE", "/api/tasks/{task_id}/completions"): {},
    ("PATCH", "/api/tasks/{task_id}/completions/{completion_id}"): {"json": {"lead_time": 1}},
    ("POST", "/api/tasks/{task_id}/completions/{completion_id}"): {"json": {"lead_time": 2}},
    ("DELETE", "/api/tasks/{task_id}/completions/{completion_id}"): {},
    ("GET", "/api/completions"): {},
    ("DELETE", "/api/completions"): {},
    ("GET", "/api/health"): {},
    ("GET", "/version"): {},
}


def test_every_route_has_a_request_here() -> None:
    assert {(e.method, e.path) for e in ENDPOINTS} == set(REQUESTS)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e.method} {e.path}")
def test_operation_is_valid_against_the_schema(endpoint) -> None:  # type: ignore[no-untyped-def]
    document = parse(endpoint.operation.document)
    assert validate(schema._schema, document) == []


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e.method} {e.path}")
def test_route_answers_through_its_operation(sentiment_project: TestClient, endpoint) -> None:  # type: ignore[no-untyped-def]
    client = sentiment_project
    created = client.post("/api/tasks/4/completions", json={"result": []}).json()["id"]
    path = endpoint.path.replace("{task_id}", "4").replace("{completion_id}", str(created))
    response = client.request(endpoint.method, path, **REQUESTS[(endpoint.method, endpoint.path)])
    assert response.status_code < 400, response.text
    assert response.headers[OPERATION_HEADER] == endpoint.operation.name
