"""Subscriptions obey the same roles as queries: a real server with users, real WebSockets."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import TEST_DATABASE_URL
from tests.live_server import running_server
from tests.ws_client import PROTOCOLS, GraphQLSocket

pytestmark = pytest.mark.live

PASSWORD = "correct horse battery"
TASKS = "subscription { taskChanged { kind taskIds } }"
JOB = "subscription { jobProgress(id: 1) { state } }"


def _cli(project_dir: Path, *args: str, stdin: str = "") -> str:
    db = ["--db", TEST_DATABASE_URL] if TEST_DATABASE_URL else []
    command = [sys.executable, "-m", "server.cli", *args, "--project-dir", str(project_dir), *db]
    done = subprocess.run(
        command, input=stdin, capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout


def _token_of(project_dir: Path, name: str, role: str) -> str:
    _cli(project_dir, "user", "add", name, "--role", role, "--password-stdin", stdin=PASSWORD)
    shown = _cli(project_dir, "token", "create", name).split()
    return next(word for word in shown if word.startswith("lg_"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    project_dir = tmp_path_factory.mktemp("subscription-auth") / "project"
    with running_server(project_dir) as base:
        tokens = {
            "admin": _token_of(project_dir, "root", "admin"),
            "annotator": _token_of(project_dir, "ann", "annotator"),
        }
        with httpx.Client(base_url=base, timeout=10) as http:
            deadline = time.monotonic() + 15
            while http.get("/api/project").status_code != 401:  # the server learns of users
                assert time.monotonic() < deadline, "the server never required a user"
                time.sleep(0.2)
        yield base, tokens


def _headers(token: str | None) -> dict[str, Any]:
    return {"additional_headers": {"Authorization": f"Token {token}"}} if token else {}


def _error_code(ws: GraphQLSocket, op_id: str) -> str:
    message = ws.message_for(op_id)
    assert message["type"] in ("error", "next", "data"), message
    payload = message["payload"]
    if isinstance(payload, list):  # graphql-transport-ws: a list of errors
        error = payload[0]
    elif "errors" in payload:  # a result with errors
        error = payload["errors"][0]
    else:  # graphql-ws: one error object
        error = payload
    return str(error["extensions"]["code"])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_anonymous_subscribers_are_unauthenticated(
    server: tuple[str, dict[str, str]], protocol: str
) -> None:
    base, _ = server
    with GraphQLSocket(base, protocol) as ws:
        ws.subscribe("t", TASKS)
        assert _error_code(ws, "t") == "UNAUTHENTICATED"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_annotators_hear_tasks_but_not_jobs(
    server: tuple[str, dict[str, str]], protocol: str
) -> None:
    base, tokens = server
    admin = {"Authorization": f"Token {tokens['admin']}"}
    with (
        httpx.Client(base_url=base, timeout=10, headers=admin) as http,
        GraphQLSocket(base, protocol, **_headers(tokens["annotator"])) as ws,
    ):
        ws.subscribe("j", JOB)
        assert _error_code(ws, "j") == "FORBIDDEN"

        def poke() -> None:
            assert http.post("/api/project/import", json=[{"text": "poke"}]).is_success

        ws.subscribe_confirmed("t", TASKS, poke)
        answer = http.post("/api/project/import", json=[{"text": "heard"}])
        task_id = answer.json()["new_task_ids"][0]
        data = ws.data_for("t")
        assert data["taskChanged"] == {"kind": "CREATED", "taskIds": [task_id]}
