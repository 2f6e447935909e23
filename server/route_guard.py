"""The role a plain (non-REST-facade) route needs, declared where the route is made:
``Route("/data/export/{name}", guarded(Role.ADMIN, export_download))``.

REST facade routes declare theirs in ``rest_compat`` (``endpoint(..., permission=...)``) and
GraphQL fields with permission classes (``schema.permissions``); a test walks all three."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from starlette.routing import request_response
from starlette.types import ASGIApp, Receive, Scope, Send

from server.http_refusal import send_refusal
from server.principal import OPEN, SCOPE_KEY, Role

UNAUTHENTICATED_DETAIL = (
    "Authentication required: send an API token (Authorization: Token …) or log in"
)
FORBIDDEN_DETAIL = "Your role may not do this"


class Guarded:
    """An ASGI app that answers only callers with at least ``required_role``."""

    def __init__(self, required_role: Role, app: ASGIApp) -> None:
        self.required_role = required_role
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = scope.get(SCOPE_KEY, OPEN).refusal(self.required_role)
        if refusal == "unauthenticated":
            challenge = [(b"www-authenticate", b'Token realm="labelgraph"')]
            detail = UNAUTHENTICATED_DETAIL
            await send_refusal(scope, send, 401, "UNAUTHENTICATED", detail, headers=challenge)
        elif refusal == "forbidden":
            await send_refusal(scope, send, 403, "FORBIDDEN", FORBIDDEN_DETAIL)
        else:
            await self.app(scope, receive, send)


def guarded(required_role: Role, endpoint: Callable[..., Any] | ASGIApp) -> Guarded:
    """``endpoint`` (a request handler function or an ASGI app) for ``required_role``."""
    if inspect.isfunction(endpoint) or inspect.ismethod(endpoint):
        return Guarded(required_role, request_response(endpoint))
    return Guarded(required_role, endpoint)
