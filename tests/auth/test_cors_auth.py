"""CORS with authentication: listed origins (--cors-origins) may call /api and /graphql with
credentials (tokens, cookies); other origins get Label Studio's ``*`` for reads, without
credentials; preflights of /graphql are answered before authentication."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import httpx2
import pytest
from starlette.testclient import TestClient

from server.app import create_app
from server.settings import Settings
from tests.auth.support import add_user, as_token

FRIEND = "https://labels.example"
OTHER = "https://other.example"


@pytest.fixture
def friendly(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(dataclasses.replace(settings, cors_origins=FRIEND))) as client:
        yield client


def preflight(client: TestClient, origin: str, method: str) -> httpx2.Response:
    return client.options(
        "/graphql",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


def test_graphql_preflight_of_a_listed_origin_allows_credentials(friendly: TestClient) -> None:
    add_user(friendly, "alice")
    answer = preflight(friendly, FRIEND, "POST")
    assert answer.status_code == 200  # preflights carry no credentials: never a 401
    assert answer.headers["access-control-allow-origin"] == FRIEND
    assert answer.headers["access-control-allow-credentials"] == "true"
    assert "POST" in answer.headers["access-control-allow-methods"]
    assert answer.headers["access-control-allow-headers"] == "authorization, content-type"


def test_other_origins_get_no_credentialed_access(friendly: TestClient) -> None:
    add_user(friendly, "alice")
    refused = preflight(friendly, OTHER, "POST")
    assert refused.status_code == 403
    assert "access-control-allow-origin" not in refused.headers
    reads = preflight(friendly, OTHER, "GET")
    assert reads.status_code == 200
    assert reads.headers["access-control-allow-origin"] == "*"
    assert "authorization" not in reads.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in reads.headers


def test_a_listed_origin_calls_with_a_token_and_reads_refusals(friendly: TestClient) -> None:
    token = add_user(friendly, "alice")
    headers = {"Origin": FRIEND, "Sec-Fetch-Site": "cross-site", **as_token(token)}
    answer = friendly.post("/graphql", json={"query": "{ me { username } }"}, headers=headers)
    assert answer.json() == {"data": {"me": {"username": "alice"}}}
    assert answer.headers["access-control-allow-origin"] == FRIEND
    assert answer.headers["access-control-allow-credentials"] == "true"
    anonymous = friendly.get("/api/project", headers={"Origin": FRIEND})
    assert anonymous.status_code == 401
    assert anonymous.headers["access-control-allow-origin"] == FRIEND  # the app can read it


def test_preflights_pass_label_studios_basic_auth(settings: Settings) -> None:
    guarded = dataclasses.replace(settings, cors_origins=FRIEND, password="pw")
    with TestClient(create_app(guarded)) as client:
        assert preflight(client, FRIEND, "POST").status_code == 200
        assert client.post("/graphql", json={"query": "{ health }"}).status_code == 401


def test_default_reads_keep_label_studios_star(client: TestClient) -> None:
    answer = client.get("/api/tasks", headers={"Origin": OTHER})
    assert answer.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in answer.headers
