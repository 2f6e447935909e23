"""A real ``labelgraph start`` process on 127.0.0.1 for end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.conftest import TEST_DATABASE_URL, _reset_postgres


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def running_server(
    project_dir: Path, *extra_args: str, reset: bool = True, env: dict[str, str] | None = None
) -> contextlib.AbstractContextManager[str]:
    """``labelgraph start PROJECT_DIR --init`` as a real process (:func:`running_labelgraph`)."""
    return running_labelgraph(
        "start", str(project_dir), "--init", *extra_args, reset=reset, env=env
    )


@contextlib.contextmanager
def running_labelgraph(
    *args: str, reset: bool = True, env: dict[str, str] | None = None
) -> Iterator[str]:
    """Run ``labelgraph ARGS`` on a free port (on the test database, emptied first unless
    ``reset`` is false: a second process on the same data); yield its base URL once
    ``/api/health`` answers; always stop it. ``env``: extra environment variables."""
    port = free_port()
    options = ["--port", str(port), "--log-level", "WARNING"]
    command = [sys.executable, "-m", "server.cli", *args, *options]
    if TEST_DATABASE_URL:
        if reset:
            _reset_postgres(TEST_DATABASE_URL)
        command += ["--db", TEST_DATABASE_URL]
    environment = {**os.environ, **(env or {})}
    process = subprocess.Popen(command, cwd=Path(__file__).parents[1], env=environment)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(base + "/api/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, "the server exited during start-up"
            assert time.monotonic() < deadline, "the server did not answer /api/health"
            time.sleep(0.1)
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
