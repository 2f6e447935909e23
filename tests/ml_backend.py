"""The example ML backend (``examples/ml_backend/server.py``) as a real process on 127.0.0.1.

``start_ml_backend(*options)`` starts one on a free port (the backend picks it and prints its
URL) recording every request it receives; all are stopped when the test ends.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import select
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from server.app import create_app
from server.settings import Settings

SENTIMENT = Path(__file__).parent / "fixtures" / "configs" / "sentiment.xml"
EXAMPLE = Path(__file__).parents[1] / "examples" / "ml_backend" / "server.py"


@dataclass
class RunningBackend:
    url: str
    record: Path

    def requests(self, path: str | None = None) -> list[dict[str, Any]]:
        """Requests received so far (optionally only those to ``path``), oldest first."""
        if not self.record.exists():
            return []
        lines = self.record.read_text(encoding="utf-8").splitlines()
        entries = [json.loads(line) for line in lines if line.strip()]
        return [e for e in entries if path is None or e["path"] == path]

    def paths(self) -> list[str]:
        return [f"{e['method']} {e['path']}" for e in self.requests()]

    def clear(self) -> None:
        self.record.write_text("", encoding="utf-8")


@contextlib.contextmanager
def run_backend(directory: Path, *options: str) -> Iterator[RunningBackend]:
    directory.mkdir(parents=True, exist_ok=True)
    record = directory / "requests.jsonl"
    command = [sys.executable, str(EXAMPLE), "--port", "0", "--record", str(record), *options]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    try:
        ready, _, _ = select.select([process.stdout], [], [], 15)
        assert ready, "the example ML backend did not start"
        line = process.stdout.readline()
        assert line.startswith("listening on "), f"unexpected first line {line!r}"
        yield RunningBackend(url=line.split()[-1], record=record)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


@pytest.fixture
def start_ml_backend(tmp_path: Path) -> Iterator[Callable[..., RunningBackend]]:
    """Start example backends with the given command-line options; stopped after the test."""
    with contextlib.ExitStack() as stack:
        count = 0

        def start(*options: str) -> RunningBackend:
            nonlocal count
            count += 1
            return stack.enter_context(run_backend(tmp_path / f"ml_backend_{count}", *options))

        yield start


@pytest.fixture
def ml_backend(start_ml_backend: Callable[..., RunningBackend]) -> RunningBackend:
    """One example backend with default options."""
    return start_ml_backend()


def dead_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connections are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def app_with_settings(settings: Settings) -> Iterator[Callable[..., TestClient]]:
    """Clients for apps whose settings differ from the test defaults (the sentiment config
    set, no tasks); stopped after the test."""
    with contextlib.ExitStack() as stack:

        def make(**overrides: Any) -> TestClient:
            app = create_app(dataclasses.replace(settings, **overrides))
            client = stack.enter_context(TestClient(app))
            config = SENTIMENT.read_text(encoding="utf-8")
            assert client.post("/api/project/config", data={"label_config": config}).is_success
            return client

        yield make
