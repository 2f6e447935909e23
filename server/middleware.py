"""ASGI middleware: request body limit and read timeout, Label Studio's response headers, and
:class:`FrontDoor`, the one layer that stacks them with the Host check and the cross-origin
guard."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.cors import CrossOriginGuard
from server.host_check import HostCheck, HostRule
from server.http_refusal import send_refusal

log = logging.getLogger(__name__)

Headers = list[tuple[bytes, bytes]]


class TrackedSend:
    """``send`` that remembers whether the answer has started: after that, a refusal is too
    late and the error must propagate."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)


class BodyTooLarge(Exception):
    pass


class BodyTimedOut(Exception):
    pass


def declares_body(headers: Headers) -> tuple[bool, bytes | None]:
    """(whether the request may have a body, its declared Content-Length). An HTTP/1.1
    request has a body only with a Content-Length above 0 or a Transfer-Encoding."""
    length = None
    chunked = False
    for name, value in headers:
        if name == b"content-length":
            length = value
        elif name == b"transfer-encoding":
            chunked = True
    return chunked or (length is not None and length.strip(b" \t0") != b""), length


class BodyGuard:
    """The request body's limits, in one layer:

    * size: 413 for bodies over ``limit`` bytes, by Content-Length or while streaming;
    * read timeout: 408 and the connection closed when the body stalls, no data for
      ``timeout`` seconds while the application waits for it (as nginx's
      client_body_timeout). Only the body is timed: once it is complete, or the answer has
      started, ``receive`` waits as long as the application wants (disconnect listeners).

    Requests without a body (most GETs) pass untouched."""

    def __init__(self, app: ASGIApp, limit: int, timeout: float) -> None:
        self.app = app
        self.limit = limit
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        has_body, declared = declares_body(scope["headers"])
        if not has_body:
            await self.app(scope, receive, send)
            return
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._reject(send)
            return
        seen = 0
        body_complete = False
        tracked = TrackedSend(send)

        async def guarded_receive() -> Message:
            nonlocal seen, body_complete
            if body_complete or tracked.started:
                message = await receive()
            else:
                # asyncio's own timeout (the server runs on asyncio): anyio's fail_after
                # costs twice as much, on every receive of every request with a body.
                try:
                    async with asyncio.timeout(self.timeout):
                        message = await receive()
                except TimeoutError:
                    raise BodyTimedOut() from None
                if message["type"] != "http.request" or not message.get("more_body", False):
                    body_complete = True
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge()
            return message

        try:
            await self.app(scope, guarded_receive, tracked)
        except BodyTooLarge:
            if tracked.started:
                raise
            await self._reject(send)
        except BodyTimedOut:
            if tracked.started:
                raise
            log.warning("request body of %s %s timed out", scope["method"], scope["path"])
            detail = f"The request body did not arrive within {self.timeout:g} seconds"
            await send_refusal(scope, send, 408, "BODY_TIMEOUT", detail, close=True)

    async def _reject(self, send: Send) -> None:
        detail = f"Request body is larger than the limit of {self.limit} bytes"
        body = json.dumps({"status": 413, "detail": detail}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


_LS_HEADERS: Headers = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-methods", b"GET,POST,PATCH,PUT,DELETE"),
]
_LS_WRITE_HEADERS: Headers = [
    *_LS_HEADERS,
    (b"allow", b"GET, POST, PATCH, PUT, DELETE"),
    (b"access-control-allow-headers", b"Content-Type"),
]


class LabelStudioHeaders:
    """The CORS and Allow headers Label Studio sends on every /api response (rest-api.md §1);
    a header the answer already has is kept."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api"):
            await self.app(scope, receive, send)
            return
        extra = _LS_HEADERS if scope["method"] == "GET" else _LS_WRITE_HEADERS

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: Any = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in extra if k not in names]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


# Request headers one of the front door's checks acts on: a request with none of them (and an
# allowed Host) passes the Host check, the cross-origin guard and the body guard unchanged.
_CHECKED_HEADERS = frozenset(
    {
        b"origin",
        b"sec-fetch-site",
        b"access-control-request-method",
        b"content-length",
        b"transfer-encoding",
    }
)


class FrontDoor:
    """The checks every request passes first, outermost first: the Host check (DNS
    rebinding; only with a ``rule``), cross-origin writes, the body's read timeout and size,
    then Label Studio's response headers on ``/api``, in one layer.

    Each check is its own class, stacked here in that order. Most requests (a client's GET:
    no Origin, no body, the usual Host) pass all three checks unchanged, and each check
    scans the headers again to learn that; so one scan here sends such a request straight to
    :class:`LabelStudioHeaders`, and any other (a header a check acts on, a Host to vet, a
    WebSocket, listed CORS origins, whose answers all carry ``Vary``) through the whole stack.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        rule: HostRule | None,
        allowed_origins: frozenset[str],
        limit: int,
        timeout: float,
    ) -> None:
        self.app = app
        self.answered = LabelStudioHeaders(app)
        body = BodyGuard(self.answered, limit, timeout)
        self.cross_origin = CrossOriginGuard(body, allowed_origins)
        self.host_check = HostCheck(self.cross_origin, rule) if rule is not None else None
        self.checked: ASGIApp = self.host_check or self.cross_origin
        self.plain_possible = not allowed_origins

    def passes_unchanged(self, scope: Scope) -> bool:
        """Whether every check would let this request through as it is."""
        if scope["type"] != "http" or not self.plain_possible:
            return False
        host = None
        for name, value in scope["headers"]:
            if name in _CHECKED_HEADERS:
                return False
            if name == b"host":
                host = value
        if host is None or self.host_check is None:
            return True
        server = scope.get("server")
        socket_port = server[1] if server and isinstance(server[1], int) else None
        return self.host_check.allows(host.decode("latin-1"), socket_port)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.passes_unchanged(scope):
            await self.answered(scope, receive, send)
        else:
            await self.checked(scope, receive, send)
