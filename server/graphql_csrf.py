"""CSRF protection for GraphQL file uploads.

Strawberry accepts the GraphQL multipart request spec only when told to and leaves CSRF
protection to the server: a browser sends a cross-site ``multipart/form-data`` POST (a "simple"
request) without asking first. Like Apollo Server, a POST with a simple content type must carry
a non-empty ``apollo-require-preflight`` or ``x-apollo-operation-name`` header; a browser sends
a custom header only after a CORS preflight, which a foreign site cannot pass.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

PREFLIGHT_HEADERS = (b"apollo-require-preflight", b"x-apollo-operation-name")
SIMPLE_CONTENT_TYPES = (b"multipart/form-data", b"application/x-www-form-urlencoded", b"text/plain")
MESSAGE = (
    "This operation has been blocked as a potential Cross-Site Request Forgery (CSRF). Send "
    "file uploads with a non-empty `apollo-require-preflight` (or `x-apollo-operation-name`) "
    "header."
)


class PreflightRequired:
    """ASGI wrapper refusing simple-content-type POSTs without a preflight-forcing header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and self._forgeable(scope):
            body = json.dumps({"errors": [{"message": MESSAGE, "extensions": {"code": "CSRF"}}]})
            await send(
                {
                    "type": "http.response.start",
                    "status": 400,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body.encode()})
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _forgeable(scope: Scope) -> bool:
        headers = {name.lower(): value for name, value in scope["headers"]}
        kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if kind not in SIMPLE_CONTENT_TYPES:
            return False
        return not any(headers.get(name, b"").strip() for name in PREFLIGHT_HEADERS)
