"""Every REST route is a stored GraphQL operation run in-process (the facade's contract)."""

from __future__ import annotations

import dataclasses

import pytest
from graphql import parse, validate
from starlette.testclient import TestClient

from rest_compat._http import ENDPOINTS, OPERATION_HEADER, Endpoint
from schema import schema
from server.settings import Settings
from tests.conftest import fixture_json, fixture_text

SELECTED = {"all": False, "included": [4]}
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
    ("GET", "/api/import-example"): {
        "params": {"label_config": fixture_text("configs/sentiment.xml")}
    },
    ("POST", "/api/import-example"): {
        "data": {"label_config": fixture_text("configs/sentiment.xml")}
    },
    ("GET", "/api/import-example-file"): {"params": {"q": "csv"}},
    ("GET", "/samples/time-series.csv"): {"params": {"time": "t", "values": "a,b"}},
    ("POST", "/api/project/import"): {"json": fixture_json("tasks/sentiment_mixed.json")},
    ("POST", "/api/project/import/prepare"): {"json": [{"text": "staged"}]},
    ("GET", "/api/project/import/{import_id}"): {},
    ("PATCH", "/api/project/import/{import_id}"): {"json": {"selected_formats": [".csv"]}},
    ("POST", "/api/project/import/{import_id}/apply"): {},
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
    ("GET", "/api/project/export"): {"params": {"format": "JSON"}},
    ("GET", "/api/export"): {"params": {"format": "CSV"}},
    ("HEAD", "/api/project/export"): {"params": {"format": "JSON"}},
    ("HEAD", "/api/export"): {"params": {"format": "CSV"}},
    ("GET", "/api/project/export/formats"): {},
    ("GET", "/api/models"): {},
    ("DELETE", "/api/models"): {"json": {"name": "routes"}},
    ("POST", "/api/models/train"): {},
    ("GET", "/api/models/predictions"): {"params": {"mode": "specific_tasks", "task_ids": "1,4"}},
    ("POST", "/api/models/predictions"): {"params": {"mode": "data"}, "json": {"text": "t"}},
    ("GET", "/api/health"): {},
    ("GET", "/version"): {},
    ("GET", "/api/project/storage-settings"): {},
    ("POST", "/api/project/storage-settings"): {
        "params": {"storage_for": "target", "type": "completions-dir"},
        "json": {"type": "completions-dir"},
    },
    # Single-project mode: switching to the current project (its uuid is filled in below).
    ("GET", "/api/project-switch"): {
        "params": {"uuid": "{project_uuid}"},
        "follow_redirects": False,
    },
    ("POST", "/api/project-switch"): {"params": {"uuid": "{project_uuid}"}},
    ("GET", "/api/webhooks"): {},
    # A loopback receiver: allowed below, refused (400) with the default settings.
    ("POST", "/api/webhooks"): {"json": {"url": "http://127.0.0.1:9/hook", "is_active": False}},
    ("GET", "/api/webhooks/{webhook_id}"): {},
    ("PATCH", "/api/webhooks/{webhook_id}"): {"json": {"send_payload": False}},
    ("PUT", "/api/webhooks/{webhook_id}"): {"json": {"headers": {"X-A": "b"}}},
    ("DELETE", "/api/webhooks/{webhook_id}"): {},
    # Data manager (tab 1: Label Studio's implicit default tab).
    ("GET", "/api/project/columns"): {},
    ("GET", "/api/project/tabs"): {},
    ("DELETE", "/api/project/tabs"): {},
    ("GET", "/api/project/tabs/{tab_id}"): {},
    ("POST", "/api/project/tabs/{tab_id}"): {"json": {"title": "T"}},
    ("DELETE", "/api/project/tabs/{tab_id}"): {},
    ("GET", "/api/project/tabs/{tab_id}/selected-items"): {},
    ("POST", "/api/project/tabs/{tab_id}/selected-items"): {"json": SELECTED},
    ("PATCH", "/api/project/tabs/{tab_id}/selected-items"): {"json": SELECTED},
    ("DELETE", "/api/project/tabs/{tab_id}/selected-items"): {"json": SELECTED},
    ("GET", "/api/project/tabs/{tab_id}/tasks"): {},
    ("GET", "/api/project/tabs/{tab_id}/annotations"): {},
    ("GET", "/api/project/actions"): {},
    ("POST", "/api/project/actions"): {
        "params": {"id": "delete_tasks_completions"},
        "json": {"selectedItems": SELECTED},
    },
    ("POST", "/api/project/tabs/{tab_id}/actions"): {
        "params": {"id": "delete_tasks_completions"},
        "json": {"selectedItems": SELECTED},
    },
}


def test_every_route_has_a_request_here() -> None:
    assert {(e.method, e.path) for e in ENDPOINTS} == set(REQUESTS)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e.method} {e.path}")
def test_operation_is_valid_against_the_schema(endpoint) -> None:  # type: ignore[no-untyped-def]
    document = parse(endpoint.operation.document)
    assert validate(schema._schema, document) == []


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The /api/models routes call the example ML backend on 127.0.0.1 (started on demand);
    the webhook routes register an inactive webhook to 127.0.0.1."""
    return dataclasses.replace(settings, ml_allow_private=True, webhook_allow_private=True)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e.method} {e.path}")
def test_route_answers_through_its_operation(
    sentiment_project: TestClient, endpoint: Endpoint, request: pytest.FixtureRequest
) -> None:
    client = sentiment_project
    if endpoint.path.startswith("/api/models"):
        backend = request.getfixturevalue("ml_backend")
        assert client.patch("/api/project", json={"ml_backend": f"routes={backend.url}"}).is_success
    created = client.post("/api/tasks/4/completions", json={"result": []}).json()["id"]
    path = endpoint.path.replace("{task_id}", "4").replace("{completion_id}", str(created))
    if "{webhook_id}" in path:
        hook = client.post("/api/webhooks", json=REQUESTS[("POST", "/api/webhooks")]["json"])
        path = path.replace("{webhook_id}", str(hook.json()["id"]))
    path = path.replace("{tab_id}", "1")
    if "{import_id}" in path:
        staged = client.post("/api/project/import/prepare", json=[{"text": "staged"}]).json()
        path = path.replace("{import_id}", str(staged["id"]))
    arguments = dict(REQUESTS[(endpoint.method, endpoint.path)])
    params = arguments.get("params", {})
    if isinstance(params, dict) and params.get("uuid") == "{project_uuid}":
        query = {"query": "{ project { uuid } }"}
        uuid = client.post("/graphql", json=query).json()["data"]["project"]["uuid"]
        arguments["params"] = {"uuid": uuid}
    response = client.request(endpoint.method, path, **arguments)  # type: ignore[arg-type]
    assert response.status_code < 400, response.text
    assert response.headers[OPERATION_HEADER] == endpoint.operation.name


def test_requests_without_a_query_string_share_one_parsed_empty_query(
    client: TestClient,
) -> None:
    """The dispatcher gives such requests Starlette's cached ``query_params`` up front (no
    parse per request); a query string is parsed as before."""
    from starlette.requests import Request

    import rest_compat

    request = Request({"type": "http", "query_string": b"", "headers": []})
    request._query_params = rest_compat._NO_QUERY
    assert request.query_params is rest_compat._NO_QUERY  # where Starlette caches them
    assert list(rest_compat._NO_QUERY.multi_items()) == []
    task_id = client.post("/api/project/import", json=[{"text": "a"}]).json()["new_task_ids"][0]
    created = client.post(f"/api/tasks/{task_id}/completions?was_cancelled=1", json={"result": []})
    assert created.status_code == 201
    task = client.get(f"/api/tasks/{task_id}").json()
    assert [c["was_cancelled"] for c in task["completions"]] == [True]
    assert client.get(f"/api/tasks/{task_id}?pretty=1").text.startswith("{\n  ")
