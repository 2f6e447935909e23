"""A request leaves no reference cycle behind: its execution state, context and request are
freed by reference counting when it ends, not by a later garbage collection (which would walk
them, and everything else alive, on some later request's time). schema/acyclic.py."""

from __future__ import annotations

import asyncio
import gc
import json
from typing import Any

import pytest

from server.app import create_app
from server.settings import Settings

SUBMITTED = 'mutation { importTasks(tasks: [{text: "a"}, {text: "b"}]) { taskCount } }'
PAGE = "{ project { taskCount tasks(first: 10) { nodes { id data completions { id } } } } }"
MISSING_JOB = {"query": "query J($id: Int!) { job(id: $id) { state } }", "variables": {"id": 99}}
CASES = {
    "GraphQL page": ("POST", "/graphql", {"query": PAGE}),
    "GraphQL error": ("POST", "/graphql", MISSING_JOB),
    "GraphQL invalid": ("POST", "/graphql", {"query": "{ project { nope } }"}),
    "REST task": ("GET", "/api/tasks/1", None),
    "REST 404": ("GET", "/api/tasks/999", None),
    "REST page": ("GET", "/api/tasks?page=1&page_size=10", None),
}


def http_scope(method: str, path: str) -> dict[str, Any]:
    path, _, query = path.partition("?")
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }


async def call(app: Any, method: str, path: str, body: Any) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []
    raw = json.dumps(body).encode() if body is not None else b""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": raw, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(http_scope(method, path), receive, send)
    body_bytes = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body_bytes


@pytest.mark.parametrize("case", list(CASES))
def test_a_request_leaves_no_garbage_cycle(settings: Settings, case: str) -> None:
    app = create_app(settings)
    method, path, body = CASES[case]

    async def scenario() -> tuple[int, bytes, int]:
        async with app.router.lifespan_context(app):
            status, answer = await call(app, "POST", "/graphql", {"query": SUBMITTED})
            assert status == 200 and b'"taskCount":2' in answer, answer
            for _ in range(3):  # caches, pools and prepared statements settle
                await call(app, method, path, body)
            gc.collect()
            gc.disable()
            try:
                for _ in range(10):
                    status, answer = await call(app, method, path, body)
                found = gc.collect()
            finally:
                gc.enable()
            return status, answer, found

    status, answer, found = asyncio.run(scenario())
    expected = {"REST 404": 404}.get(case, 200)
    assert status == expected, answer
    if case.startswith("GraphQL") and case != "GraphQL page":
        assert b'"errors"' in answer and b'"code"' in answer
    assert found == 0, f"{found} objects in reference cycles after 10 requests"
