"""The WebSocket side of ``/graphql``: connection limits and the idle timeout.

Wraps Strawberry's ASGI app for ``websocket`` scopes. A connection over the process's limit is
refused at the handshake (HTTP 403 as ASGI servers answer a close before accept). The client's
messages are awaited with a timeout: when none came for ``live_idle_timeout`` seconds and the
connection has no active subscription, it is closed with code 4408 ("idle"). Dead peers are
found by the server's WebSocket pings (uvicorn: every 20 s).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)
SCOPE_KEY = "labelgraph.live"
IDLE_CLOSE_CODE = 4408


@dataclass
class ConnectionState:
    subscriptions: int = 0


def connection_state(request: Any) -> ConnectionState | None:
    """The state of the WebSocket connection a subscription runs on (None elsewhere)."""
    scope = getattr(request, "scope", None)
    if not isinstance(scope, dict):
        return None
    state = scope.get(SCOPE_KEY)
    return state if isinstance(state, ConnectionState) else None


class LiveSocketGuard:
    def __init__(self, app: ASGIApp, max_connections: int, idle_timeout: float) -> None:
        self.app = app
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.open_connections = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        if self.open_connections >= self.max_connections:
            log.warning("WebSocket refused: %d connections open", self.open_connections)
            message = await receive()
            if message["type"] == "websocket.connect":
                await send({"type": "websocket.close", "code": 1013, "reason": "busy"})
            return
        state = ConnectionState()
        closed = False

        async def guarded_receive() -> Message:
            nonlocal closed
            while True:
                try:
                    return await asyncio.wait_for(receive(), self.idle_timeout)
                except TimeoutError:
                    if state.subscriptions > 0 or closed:
                        continue
                    closed = True
                    await send({"type": "websocket.close", "code": IDLE_CLOSE_CODE})
                    return {"type": "websocket.disconnect", "code": IDLE_CLOSE_CODE}

        self.open_connections += 1
        try:
            await self.app({**scope, SCOPE_KEY: state}, guarded_receive, send)
        finally:
            self.open_connections -= 1
