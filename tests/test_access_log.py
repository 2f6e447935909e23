"""The access log of ``labelgraph start`` (server/access_log.py): uvicorn's line, in batches."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from uvicorn.logging import AccessFormatter

from server import access_log
from server.access_log import AccessLog, LineBuffer, access_line, with_access_log
from tests.cli_process import labelgraph_command
from tests.live_server import free_port


def scope(path: str = "/api/tasks/7", query: bytes = b"", **extra: Any) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "path": path,
        "root_path": "",
        "query_string": query,
        "http_version": "1.1",
        "client": ("127.0.0.1", 50312),
        **extra,
    }


def uvicorn_line(client: str, method: str, path: str, version: str, status: int) -> str:
    """The line uvicorn's own access log writes (its default format, no colours)."""
    formatter = AccessFormatter(
        '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False
    )
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d', None, None
    )
    record.args = (client, method, path, version, status)
    return formatter.format(record) + "\n"


@pytest.mark.parametrize(
    ("request_scope", "status", "path"),
    [
        (scope(), 200, "/api/tasks/7"),
        (scope(query=b"page=2&page_size=10"), 404, "/api/tasks/7?page=2&page_size=10"),
        (scope(method="POST", path="/api/ü x"), 201, "/api/%C3%BC%20x"),
        (scope(http_version="1.0"), 599, "/api/tasks/7"),
    ],
)
def test_the_line_is_uvicorns(request_scope: dict[str, Any], status: int, path: str) -> None:
    expected = uvicorn_line(
        "127.0.0.1:50312", request_scope["method"], path, request_scope["http_version"], status
    )
    assert access_line(request_scope, status) == expected


def test_secrets_in_query_strings_are_masked() -> None:
    line = access_line(scope(query=b"token=lg_abcdefghijklmnopqrstuvwx&page=2"), 200)
    assert "abcdefghijklmnop" not in line
    assert "token=lg_********&page=2" in line


def test_a_line_is_ascii_whatever_the_query_bytes() -> None:
    line = access_line(scope(query="q=é".encode() + b"\xff"), 200)
    assert line.isascii() and "?q=\\xc3\\xa9\\xff HTTP/1.1" in line


def test_a_batch_is_written_in_pieces_that_a_pipe_keeps_whole() -> None:
    """Several workers share stdout: each write stays under PIPE_BUF, and no line is cut."""
    writes: list[str] = []

    class Stream(io.StringIO):
        def write(self, text: str) -> int:
            writes.append(text)
            return len(text)

    lines = [
        f'INFO:     127.0.0.1:{n} - "GET /api/tasks/{n}{"x" * (n % 90)} HTTP/1.1" 200 OK\n'
        for n in range(300)
    ] + ["y" * 5000 + "\n"]
    buffer = LineBuffer(Stream())
    buffer._lines = list(lines)
    buffer.flush()
    assert "".join(writes) == "".join(lines)
    assert all(len(w) <= access_log.PIECE for w in writes[:-1]) and writes[-1] == lines[-1]
    assert all(w.endswith("\n") for w in writes) and len(writes) > 2


def test_a_request_without_client_address() -> None:
    assert access_line(scope(client=None), 200).startswith('INFO:      - "GET /api/tasks/7 ')


def test_lines_are_written_together_after_a_moment_or_when_many_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(access_log, "FLUSH_SECONDS", 0.05)
    monkeypatch.setattr(access_log, "FLUSH_LINES", 5)
    stream = io.StringIO()
    lines = LineBuffer(stream)

    async def scenario() -> list[str]:
        seen = []
        lines.add("a\n")
        lines.add("b\n")
        seen.append(stream.getvalue())  # nothing yet: the batch waits for its timer
        await asyncio.sleep(0.15)
        seen.append(stream.getvalue())
        for name in "cdefg":
            lines.add(f"{name}\n")
        seen.append(stream.getvalue())  # the fifth waiting line wrote the batch at once
        return seen

    assert asyncio.run(scenario()) == ["", "a\nb\n", "a\nb\nc\nd\ne\nf\ng\n"]
    lines.flush()  # nothing left: writes nothing more
    assert stream.getvalue() == "a\nb\nc\nd\ne\nf\ng\n"


def test_the_middleware_logs_each_http_response_once() -> None:
    stream = io.StringIO()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 418, "headers": []})
        await send({"type": "http.response.body", "body": b"tea"})

    async def scenario() -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []

        async def send(message: Any) -> None:
            sent.append(message)

        logged = AccessLog(app, LineBuffer(stream))
        await logged(scope(), None, send)  # type: ignore[arg-type]
        logged.lines.flush()
        return sent

    sent = asyncio.run(scenario())
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert stream.getvalue() == uvicorn_line("127.0.0.1:50312", "GET", "/api/tasks/7", "1.1", 418)


def test_only_levels_that_show_info_get_the_access_log() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        pass

    assert isinstance(with_access_log(app, "info"), AccessLog)
    assert isinstance(with_access_log(app, "DEBUG"), AccessLog)
    assert with_access_log(app, "WARNING") is app
    assert with_access_log(app, "ERROR") is app


def test_a_real_server_writes_one_line_per_request(tmp_path: Path) -> None:
    """``labelgraph start`` at INFO: uvicorn's own access log is off (no line twice), ours writes
    every request to stdout."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LABELGRAPH_")}
    process = subprocess.Popen(
        [*labelgraph_command(), "start", str(tmp_path / "p"), "--init", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=environment,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(base + "/api/health", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        with httpx.Client(base_url=base) as client:
            assert client.get("/api/tasks/12345").status_code == 404
            assert client.get("/api/health?token=lg_abcdefghijklmnopqrstuvwx").status_code == 200
        time.sleep(3 * access_log.FLUSH_SECONDS)
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=20)
    lines = [line for line in output.splitlines() if '"GET /api/' in line]
    assert '"GET /api/tasks/12345 HTTP/1.1" 404 Not Found' in lines[-2]
    assert lines[-2].startswith("INFO:     127.0.0.1:")
    assert lines[-1].endswith('"GET /api/health?token=lg_******** HTTP/1.1" 200 OK')
    assert sum('"GET /api/tasks/12345 ' in line for line in lines) == 1
