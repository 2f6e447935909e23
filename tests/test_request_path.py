"""The request path's building blocks: the REST route table, the body guard's bodiless test,
orjson answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from rest_compat._http import FastJSONResponse
from rest_compat.route_table import RouteTable
from server.middleware import declares_body


def test_the_route_table_answers_as_starlettes_router_in_order() -> None:
    """A route with parameters registered before a literal one that it also matches wins, as
    in Starlette's ordered router; a later one does not; methods give 405 as before."""

    def route(path: str, name: str, methods: list[str] | None = None) -> Route:
        async def endpoint(request: Request) -> Response:
            return PlainTextResponse(f"{name} {dict(request.path_params)}")

        return Route(path, endpoint, methods=methods)

    table = RouteTable(
        [
            route("/a/prepare", "prepare"),
            route("/a/{item}", "item"),
            route("/b/{item}", "b-item"),
            route("/b/fixed", "b-fixed"),
            route("/c", "c", methods=["POST"]),
            route("/c/", "c-slash", methods=["POST"]),
        ]
    )
    with TestClient(Starlette(routes=[table])) as client:
        assert client.get("/a/prepare").text == "prepare {}"
        assert client.get("/a/7").text == "item {'item': '7'}"
        assert client.get("/b/fixed").text == "b-item {'item': 'fixed'}"
        assert client.post("/c/").text == "c-slash {}"
        refused = client.get("/c")
        assert refused.status_code == 405 and refused.headers["allow"] == "POST"
        assert client.get("/nowhere").status_code == 404


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([], False),
        ([(b"content-length", b"0")], False),
        ([(b"content-length", b"00")], False),
        ([(b"content-length", b"10")], True),
        ([(b"content-length", b"100")], True),
        ([(b"transfer-encoding", b"chunked")], True),
    ],
)
def test_only_requests_that_declare_a_body_are_guarded(
    headers: list[tuple[bytes, bytes]], expected: bool
) -> None:
    assert declares_body(headers)[0] is expected


def test_answers_render_as_compact_utf8_json_and_big_integers_still_render() -> None:
    body = {"text": "naïve ☃", "n": [1, 2.5, None, True], 3: "int key"}
    assert (
        FastJSONResponse(body).body
        == '{"text":"naïve ☃","n":[1,2.5,null,true],"3":"int key"}'.encode()
    )
    assert FastJSONResponse({"big": 2**70}).body == b'{"big":1180591620717411303424}'


def test_the_rest_table_is_tried_first_and_shares_no_path_with_other_routes(
    tmp_path: Path,
) -> None:
    """The router tries the REST facade's table before the other routes (the hot paths skip
    their patterns): that answers as before only while no path matches both."""
    from starlette.routing import Match

    from rest_compat._http import ENDPOINTS
    from server.app import create_app
    from server.settings import Settings

    app = create_app(Settings.from_env(project_dir=str(tmp_path / "p")))
    table, *others = app.router.routes
    assert isinstance(table, RouteTable)

    def scope(path: str) -> dict[str, object]:
        return {"type": "http", "path": path, "root_path": "", "method": "GET"}

    rest_paths = {
        ep.path.replace("{", "").replace("}", "").replace(":path", "") for ep in ENDPOINTS
    }
    assert "/api/tasks/task_id" in rest_paths
    for path in rest_paths | {p + "/" for p in rest_paths}:
        assert table.matches(scope(path))[0] is Match.FULL, path
        assert [r for r in others if r.matches(scope(path))[0] is not Match.NONE] == [], path
    other_paths = ["/", "/static/app/x.js", "/graphql", "/data/export/x.zip", "/data/upload/a/b"]
    other_paths += ["/static/samples/x.jpg", "/login", "/logout"]
    for path in other_paths:
        assert table.matches(scope(path))[0] is Match.NONE, path
        assert any(r.matches(scope(path))[0] is not Match.NONE for r in others), path


def _front_door(allowed_origins: frozenset[str] = frozenset()) -> tuple[Any, list[str]]:
    from server.host_check import host_rule
    from server.middleware import FrontDoor

    reached: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["path"])
        body = b"{}"
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    door = FrontDoor(
        app,
        rule=host_rule("127.0.0.1", 8080, ""),
        allowed_origins=allowed_origins,
        limit=10,
        timeout=5.0,
    )
    return door, reached


def _http_scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "headers": headers,
        "server": ("127.0.0.1", 8080),
        "query_string": b"",
    }


def test_the_front_door_lets_plain_requests_past_its_checks_in_one_scan() -> None:
    door, _ = _front_door()
    host = (b"host", b"localhost:8080")
    assert door.passes_unchanged(_http_scope("GET", "/api/tasks/1", [host]))
    assert door.passes_unchanged(_http_scope("GET", "/api/tasks/1", []))  # no Host: passes
    for checked in [
        (b"origin", b"http://localhost:8080"),
        (b"sec-fetch-site", b"same-origin"),
        (b"access-control-request-method", b"DELETE"),
        (b"content-length", b"3"),
        (b"transfer-encoding", b"chunked"),
    ]:
        assert not door.passes_unchanged(_http_scope("POST", "/api/x", [host, checked]))
    evil = (b"host", b"evil.example:8080")
    assert not door.passes_unchanged(_http_scope("GET", "/api/tasks/1", [evil]))
    assert not door.passes_unchanged({**_http_scope("GET", "/graphql", [host]), "type": "ws"})
    listed, _ = _front_door(frozenset({"http://app.example"}))
    assert not listed.passes_unchanged(_http_scope("GET", "/api/tasks/1", [host]))


def test_the_front_door_answers_as_its_stacked_checks() -> None:
    """Through the fast path or the whole stack, the same answers: Label Studio's headers on
    /api, refusals from the checks."""
    import asyncio

    door, reached = _front_door()

    async def answer(scope: dict[str, Any], target: Any = door) -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await target(scope, receive, send)
        return sent

    host = (b"host", b"localhost:8080")
    plain = _http_scope("GET", "/api/tasks/1", [host])
    fast = asyncio.run(answer(plain))
    slow = asyncio.run(answer(plain, door.checked))  # the whole stack
    assert fast == slow
    assert (b"access-control-allow-origin", b"*") in fast[0]["headers"]
    assert reached == ["/api/tasks/1", "/api/tasks/1"]
    big = asyncio.run(answer(_http_scope("POST", "/api/x", [host, (b"content-length", b"99")])))
    assert big[0]["status"] == 413
    evil = asyncio.run(answer(_http_scope("GET", "/api/tasks/1", [(b"host", b"evil.example")])))
    assert evil[0]["status"] == 400
    assert reached == ["/api/tasks/1", "/api/tasks/1"]
