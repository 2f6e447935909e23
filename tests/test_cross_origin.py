"""Cross-origin writes are refused unless the origin is listed (server/cors.py).

The in-process client reaches the server as ``http://testserver``: a browser page of this
server sends ``Origin: http://testserver``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from server.app import create_app
from server.settings import Settings
from tests.conftest import fixture_json, fixture_text

EVIL = "https://evil.example"
FRIEND = "https://labels.example"
SELF = "http://testserver"


def task_ids(client: TestClient) -> list[int]:
    return [task["id"] for task in client.get("/api/tasks").json()["tasks"]]


def refused(response: object, method: str) -> None:
    assert getattr(response, "status_code", None) == 403
    body = response.json()  # type: ignore[attr-defined]
    assert body["status"] == 403
    assert body["detail"].startswith(f"Cross-origin {method} requests from")
    assert "--cors-origins" in body["detail"]
    assert "access-control-allow-origin" not in response.headers  # type: ignore[attr-defined]


@pytest.fixture
def friendly(settings: Settings) -> Iterator[TestClient]:
    """A server that lets FRIEND (written with its default port) write."""
    listed = dataclasses.replace(settings, cors_origins=f" {FRIEND}:443/ , http://other:9000")
    with TestClient(create_app(listed)) as client:
        client.post(
            "/api/project/config", data={"label_config": fixture_text("configs/sentiment.xml")}
        )
        client.post("/api/project/import", json=fixture_json("tasks/sentiment_mixed.json"))
        yield client


def test_cross_origin_delete_is_refused_with_and_without_preflight(
    sentiment_project: TestClient,
) -> None:
    client = sentiment_project
    before = task_ids(client)
    preflight = client.options(
        "/api/tasks/1",
        headers={"Origin": EVIL, "Access-Control-Request-Method": "DELETE"},
    )
    refused(preflight, "DELETE")
    assert preflight.headers["vary"] == "Origin"
    refused(client.delete("/api/tasks/1", headers={"Origin": EVIL}), "DELETE")
    refused(client.delete("/api/tasks", headers={"Origin": EVIL}), "DELETE")
    # A same-site page (another port of the same machine) is another origin too.
    refused(client.delete("/api/tasks", headers={"Origin": "http://testserver:3000"}), "DELETE")
    assert task_ids(client) == before == [1, 2, 3, 4, 5]


def test_simple_cross_origin_posts_are_refused(sentiment_project: TestClient) -> None:
    """Form-encoded, multipart and text/plain POSTs need no preflight: the Origin header (or
    Sec-Fetch-Site) alone tells them apart."""
    client = sentiment_project
    form = client.post(
        "/api/project/import", data={"url": "https://example.com/t.json"}, headers={"Origin": EVIL}
    )
    refused(form, "POST")
    upload = client.post(
        "/api/project/import",
        files={"file": ("t.json", b'[{"text": "forged"}]', "application/json")},
        headers={"Origin": EVIL},
    )
    refused(upload, "POST")
    as_text = client.post(
        "/api/tasks/1/completions",
        content=b'{"result": []}',
        headers={"Origin": "null", "Content-Type": "text/plain"},
    )
    refused(as_text, "POST")
    no_origin = client.post(
        "/api/project/import",
        json=[{"text": "forged"}],
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    refused(no_origin, "POST")
    config = client.post(
        "/api/project/config",
        data={"label_config": "<View><Text name='t' value='$x'/></View>"},
        headers={"Origin": EVIL},
    )
    refused(config, "POST")
    assert task_ids(client) == [1, 2, 3, 4, 5]
    assert client.get("/api/tasks/1").json()["total_completions"] == 0
    assert "sentiment" in client.get("/api/project").json()["label_config_line"]


def test_cross_origin_graphql_mutation_is_refused(sentiment_project: TestClient) -> None:
    client = sentiment_project
    mutation = {"query": "mutation { deleteAllTasks }"}
    response = client.post("/graphql", json=mutation, headers={"Origin": EVIL})
    assert response.status_code == 403
    body = response.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"] == {"code": "CROSS_ORIGIN_FORBIDDEN"}
    assert "--cors-origins" in body["errors"][0]["message"]
    form = client.post(
        "/graphql",
        data={"operations": '{"query": "mutation { deleteAllTasks }"}', "map": "{}"},
        headers={"Origin": EVIL, "apollo-require-preflight": "true"},
    )
    assert form.json()["errors"][0]["extensions"]["code"] == "CROSS_ORIGIN_FORBIDDEN"
    assert task_ids(client) == [1, 2, 3, 4, 5]


def test_reads_from_any_origin_keep_label_studios_star(sentiment_project: TestClient) -> None:
    client = sentiment_project
    response = client.get("/api/tasks", headers={"Origin": EVIL, "Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.json()["total"] == 5
    assert client.head("/api/health", headers={"Origin": EVIL}).status_code == 200
    preflight = client.options(
        "/api/tasks",
        headers={
            "Origin": EVIL,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert preflight.headers["access-control-allow-methods"] == "GET, HEAD"
    assert "access-control-allow-credentials" not in preflight.headers


def test_same_origin_browser_requests_and_scripts_work(sentiment_project: TestClient) -> None:
    client = sentiment_project
    page = {"Origin": SELF, "Sec-Fetch-Site": "same-origin"}
    assert client.delete("/api/tasks/1", headers=page).status_code == 204
    typed = {"Origin": SELF, "Sec-Fetch-Site": "none"}
    assert client.delete("/api/tasks/2", headers=typed).status_code == 204
    on_default_port = {"Origin": SELF, "Host": "testserver:80"}
    assert client.delete("/api/tasks/3", headers=on_default_port).status_code == 204
    assert client.delete("/api/tasks/4").status_code == 204  # no Origin: curl, scripts
    response = client.post(
        "/graphql", json={"query": "mutation { deleteTask(id: 5) }"}, headers=page
    )
    assert response.json() == {"data": {"deleteTask": 5}}
    assert task_ids(client) == []


def test_listed_origin_may_write_with_credentials(friendly: TestClient) -> None:
    client = friendly
    preflight = client.options(
        "/api/tasks/1",
        headers={
            "Origin": FRIEND,
            "Access-Control-Request-Method": "DELETE",
            "Access-Control-Request-Headers": "content-type, apollo-require-preflight",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == FRIEND
    assert preflight.headers["access-control-allow-credentials"] == "true"
    assert "DELETE" in preflight.headers["access-control-allow-methods"].split(", ")
    assert preflight.headers["access-control-allow-headers"] == (
        "content-type, apollo-require-preflight"
    )
    assert preflight.headers["vary"] == "Origin"
    deleted = client.delete(
        "/api/tasks/1", headers={"Origin": FRIEND, "Sec-Fetch-Site": "cross-site"}
    )
    assert deleted.status_code == 204
    assert deleted.headers["access-control-allow-origin"] == FRIEND
    assert deleted.headers["access-control-allow-credentials"] == "true"
    assert deleted.headers["vary"] == "Origin"
    read = client.get("/api/tasks", headers={"Origin": FRIEND})
    assert read.headers["access-control-allow-origin"] == FRIEND
    assert task_ids(client) == [2, 3, 4, 5]
    graphql = client.post(
        "/graphql", json={"query": "mutation { deleteTask(id: 2) }"}, headers={"Origin": FRIEND}
    )
    assert graphql.json() == {"data": {"deleteTask": 2}}
    assert graphql.headers["access-control-allow-origin"] == FRIEND
    # Other origins are still refused, and answers that depend on Origin say so to caches.
    refused(client.delete("/api/tasks/3", headers={"Origin": EVIL}), "DELETE")
    other = client.get("/api/tasks", headers={"Origin": EVIL})
    assert other.headers["access-control-allow-origin"] == "*"
    assert other.headers["vary"] == "Origin"
    assert task_ids(client) == [3, 4, 5]


@pytest.mark.parametrize(
    "value", ["*", "evil.example", "ftp://x.example", "https://x.example/path", "https://a:b@x"]
)
def test_bad_cors_origins_are_refused_at_start(value: str) -> None:
    with pytest.raises(ValueError, match="cors_origins"):
        Settings.from_env({"LABELGRAPH_CORS_ORIGINS": value})
