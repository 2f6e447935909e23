"""The server's access log: uvicorn's line for every HTTP request, at a fraction of its cost.

uvicorn writes its access line through :mod:`logging` for every request: a ``LogRecord``, its
``AccessFormatter`` (a copy of the record, the status phrase looked up), then a write and a
flush of stdout. On this project's 2-core machine that was 50-100 µs of CPU per request, where
a whole ``/api/health`` costs ~190 µs (``bench/README.md``). :class:`AccessLog` writes the same
line (``INFO:     127.0.0.1:50312 - "GET /api/health HTTP/1.1" 200 OK``) with one f-string,
keeps the lines of a busy moment together and writes them to stdout at most
:data:`FLUSH_SECONDS` later, or at once when :data:`FLUSH_LINES` are waiting, from the event
loop: a line may appear up to a quarter of a second after the response was sent. Query strings
go through :func:`server.logs.redact_text`, as every other log line does (uvicorn's did not).

``labelgraph start`` turns uvicorn's own access log off and wraps its app in this one when the
log level is INFO or lower (as uvicorn's was); in-process apps (tests, benchmarks) have none.
"""

from __future__ import annotations

import asyncio
import atexit
import http
import logging
import sys
from typing import IO
from urllib.parse import quote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.logs import redact_text

FLUSH_SECONDS = 0.25
FLUSH_LINES = 256
PIECE = 4000  # characters per write: under Linux's PIPE_BUF (4096 bytes)
_PHRASES = {status.value: f"{status.value} {status.phrase}" for status in http.HTTPStatus}


def status_text(status: int) -> str:
    return _PHRASES.get(status) or f"{status} "


def access_line(scope: Scope, status: int) -> str:
    """uvicorn's access line (without colours) for a request answered with ``status``."""
    client = scope.get("client")
    address = f"{client[0]}:{client[1]}" if client else ""
    path = quote(scope.get("root_path", "") + scope["path"])
    query = scope.get("query_string")
    if query:
        path = redact_text(f"{path}?{query.decode('ascii', 'backslashreplace')}")
    return (
        f'INFO:     {address} - "{scope["method"]} {path} HTTP/{scope["http_version"]}" '
        f"{status_text(status)}\n"
    )


class LineBuffer:
    """Lines written to ``stream`` in batches, from the event loop that adds them."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream
        self._lines: list[str] = []
        self._timer: asyncio.TimerHandle | None = None
        atexit.register(self.flush)  # what a stopping worker still holds

    def add(self, line: str) -> None:
        lines = self._lines
        lines.append(line)
        if len(lines) >= FLUSH_LINES:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._lines:
            return
        lines, self._lines = self._lines, []
        stream = self._stream or sys.stdout
        try:
            for piece in pieces(lines):
                stream.write(piece)
                stream.flush()
        except (OSError, ValueError):  # stdout closed or gone: the log is lost, not the server
            pass


def pieces(lines: list[str]) -> list[str]:
    """``lines`` joined into pieces of at most :data:`PIECE` characters (a longer line alone):
    each written with its own flush, so that on a pipe shared by several workers every write is
    atomic (POSIX keeps writes of up to PIPE_BUF, 4096 bytes on Linux, whole) and no two
    workers' lines are cut into each other. Lines are ASCII (paths are %-quoted)."""
    joined: list[str] = []
    current: list[str] = []
    size = 0
    for line in lines:
        if current and size + len(line) > PIECE:
            joined.append("".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line)
    if current:
        joined.append("".join(current))
    return joined


class AccessLog:
    """Pure-ASGI middleware adding one access line per HTTP response to a :class:`LineBuffer`."""

    def __init__(self, app: ASGIApp, lines: LineBuffer | None = None) -> None:
        self.app = app
        self.lines = lines or LineBuffer()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        add = self.lines.add

        async def logged_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                add(access_line(scope, message["status"]))
            await send(message)

        await self.app(scope, receive, logged_send)


def with_access_log(app: ASGIApp, log_level: str) -> ASGIApp:
    """``app`` with the access log when ``log_level`` lets INFO lines through."""
    level = logging.getLevelName(log_level.upper())
    if isinstance(level, int) and level <= logging.INFO:
        return AccessLog(app)
    return app
