"""DNS-rebinding defence: the Host header is checked against the names served
(server/host_check.py). The test settings bind to 127.0.0.1:8080 and list the in-process
clients' names (``testserver``, ``test``) in ``allowed_hosts``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from server.app import create_app
from server.settings import Settings
from tests.live_server import running_server


def client_for(
    settings: Settings, base_url: str = "http://testserver", **changes: Any
) -> TestClient:
    return TestClient(create_app(dataclasses.replace(settings, **changes)), base_url=base_url)


def test_loopback_names_with_the_port_are_served(settings: Settings) -> None:
    for base in ("http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"):
        with client_for(settings, base, allowed_hosts="") as client:
            assert client.get("/api/health").json() == {"status": "up"}
    # The socket's own port counts too (uvicorn started with another --port than the setting).
    with client_for(settings, "http://localhost:9000", allowed_hosts="") as client:
        assert client.get("/api/health").json() == {"status": "up"}


def test_other_host_names_are_refused_on_loopback(sentiment_project: TestClient) -> None:
    client = sentiment_project
    response = client.delete("/api/tasks", headers={"Host": "evil.example:8080"})
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert response.json()["status"] == 400
    assert "'evil.example:8080' is not served here" in detail
    assert "--allowed-hosts" in detail
    wrong_port = client.get("/api/tasks", headers={"Host": "localhost:9999"})
    assert wrong_port.status_code == 400
    graphql = client.post(
        "/graphql", json={"query": "{ project { taskCount } }"}, headers={"Host": "rebound.test"}
    )
    assert graphql.status_code == 400
    assert graphql.json()["errors"][0]["extensions"] == {"code": "HOST_NOT_ALLOWED"}
    assert client.get("/api/tasks", headers={"Host": "a:b:c"}).status_code == 400
    assert client.get("/api/tasks").json()["total"] == 5  # nothing was deleted


def test_allowed_hosts_are_served_with_any_or_their_port(settings: Settings) -> None:
    with client_for(settings, allowed_hosts="labels.lan, proxy.lan:443") as client:
        assert client.get("/api/health", headers={"Host": "labels.lan:8080"}).status_code == 200
        assert client.get("/api/health", headers={"Host": "LABELS.lan"}).status_code == 200
        assert client.get("/api/health", headers={"Host": "proxy.lan:443"}).status_code == 200
        assert client.get("/api/health", headers={"Host": "proxy.lan:8443"}).status_code == 400
        assert client.get("/api/health", headers={"Host": "testserver"}).status_code == 400


def test_other_bind_addresses_check_only_listed_hosts(settings: Settings) -> None:
    with client_for(settings, host="0.0.0.0", allowed_hosts="") as client:
        assert client.get("/api/health", headers={"Host": "anything.example"}).status_code == 200
    with client_for(settings, host="0.0.0.0", allowed_hosts="labels.lan") as client:
        assert client.get("/api/health", headers={"Host": "labels.lan:8080"}).status_code == 200
        assert client.get("/api/health", headers={"Host": "evil.example"}).status_code == 400
    with client_for(settings, host="127.0.0.1", allowed_hosts="*") as client:
        assert client.get("/api/health", headers={"Host": "anything.example"}).status_code == 200


@pytest.mark.parametrize("value", ["http://labels.lan", "labels.lan/x", "a b", "[::1"])
def test_bad_allowed_hosts_are_refused_at_start(value: str) -> None:
    with pytest.raises(ValueError, match="allowed_hosts"):
        Settings.from_env({"LABELGRAPH_ALLOWED_HOSTS": value})


@pytest.mark.live
def test_start_flags_reach_a_live_server(tmp_path: Path) -> None:
    flags = ("--allowed-hosts", "labels.lan", "--cors-origins", "https://friend.example")
    with running_server(tmp_path / "live", *flags) as base, httpx.Client(base_url=base) as http:
        assert http.get("/api/health", headers={"Host": "labels.lan"}).status_code == 200
        assert http.get("/api/health", headers={"Host": "evil.example"}).status_code == 400
        friend = http.post(
            "/api/project/import",
            json=[{"text": "from a friend"}],
            headers={"Origin": "https://friend.example"},
        )
        assert friend.status_code == 201
        assert friend.headers["access-control-allow-origin"] == "https://friend.example"
        stranger = http.post(
            "/api/project/import", json=[{"text": "x"}], headers={"Origin": "https://x.example"}
        )
        assert stranger.status_code == 403
        assert http.get("/api/tasks").json()["total"] == 1


def test_verdicts_are_remembered_per_host_and_port_and_the_memory_is_bounded() -> None:
    """A verdict is worked out once per (Host header, socket port): the same refusal and the
    same admission every time, and a flood of invented names keeps at most VERDICTS_KEPT."""
    import asyncio

    from server.host_check import VERDICTS_KEPT, HostCheck, host_rule

    rule = host_rule("127.0.0.1", 8080, "")
    assert rule is not None
    parsed: list[str] = []
    real_allows = rule.allows

    def counting(host: str, socket_port: int | None) -> bool:
        parsed.append(host)
        return real_allows(host, socket_port)

    object.__setattr__(rule, "allows", counting)
    statuses: list[int] = []

    async def app(scope: object, receive: object, send: object) -> None:
        statuses.append(200)

    check = HostCheck(app, rule)

    async def request(host: bytes, port: int = 8080) -> None:
        async def send(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(int(message["status"]))  # type: ignore[call-overload]

        scope = {
            "type": "http",
            "method": "GET",
            "path": "/api/health",
            "headers": [(b"host", host)],
            "server": ("127.0.0.1", port),
        }
        await check(scope, None, send)  # type: ignore[arg-type]

    async def scenario() -> None:
        for _ in range(3):
            await request(b"localhost:8080")
            await request(b"evil.example:8080")
        await request(b"localhost:8080", port=9000)  # another socket port: its own verdict
        for i in range(VERDICTS_KEPT + 10):
            await request(f"n{i}.example".encode())

    asyncio.run(scenario())
    assert statuses[:6] == [200, 400] * 3
    assert statuses[6] == 200
    assert parsed[:3] == ["localhost:8080", "evil.example:8080", "localhost:8080"]
    assert len(check._verdicts) <= VERDICTS_KEPT
