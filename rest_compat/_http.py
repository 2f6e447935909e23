"""The REST facade's plumbing: stored operations, their execution, request parsing, answers.

Each Label Studio route is an :class:`Operation` (a GraphQL document stored at module level)
executed in-process against the schema, plus a small adapter. Every answer carries the header
``X-Labelgraph-Operation`` naming the operation that produced it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio.to_thread
import orjson
from graphql import parse
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Message

from schema import schema
from schema.context import request_context
from server.errors import DomainError
from server.gc_pause import paused_gc
from server.json_depth import check_json_depth
from server.json_values import loads_storable
from server.principal import Role
from server.state_values import state_value

OPERATION_HEADER = "X-Labelgraph-Operation"
LARGE_BODY = 64 * 1024  # parse bigger JSON bodies on a worker thread

STATUS_BY_CODE = {
    "NOT_FOUND": 404,
    "INVALID": 400,
    "INVALID_TASKS": 400,
    "INVALID_LABEL_CONFIG": 400,
    "NOT_ALLOWED": 422,
    "TOO_LARGE": 413,
    "CONFLICT": 409,
    "ML_BACKEND": 502,
    "FETCH_FAILED": 422,
    "STORAGE": 502,
    "BAD_FILTER": 400,
    "GRAPHQL_VALIDATION_FAILED": 400,
    "GRAPHQL_PARSE_FAILED": 400,
    "QUERY_TOO_COMPLEX": 400,
    "DOCUMENT_TOO_LARGE": 413,
    "UNAUTHENTICATED": 401,
    "FORBIDDEN": 403,
    "TOO_MANY_ATTEMPTS": 429,
    "INVALID_CREDENTIALS": 401,
    "DATABASE_BUSY": 503,
}


@dataclass(frozen=True)
class Operation:
    """A stored GraphQL operation; ``name`` is the operation's name in ``document``.

    ``on_loop``: its resolvers touch no database and wait on nothing (``health``), so it runs
    on the event loop instead of a worker thread (a test checks it makes no query).
    ``short_write``: a mutation writing the rows of one task, quickly, and waiting on nothing
    outside the database; it runs on the write lane (:mod:`schema.stored`)."""

    document: str
    on_loop: bool = False
    short_write: bool = False
    name: str = field(init=False)

    def __post_init__(self) -> None:
        definition = parse(self.document).definitions[0]
        name = getattr(definition, "name", None)
        if name is None:
            raise ValueError("stored operations must be named")
        object.__setattr__(self, "name", name.value)


class OperationFailed(Exception):
    """A GraphQL error answered by an operation, with its ``extensions.code``."""

    def __init__(self, operation: Operation, code: str, message: str, extensions: dict[str, Any]):
        super().__init__(message)
        self.operation = operation
        self.code = code
        self.message = message
        self.extensions = extensions

    @property
    def status(self) -> int:
        return STATUS_BY_CODE.get(self.code, 500)

    @property
    def messages(self) -> list[str]:
        errors = self.extensions.get("errors")
        return list(errors) if isinstance(errors, list) and errors else [self.message]


class RestError(Exception):
    """An answer decided by the adapter itself (bad request shape and the like)."""

    def __init__(self, status: int, body: Any, operation: Operation | None = None):
        super().__init__(str(body))
        self.status = status
        self.body = body
        self.operation = operation


def error_body(status: int, detail: str, **extra: Any) -> dict[str, Any]:
    """Label Studio's error envelope, without tracebacks (compat: general rules)."""
    return {"status": status, "detail": detail, **extra}


def bad_request(detail: str, status: int = 400) -> RestError:
    return RestError(status, error_body(status, detail))


class FastJSONResponse(JSONResponse):
    """JSON rendered by orjson (compact UTF-8, as Starlette's); values orjson does not take
    (integers beyond 64 bits) fall back to the standard library."""

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)
        except (TypeError, orjson.JSONEncodeError):
            return super().render(content)


def answer(
    body: Any, status: int = 200, operation: Operation | None = None, indent: int | None = None
) -> Response:
    headers = {OPERATION_HEADER: operation.name} if operation else None
    if body is None and status in (201, 204):
        return Response(status_code=status, headers=headers, media_type="application/json")
    if indent is not None:
        text = json.dumps(body, ensure_ascii=False, indent=indent)
        return Response(text, status, headers=headers, media_type="application/json")
    return FastJSONResponse(body, status, headers=headers)


async def execute(
    request: Request, operation: Operation, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run a stored operation for this request; raise :class:`OperationFailed` on error."""
    context = request_context(request, confined=True)
    if operation.on_loop:
        result = schema.stored_operations.execute(
            operation.document, variables or {}, context, operation.name
        )
    else:
        pool = "write_lane" if operation.short_write else "operation_threads"
        threads = state_value(request.app.state, pool)
        result = await schema.execute_stored(
            operation.document, variables or {}, context, operation.name, threads
        )
    if result.errors:
        error = result.errors[0]
        extensions = dict(error.extensions or {})
        code = str(extensions.get("code", "INTERNAL_SERVER_ERROR"))
        raise OperationFailed(operation, code, error.message, extensions)
    assert result.data is not None
    return result.data


def _is_json(request: Request) -> bool:
    content_type = request.headers.get("content-type", "")
    return content_type.split(";")[0].strip().lower() == "application/json"


def content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _parse(raw: bytes, max_depth: int) -> Any:
    """Decode a body; lone surrogates and non-finite numbers are refused naming the field."""
    check_json_depth(raw, max_depth)
    return loads_storable(raw)


def _parse_large(raw: bytes, max_depth: int) -> Any:
    with paused_gc():
        return _parse(raw, max_depth)


async def read_json(request: Request, default: Any = None) -> Any:
    """The JSON body (only with Content-Type application/json, as Label Studio); ``default``
    without one. Malformed or too deeply nested JSON, lone UTF-16 surrogates and non-finite
    numbers are a 400."""
    if not _is_json(request):
        return default
    raw = await request.body()
    if not raw.strip():
        return default
    max_depth = state_value(request.app.state, "settings").max_json_depth
    try:
        if len(raw) > LARGE_BODY:
            return await anyio.to_thread.run_sync(_parse_large, raw, max_depth)
        return _parse(raw, max_depth)
    except DomainError as exc:
        raise bad_request(exc.message) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"Malformed JSON body: {exc}") from None


@contextlib.asynccontextmanager
async def body_or_spool(
    request: Request, directory: Path, threshold: int
) -> AsyncIterator[bytes | Path]:
    """The request body: in memory (bytes) while it is at most ``threshold`` bytes, else in a
    temporary file in ``directory`` (its path; removed afterwards). A body declaring a larger
    Content-Length is written to the file from its first byte; one without (``Transfer-Encoding:
    chunked``) is moved there once it passes ``threshold`` while being read, so memory never
    holds more than ``threshold`` bytes of it. The body size limit (``BodyGuard``) is
    enforced on the same read, chunk by chunk."""
    chunks: list[bytes] = []
    size = 0
    stream = request.stream()
    if _declared_length(request) <= threshold:
        async for chunk in stream:
            chunks.append(chunk)
            size += len(chunk)
            if size > threshold:
                break
        else:
            yield b"".join(chunks)
            return
    directory.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=directory, prefix="body-", suffix=".json")
    os.close(handle)
    path = Path(name)
    try:
        async with await anyio.open_file(path, "wb") as out:
            for chunk in chunks:
                await out.write(chunk)
            chunks.clear()
            async for chunk in stream:
                await out.write(chunk)
        yield path
    finally:
        path.unlink(missing_ok=True)


def _declared_length(request: Request) -> int:
    raw = request.headers.get("content-length", "")
    return int(raw) if raw.isdigit() else 0


def replayed(request: Request, body: bytes) -> Request:
    """A request like ``request`` whose body (already read by :func:`body_or_spool`) is
    ``body``."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(request.scope, receive)


# GraphQL's Int: the range of every id the server hands out (PostgreSQL's SERIAL columns).
INT_MIN, INT_MAX = -(2**31), 2**31 - 1


def query_int(request: Request, name: str, default: int) -> int:
    """An integer query parameter, clamped to GraphQL's Int range (a page beyond the last
    one is an empty page however far beyond it is)."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"{name} must be an integer, not {raw[:40]!r}") from None
    return min(max(value, INT_MIN), INT_MAX)


def query_paging(request: Request, operation: Operation) -> tuple[int, int]:
    """``?page`` (default 1) and ``?page_size`` (default 10); Label Studio's 422 when either
    is below 1."""
    page = query_int(request, "page", 1)
    page_size = query_int(request, "page_size", 10)
    if page < 1 or page_size < 1:
        raise RestError(422, error_body(422, "Incorrect page or page_size"), operation)
    return page, page_size


def path_id(request: Request, name: str, what: str) -> int:
    """An id from the path; one that is no integer, or outside the range of ids (GraphQL's
    Int), names nothing: 404, as any other unknown id."""
    raw = request.path_params[name]
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not INT_MIN <= value <= INT_MAX:
        shown = raw if len(raw) <= 40 else raw[:40] + "…"
        raise RestError(404, error_body(404, f"{what} {shown} not found")) from None
    return value


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def parse_flag(raw: str | None, name: str) -> bool | None:
    """A boolean query flag (compat Q-9): None when absent."""
    if raw is None:
        return None
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise bad_request(f"{name} must be one of 1, true, yes, on, 0, false, no, off")


Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Endpoint:
    path: str
    method: str
    operation: Operation
    handler: Handler
    # The least role that may call it; None (undeclared) counts as admin-only, and a test
    # fails on any undeclared endpoint.
    permission: Role | None = None

    @property
    def required_role(self) -> Role:
        return Role.ADMIN if self.permission is None else self.permission


ENDPOINTS: list[Endpoint] = []


def endpoint(
    path: str,
    method: str,
    operation: Operation,
    *,
    under_api: bool = True,
    permission: Role | None = None,
) -> Callable[[Handler], Handler]:
    """Register ``handler`` as the answer to ``method /api<path>``, running ``operation``, for
    callers with at least the role ``permission`` (see :mod:`server.principal`)."""

    def register(handler: Handler) -> Handler:
        full_path = "/api" + path if under_api else path
        ENDPOINTS.append(Endpoint(full_path, method, operation, handler, permission))
        return handler

    return register
