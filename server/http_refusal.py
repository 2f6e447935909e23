"""The answer of the front-door middleware when it refuses a request: Label Studio's error shape
(``{"status", "detail"}``) on REST and other paths, a GraphQL error with ``extensions.code`` on
``/graphql``."""

from __future__ import annotations

import json
from collections.abc import Sequence

from starlette.types import Scope, Send

Headers = list[tuple[bytes, bytes]]


def refusal_body(scope: Scope, status: int, code: str, detail: str) -> bytes:
    if scope.get("path", "").rstrip("/") == "/graphql":
        error = {"message": detail, "extensions": {"code": code}}
        return json.dumps({"data": None, "errors": [error]}).encode()
    return json.dumps({"status": status, "detail": detail}).encode()


async def send_refusal(
    scope: Scope,
    send: Send,
    status: int,
    code: str,
    detail: str,
    *,
    headers: Sequence[tuple[bytes, bytes]] = (),
    close: bool = False,
) -> None:
    """Answer ``status`` with the error body; ``close`` asks the server to drop the connection
    (the rest of the request is not read)."""
    body = refusal_body(scope, status, code, detail)
    start: Headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *headers,
    ]
    if close:
        start.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})
