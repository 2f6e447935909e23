"""An import is all-or-nothing even when its server process dies: SIGKILL in the middle of a
large import (chunks stored, not committed) leaves no task of it, on SQLite and PostgreSQL, and
the restarted server takes the next import as if the killed one had never begun.

A real ``labelgraph start`` process: the import's progress subscription says when chunks are
stored; the process is then killed with SIGKILL (no shutdown code runs) and started again on
the same project directory and database.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from server.services.imports.pipeline import CHUNK
from tests.conftest import TEST_DATABASE_URL, _reset_postgres
from tests.live_server import free_port
from tests.ws_client import TRANSPORT_WS, GraphQLSocket

IMPORTS = "subscription { importProgress { state tasks } }"
TASKS = 12 * CHUNK  # an import of many chunks: long enough to be killed in the middle
KILL_AFTER = 2 * CHUNK  # stored (not committed) when the process is killed


@contextlib.contextmanager
def labelgraph(project: Path, *, reset: bool) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``labelgraph start PROJECT --init`` on a free port; yield the process and its base URL
    once ``/api/health`` answers; stop it unless it is dead already."""
    port = free_port()
    command = [sys.executable, "-m", "server.cli", "start", str(project), "--init"]
    command += ["--port", str(port), "--log-level", "WARNING"]
    if TEST_DATABASE_URL:
        if reset:
            _reset_postgres(TEST_DATABASE_URL)
        command += ["--db", TEST_DATABASE_URL]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LABELGRAPH_")}
    process = subprocess.Popen(command, cwd=Path(__file__).parents[1], env=environment)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(base + "/api/health", timeout=1).status_code == 200:
                    break
            assert process.poll() is None, "the server exited during start-up"
            assert time.monotonic() < deadline, "the server did not answer /api/health"
            time.sleep(0.1)
        yield process, base
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def task_count(http: httpx.Client) -> int:
    count: int = http.get("/api/project").json()["task_count"]
    return count


def stored_ids(http: httpx.Client) -> list[int]:
    query = "{ project { tasks(first: 1000) { nodes { id } } } }"
    answer = http.post("/graphql", json={"query": query}).json()
    assert "errors" not in answer, answer
    return [node["id"] for node in answer["data"]["project"]["tasks"]["nodes"]]


def test_an_import_killed_in_the_middle_stores_nothing(tmp_path: Path) -> None:
    project = tmp_path / "labels"
    items = [{"text": f"task {n} " + "words to index " * 8} for n in range(TASKS)]
    outcome: dict[str, Any] = {}

    with labelgraph(project, reset=True) as (process, base):
        http = httpx.Client(base_url=base, timeout=60)
        assert http.post("/api/project/import", json=[{"text": "kept"}]).status_code == 201
        with GraphQLSocket(base, TRANSPORT_WS) as ws:
            ws.subscribe("i", IMPORTS)

            def run_import() -> None:
                try:
                    outcome["answer"] = http.post("/api/project/import", json=items)
                except httpx.TransportError as error:
                    outcome["error"] = error

            importer = threading.Thread(target=run_import)
            importer.start()
            while True:  # until enough chunks are stored in the import's transaction
                progress = ws.data_for("i", timeout=60)["importProgress"]
                assert progress["state"] == "running", progress
                if progress["tasks"] >= KILL_AFTER:
                    break
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=15)
            importer.join(timeout=60)
        http.close()
    # The import never answered: it was cut off mid-way, not finished before the kill.
    assert "answer" not in outcome, outcome["answer"].text[:200]
    assert isinstance(outcome.get("error"), httpx.TransportError)

    with labelgraph(project, reset=False) as (_, base), httpx.Client(base_url=base) as http:
        # Nothing of the killed import: the one task imported before it, alone.
        assert task_count(http) == 1
        (kept,) = stored_ids(http)
        assert http.get(f"/api/tasks/{kept}").json()["data"] == {"text": "kept"}
        # The next import is whole and counted as usual.
        report = http.post("/api/project/import", json=items[: CHUNK + 3])
        assert report.status_code == 201, report.text
        assert report.json()["task_count"] == CHUNK + 3
        assert task_count(http) == CHUNK + 4
        ids = stored_ids(http)
        assert len(ids) == len(set(ids)) == min(1000, CHUNK + 4)
