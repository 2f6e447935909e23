"""The REST compatibility facade: Label Studio 0.9's /api routes over the GraphQL schema.

Each route module registers endpoints with ``rest_compat._http.endpoint``; ``routes()`` turns
them into Starlette routes (trailing slash optional, 405 for other methods) and
``exception_handlers`` renders errors in Label Studio's shape.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from rest_compat import (  # noqa: F401  (register)
    completions,
    datamanager,
    export,
    health,
    imports,
    models,
    project,
    samples,
    storage,
    tasks,
    webhooks,
)
from rest_compat._http import (
    ENDPOINTS,
    OPERATION_HEADER,
    Endpoint,
    OperationFailed,
    RestError,
    answer,
    error_body,
)
from rest_compat.route_table import RouteTable
from server.principal import OPEN, SCOPE_KEY

log = logging.getLogger(__name__)
ALLOWED_METHODS = "GET, POST, PATCH, PUT, DELETE"


# Starlette parses the query string when a handler first reads ``query_params``, even an empty
# one (~15,000 instructions); requests without one share this empty, immutable instance.
_NO_QUERY = QueryParams("")


def _dispatcher(by_method: dict[str, Endpoint]) -> Any:
    async def dispatch(request: Request) -> Response:
        if not request.scope.get("query_string"):
            request._query_params = _NO_QUERY  # Request.query_params' cache
        found = by_method.get(request.method)
        if found is None and request.method == "HEAD":
            found = by_method.get("GET")
        if found is None:
            allowed = ", ".join(sorted(by_method))
            body = error_body(405, f"Method {request.method} not allowed; use {allowed}")
            return answer(body, 405) if request.method != "OPTIONS" else Response(status_code=200)
        refusal = request.scope.get(SCOPE_KEY, OPEN).refusal(found.required_role)
        if refusal is not None:
            return refused(refusal)
        return await found.handler(request)

    return dispatch


def refused(refusal: str) -> Response:
    """401 (nobody signed in) or 403 (a role that may not), in Label Studio's error shape."""
    if refusal == "unauthenticated":
        detail = "Authentication required: send an API token (Authorization: Token …) or log in"
        response = answer(error_body(401, detail), 401)
        response.headers["WWW-Authenticate"] = 'Token realm="labelgraph"'
        return response
    return answer(error_body(403, "Your role may not do this"), 403)


def routes() -> list[BaseRoute]:
    """The REST routes: one :class:`RouteTable` entry for the router."""
    by_path: dict[str, dict[str, Endpoint]] = defaultdict(dict)
    for ep in ENDPOINTS:
        by_path[ep.path][ep.method] = ep
    result = []
    for path, by_method in by_path.items():
        dispatch = _dispatcher(by_method)
        methods = [*by_method, "OPTIONS", "PUT", "PATCH", "POST", "DELETE", "GET"]
        result.append(Route(path, dispatch, methods=sorted(set(methods))))
        result.append(Route(path + "/", dispatch, methods=sorted(set(methods))))
    return [RouteTable(result)]


def _headers(operation: Any) -> dict[str, str]:
    return {OPERATION_HEADER: operation.name} if operation is not None else {}


async def operation_failed(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OperationFailed)
    status = exc.status
    if status == 503:  # busy: the client may retry, and is told when
        response = answer(error_body(status, exc.message), status)
        response.headers["Retry-After"] = str(exc.extensions.get("retryAfter", 1))
    else:
        if status >= 500:
            log.error("%s failed with %s: %s", exc.operation.name, exc.code, exc.message)
        detail = exc.message if status < 500 else "Internal server error"
        response = answer(error_body(status, detail), status)
    response.headers.update(_headers(exc.operation))
    return response


async def rest_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RestError)
    response = answer(exc.body, exc.status)
    response.headers.update(_headers(exc.operation))
    return response


exception_handlers = {OperationFailed: operation_failed, RestError: rest_error}
