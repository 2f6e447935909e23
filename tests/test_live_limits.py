"""WebSocket limits against a real server: the idle timeout, the connection and subscription
limits."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from server.live_socket import IDLE_CLOSE_CODE
from tests.live_server import running_server
from tests.ws_client import PROTOCOLS, GraphQLSocket

pytestmark = pytest.mark.live
PROJECT = "subscription { projectChanged { reason } }"


def test_a_silent_connection_without_subscriptions_is_closed(tmp_path: Path) -> None:
    env = {"LABELGRAPH_LIVE_IDLE_TIMEOUT": "0.5"}
    with (
        running_server(tmp_path / "idle", env=env) as base,
        GraphQLSocket(base, PROTOCOLS[0]) as ws,
    ):
        with pytest.raises(ConnectionClosed) as closed:
            ws.receive(timeout=30)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == IDLE_CLOSE_CODE


def test_a_silent_subscriber_is_kept(tmp_path: Path) -> None:
    env = {"LABELGRAPH_LIVE_IDLE_TIMEOUT": "0.3"}
    with (
        running_server(tmp_path / "kept", env=env) as base,
        GraphQLSocket(base, PROTOCOLS[1]) as ws,
    ):
        ws.subscribe("p", PROJECT)
        # Keep-alive messages ("ka") are skipped by receive(): nothing else comes, and the
        # connection stays open well past the idle timeout.
        with pytest.raises(TimeoutError):
            ws.receive(timeout=2)
        ws.stop("p")


def test_connections_over_the_limit_are_refused(tmp_path: Path) -> None:
    env = {"LABELGRAPH_LIVE_MAX_CONNECTIONS": "1"}
    with (
        running_server(tmp_path / "busy", env=env) as base,
        GraphQLSocket(base, PROTOCOLS[0]),
    ):
        with pytest.raises(InvalidStatus) as refused:
            GraphQLSocket(base, PROTOCOLS[0])
        assert refused.value.response.status_code == 403
    # (the first connection was closed: another one is accepted)


def test_subscriptions_over_the_process_limit_are_refused(tmp_path: Path) -> None:
    env = {"LABELGRAPH_LIVE_MAX_SUBSCRIPTIONS": "1"}
    with (
        running_server(tmp_path / "full", env=env) as base,
        GraphQLSocket(base, PROTOCOLS[0]) as ws,
    ):
        with httpx.Client(base_url=base, timeout=10) as http:
            poke = lambda: http.patch("/api/project", json={"title": "poke"})  # noqa: E731
            ws.subscribe_confirmed("a", PROJECT, poke)  # "a" holds the one subscription
        ws.subscribe("b", PROJECT)
        message = ws.message_for("b")
        errors = message["payload"]["errors"] if message["type"] == "next" else message["payload"]
        assert errors[0]["extensions"]["code"] == "TOO_MANY_SUBSCRIPTIONS", message
