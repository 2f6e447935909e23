"""Request header limits and the body read timeout (server/http_protocol.py,
server/middleware.py: BodyGuard): in-process, then against a live uvicorn with raw
sockets."""

from __future__ import annotations

import dataclasses
import json
import pickle
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from server.app import create_app
from server.http_protocol import HeaderLimits, uvicorn_options
from server.settings import Settings
from tests.live_server import running_server


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def stalled_body() -> AsyncIterator[bytes]:
    """A body whose first bytes arrive and the rest never does."""
    yield b'[{"text": "half a'
    await anyio.sleep_forever()


@pytest.mark.anyio
async def test_a_stalled_body_is_answered_408(settings: Settings) -> None:
    app = create_app(dataclasses.replace(settings, body_timeout=0.2))
    # The outer limit only turns a hang (no timeout at all) into a failure.
    with anyio.fail_after(60):
        await _post_stalled_bodies(app)


async def _post_stalled_bodies(app: Any) -> None:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            json_type = {"content-type": "application/json", "content-length": "100"}
            response = await client.post(
                "/api/project/import", content=stalled_body(), headers=json_type
            )
            assert response.status_code == 408
            assert response.headers["connection"] == "close"
            assert response.json() == {
                "status": 408,
                "detail": "The request body did not arrive within 0.2 seconds",
            }
            graphql = await client.post("/graphql", content=stalled_body(), headers=json_type)
            assert graphql.status_code == 408
            assert graphql.json()["errors"][0]["extensions"] == {"code": "BODY_TIMEOUT"}
            tasks = await client.get("/api/tasks")
            assert tasks.json()["total"] == 0


def test_the_protocol_options_survive_pickling_for_workers() -> None:
    options = uvicorn_options(HeaderLimits(1000, 10))
    factory = pickle.loads(pickle.dumps(options["http"]))
    assert factory.keywords == {"limits": HeaderLimits(1000, 10)}


# --- live uvicorn ---------------------------------------------------------------------------

LIMITS = {
    "LABELGRAPH_MAX_HEADER_SIZE": "4096",
    "LABELGRAPH_MAX_HEADER_COUNT": "20",
    "LABELGRAPH_BODY_TIMEOUT": "0.5",
}


@pytest.fixture
def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, int]]:
    for name, value in LIMITS.items():
        monkeypatch.setenv(name, value)
    with running_server(tmp_path / "live") as base:
        host, port = base.removeprefix("http://").split(":")
        yield host, int(port)


def exchange(address: tuple[str, int], request: bytes) -> tuple[int, dict[str, str], Any]:
    """Send ``request`` on a new connection; read until the server closes it (so a test fails
    by timing out if it does not); return (status, headers, JSON body)."""
    with socket.create_connection(address, timeout=15) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    return int(status_line.split()[1]), headers, json.loads(body)


def get(address: tuple[str, int], extra_headers: bytes, *, close: bool = True) -> bytes:
    host = f"127.0.0.1:{address[1]}".encode()
    connection = b"Connection: close\r\n" if close else b""
    return b"GET /api/health HTTP/1.1\r\nHost: " + host + b"\r\n" + connection + extra_headers


@pytest.mark.live
def test_oversized_headers_are_refused_431(live: tuple[str, int]) -> None:
    big = b"X-Big: " + b"a" * 8000 + b"\r\n\r\n"
    status, headers, body = exchange(live, get(live, big))
    assert status == 431
    assert headers["connection"] == "close"
    assert body == {"status": 431, "detail": "Request line and headers are larger than 4096 bytes"}
    # A header line that never ends is refused as soon as it passes the limit.
    status, _, body = exchange(live, get(live, b"X-Endless: " + b"b" * 6000))
    assert status == 431
    long_url = b"GET /api/health?" + b"q" * 5000 + b" HTTP/1.1\r\n\r\n"
    assert exchange(live, long_url)[0] == 431
    under = b"X-Fits: " + b"c" * 3000 + b"\r\n\r\n"
    status, _, body = exchange(live, get(live, under))
    assert (status, body) == (200, {"status": "up"})


@pytest.mark.live
def test_too_many_headers_are_refused_431(live: tuple[str, int]) -> None:
    many = b"".join(b"X-N%d: 1\r\n" % n for n in range(30)) + b"\r\n"
    status, headers, body = exchange(live, get(live, many))
    assert status == 431
    assert headers["connection"] == "close"
    assert body == {"status": 431, "detail": "More than 20 request headers"}
    enough = b"".join(b"X-N%d: 1\r\n" % n for n in range(15)) + b"\r\n"
    status, _, body = exchange(live, get(live, enough))
    assert (status, body) == (200, {"status": "up"})


@pytest.mark.live
def test_a_slow_body_times_out_with_408_and_the_connection_closes(
    live: tuple[str, int],
) -> None:
    host = f"127.0.0.1:{live[1]}".encode()
    request = (
        b"POST /api/project/import HTTP/1.1\r\nHost: " + host + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        b'[{"text": "the rest never comes'
    )
    status, headers, body = exchange(live, request)  # returns only once the server closes
    assert status == 408
    assert headers["connection"] == "close"
    assert body == {"status": 408, "detail": "The request body did not arrive within 0.5 seconds"}
    with httpx.Client(base_url=f"http://127.0.0.1:{live[1]}") as http:
        assert http.get("/api/tasks").json()["total"] == 0
        report = http.post("/api/project/import", json=[{"text": "a whole body"}])
        assert report.status_code == 201


@pytest.mark.live
def test_live_server_refuses_rebinding_and_cross_origin_writes(live: tuple[str, int]) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{live[1]}") as http:
        rebound = http.get("/api/health", headers={"Host": f"evil.example:{live[1]}"})
        assert rebound.status_code == 400
        assert "--allowed-hosts" in rebound.json()["detail"]
        forged = http.post(
            "/api/project/import",
            json=[{"text": "forged"}],
            headers={"Origin": "https://evil.example"},
        )
        assert forged.status_code == 403
        same = http.post(
            "/api/project/import",
            json=[{"text": "mine"}],
            headers={"Origin": f"http://localhost:{live[1]}", "Host": f"localhost:{live[1]}"},
        )
        assert same.status_code == 201
        assert [t["data"]["text"] for t in http.get("/api/tasks").json()["tasks"]] == ["mine"]
