"""Subscription frames written straight to a WebSocket's transport.

A subscription result normally travels Strawberry's operation task, Starlette's ``WebSocket``,
the ASGI ``send`` of the middleware stack and uvicorn's WebSocket protocol, ~50 µs per message
in Python: with 200 subscribers, ~10 ms of the event loop per event, which delayed every HTTP
request (the completion POSTs that caused the events included). The live fan-out
(:mod:`server.services.events.hub`) writes the same frame bytes through :class:`FrameWriter`
instead, without a task switch or an await: the frame header is a few bytes (a server's frames
are not masked), so frames are built here and written with one ``transport.write``, several
at once when the fan-out has several for the connection; a connection with an extension
(permessage-deflate, off by default: ``server/http_protocol.py``) has its frames made by the
``websockets`` connection object instead.

:class:`LiveWebSocketProtocol` is uvicorn's default WebSocket protocol (the ``websockets``
sans-I/O one) with a :class:`FrameWriter` in the scope's ``extensions`` under
:data:`FRAME_WRITER`. Other servers (and Starlette's test client) have none: subscriptions
there are delivered through Strawberry as before.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

FRAME_WRITER = "labelgraph.frame_writer"


class FrameWriter:
    """Writes text frames to one accepted WebSocket connection, on the event loop's thread."""

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self._protocol = protocol

    def write(self, texts: list[bytes]) -> int | None:
        """Send each of ``texts`` (UTF-8 JSON) as a text frame, in order; the bytes the
        transport still holds afterwards (not yet taken by the kernel), or None when the
        connection is closing."""
        protocol = self._protocol
        transport = protocol.transport
        conn = protocol.conn
        if protocol.close_sent or transport.is_closing() or conn.state is not State.OPEN:
            return None
        if conn.extensions:
            for text in texts:
                conn.send_text(text)
            transport.write(b"".join(conn.data_to_send()))
        else:
            parts: list[bytes] = []
            for text in texts:
                parts.append(text_frame_header(len(text)))
                parts.append(text)
            transport.write(b"".join(parts))
        return int(transport.get_write_buffer_size())


def text_frame_header(length: int) -> bytes:
    """The header of an unmasked, final text frame of ``length`` bytes (RFC 6455, 5.2)."""
    if length < 126:
        return bytes((0x81, length))
    if length < 1 << 16:
        return b"\x81\x7e" + length.to_bytes(2, "big")
    return b"\x81\x7f" + length.to_bytes(8, "big")


def frame_writer(scope: Any) -> FrameWriter | None:
    """The connection's :class:`FrameWriter` (None: not served by our protocol)."""
    if not isinstance(scope, dict):
        return None
    writer = (scope.get("extensions") or {}).get(FRAME_WRITER)
    return writer if isinstance(writer, FrameWriter) else None


class LiveWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol, offering a :class:`FrameWriter` to the application."""

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        # The handshake was valid when the scope exists; the ASGI task has not started yet.
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope.setdefault("extensions", {})[FRAME_WRITER] = FrameWriter(self)
