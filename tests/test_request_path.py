"""The request path's building blocks: the REST route table, the body guard's bodiless test,
orjson answers."""

from __future__ import annotations

from pathlib import Path

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
