"""ML backends are hosts a client names: requests to them must not reach internal hosts
(unless the operator allows it) and must never carry an internal page back to the caller."""

from __future__ import annotations

import contextlib
import dataclasses
import http.server
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from server import cli
from server.app import create_app
from server.services import net_guard
from server.services.ml.client import MLClient
from server.settings import Settings
from tests.conftest import TEST_DATABASE_URL, GraphQL
from tests.ml_backend import RunningBackend

SECRET_PAGE = "INTERNAL-ADMIN-PAGE root-password=hunter2"
ADD = """mutation($url: String!) { addMlBackend(url: $url, name: "m") { name } }"""
SET = 'mutation($u: String!) { setMlBackends(backends: [{name: "m", url: $u}]) { name } }'
STATUS = "{ project { mlBackends { name status { connected error } } } }"


class InternalPage(http.server.BaseHTTPRequestHandler):
    """An internal service: every path answers a page that must not leak."""

    status = 500

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self) -> None:
        body = SECRET_PAGE.encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer


@contextlib.contextmanager
def internal_page(status: int) -> Iterator[str]:
    handler = type("Handler", (InternalPage,), {"status": status})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def graphql_of(client: TestClient, settings: Settings) -> GraphQL:
    state = client.app.state  # type: ignore[attr-defined]
    return GraphQL(settings, int(state.project_id), state.ml, state.storage)


def test_by_default_backends_added_through_the_api_cannot_be_internal(
    app_with_settings: Callable[..., TestClient], ml_backend: RunningBackend
) -> None:
    """The attack: add a backend on a loopback address, or save one without a check and let
    the status query, live predictions or training call it."""
    client = app_with_settings(ml_allow_private=False)
    settings = client.app.state.settings  # type: ignore[attr-defined]
    gql = graphql_of(client, settings)
    error = gql.error(ADD, {"url": ml_backend.url})
    assert error["code"] == "INVALID"
    assert error["message"] == f'ML backend with URL: "{ml_backend.url}" is not connected.'
    assert "non-public address 127.0.0.1" in error["reason"]
    assert "LABELGRAPH_ML_ALLOW_PRIVATE" in error["reason"]
    response = client.patch("/api/project", json={"ml_backend": ml_backend.url})
    assert response.status_code == 400
    gql(SET, {"u": ml_backend.url})  # saved unchecked, as Label Studio's settings file
    (backend,) = gql(STATUS)["project"]["mlBackends"]
    assert backend["status"]["connected"] is False
    assert "non-public address 127.0.0.1" in backend["status"]["error"]
    client.post("/api/project/import", json=[{"text": "a"}])
    task_id = client.get("/api/tasks").json()["tasks"][0]["id"]
    assert client.get(f"/api/tasks/{task_id}").status_code == 200  # live predictions: none
    assert client.post("/api/models/train").status_code in (400, 502)
    assert ml_backend.requests() == []  # nothing ever reached the internal host


def test_the_switch_allows_internal_backends(
    app_with_settings: Callable[..., TestClient], ml_backend: RunningBackend
) -> None:
    client = app_with_settings(ml_allow_private=True)
    gql = graphql_of(client, client.app.state.settings)  # type: ignore[attr-defined]
    assert gql(ADD, {"url": ml_backend.url}) == {"addMlBackend": {"name": "m"}}
    assert ml_backend.paths() == ["GET /health"]


@pytest.mark.skipif(bool(TEST_DATABASE_URL), reason="the CLI's project creation uses SQLite")
def test_backends_given_on_the_command_line_are_trusted(
    tmp_path: Path, ml_backend: RunningBackend
) -> None:
    project = tmp_path / "cli"
    assert cli.main(["init", str(project), "--ml-backends", f"m={ml_backend.url}"]) == 0
    settings = Settings.from_env({}, project_dir=str(project))
    assert settings.ml_allow_private is False
    with TestClient(create_app(settings)) as client:
        gql = graphql_of(client, settings)
        (backend,) = gql(STATUS)["project"]["mlBackends"]
        assert backend["status"]["connected"] is True, backend
        # Saving the same list keeps the trust; another URL does not get it.
        gql(SET, {"u": ml_backend.url})
        (backend,) = gql(STATUS)["project"]["mlBackends"]
        assert backend["status"]["connected"] is True
        gql(SET, {"u": ml_backend.url + "/"})
        (backend,) = gql(STATUS)["project"]["mlBackends"]
        assert backend["status"]["connected"] is False


def test_a_name_is_resolved_once_and_the_vetted_address_is_used(
    settings: Settings, ml_backend: RunningBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name's first answer is checked and connected to; a later answer
    (here: anything else) is never asked for."""
    port = int(ml_backend.url.rsplit(":", 1)[1])
    lookups: list[str] = []
    real = socket.getaddrinfo

    def fake(host: str, *args: Any, **kwargs: Any) -> Any:
        if host == "ml.example":
            lookups.append(host)
            address = "127.0.0.1" if len(lookups) == 1 else "127.0.0.2"
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    monkeypatch.setattr(net_guard, "is_public", lambda address: address == "127.0.0.1")
    client = MLClient(dataclasses.replace(settings, ml_allow_private=False))
    try:
        reply = client.health(f"http://ml.example:{port}")
        assert reply.ok, reply
        assert lookups == ["ml.example"]
        assert [r["path"] for r in ml_backend.requests()] == ["/health"]
    finally:
        client.close()
    monkeypatch.setattr(net_guard, "is_public", lambda address: False)
    client = MLClient(dataclasses.replace(settings, ml_allow_private=False))
    try:
        refused = client.health(f"http://ml.example:{port}")
        assert refused.status == 0 and "non-public address 127.0.0.2" in refused.error
    finally:
        client.close()


@pytest.mark.parametrize("status", [500, 200])
def test_an_internal_page_is_never_reflected(
    app_with_settings: Callable[..., TestClient], status: int
) -> None:
    """Even where internal backends are allowed, what a backend answers besides its JSON
    (an error page, HTML) never reaches the caller: status code and our own words."""
    client = app_with_settings(ml_allow_private=True)
    gql = graphql_of(client, client.app.state.settings)  # type: ignore[attr-defined]
    with internal_page(status) as url:
        error = gql.error(ADD, {"url": url})
        assert SECRET_PAGE not in str(error)
        assert error["reason"] == (
            f"the backend answered HTTP {status}" + (", not JSON" if status == 200 else "")
        )
        response = client.patch("/api/project", json={"ml_backend": url})
        assert response.status_code == 400 and SECRET_PAGE not in response.text
        gql(SET, {"u": url})
        (backend,) = gql(STATUS)["project"]["mlBackends"]
        assert SECRET_PAGE not in str(backend)
        client.post("/api/project/import", json=[{"text": "a", "completions": [{"result": []}]}])
        task_id = client.get("/api/tasks").json()["tasks"][0]["id"]
        for answer in (
            client.post("/api/models/train"),
            client.post("/api/models/predictions?mode=data", json={"text": "x"}),
            client.get(f"/api/tasks/{task_id}"),
        ):
            assert SECRET_PAGE not in answer.text
