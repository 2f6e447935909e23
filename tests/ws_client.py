"""A small GraphQL-over-WebSocket client for tests: ``graphql-transport-ws`` and the legacy
``graphql-ws`` protocol, over the ``websockets`` package (synchronous client)."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from websockets.sync.client import ClientConnection, connect

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"
PROTOCOLS = (TRANSPORT_WS, LEGACY_WS)


class GraphQLSocket:
    def __init__(
        self, base_url: str, protocol: str, receive_buffer: int | None = None, **options: Any
    ) -> None:
        """``receive_buffer``: a fixed kernel receive buffer in bytes (loopback buffers
        otherwise grow to tens of MB), for a client that stops reading."""
        self.protocol = protocol
        url = base_url.replace("http://", "ws://", 1) + "/graphql"
        if receive_buffer is not None:
            parts = urlsplit(url)
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            sock.connect((parts.hostname, parts.port))
            options["sock"] = sock
        self._connection = connect(url, subprotocols=[protocol], **options)  # type: ignore[list-item]
        self.ws: ClientConnection = self._connection.__enter__()
        self.send({"type": "connection_init", "payload": {}})
        ack = self.receive(10)
        assert ack["type"] == "connection_ack", ack
        self.pending: list[dict[str, Any]] = []

    def send(self, message: dict[str, Any]) -> None:
        self.ws.send(json.dumps(message))

    def receive(self, timeout: float) -> dict[str, Any]:
        """The next protocol message (keep-alives answered and skipped)."""
        while True:
            message: dict[str, Any] = json.loads(self.ws.recv(timeout))
            if message["type"] == "ping":
                self.send({"type": "pong"})
                continue
            if message["type"] == "ka":
                continue
            return message

    def subscribe(self, op_id: str, query: str, variables: dict[str, Any] | None = None) -> None:
        kind = "subscribe" if self.protocol == TRANSPORT_WS else "start"
        payload = {"query": query, "variables": variables or {}}
        self.send({"id": op_id, "type": kind, "payload": payload})

    def stop(self, op_id: str) -> None:
        self.send({"id": op_id, "type": "complete" if self.protocol == TRANSPORT_WS else "stop"})

    def message_for(self, op_id: str, timeout: float = 10) -> dict[str, Any]:
        """The next message of one operation (messages of others are kept for later)."""
        for index, message in enumerate(self.pending):
            if message.get("id") == op_id:
                return self.pending.pop(index)
        while True:
            message = self.receive(timeout)
            if message.get("id") == op_id:
                return message
            self.pending.append(message)

    def data_for(self, op_id: str, timeout: float = 10) -> dict[str, Any]:
        """The data of the next result of one operation (fails on anything else)."""
        message = self.message_for(op_id, timeout)
        assert message["type"] in ("next", "data"), message
        assert not message["payload"].get("errors"), message
        data: dict[str, Any] = message["payload"]["data"]
        return data

    def subscribe_confirmed(
        self,
        op_id: str,
        query: str,
        poke: Callable[[], object],
        variables: dict[str, Any] | None = None,
    ) -> None:
        """Subscribe, then ``poke`` (a write the subscription hears of) until a first result
        arrives: from then on the subscription is known to be active. The results of pokes
        are dropped."""
        self.subscribe(op_id, query, variables)
        for _ in range(50):
            poke()
            try:
                self.message_for(op_id, timeout=0.5)
            except TimeoutError:
                continue
            self.drain(0.3)
            return
        raise AssertionError(f"subscription {op_id} never answered")

    def drain(self, quiet: float) -> None:
        """Drop everything received until ``quiet`` seconds pass without a message."""
        self.pending.clear()
        while True:
            try:
                self.receive(quiet)
            except TimeoutError:
                return

    def close(self) -> None:
        self._connection.__exit__(None, None, None)

    def __enter__(self) -> GraphQLSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
