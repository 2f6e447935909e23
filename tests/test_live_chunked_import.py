"""A chunked JSON body (no Content-Length) larger than the spool threshold, sent to a real
uvicorn process: it is written to a spool file while it arrives, not read into memory
(a 38 MB chunked body peaked at 521 MB before)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rest_compat.imports import SPOOL_JSON_BYTES
from tests.conftest import fixture_text
from tests.live_server import running_server

pytestmark = pytest.mark.live
CHUNK = 1024 * 1024
GUARD_SECONDS = 60  # only ever reached when the body is not spooled: the test then fails


def padded_body(spool_dir: Path, seen: list[Path]) -> Iterator[bytes]:
    """``[`` + whitespace past the spool threshold + one task: between the two, wait until the
    server has created its spool file (``body-*.json``) and note it in ``seen``."""
    yield b"["
    sent = 1
    while sent <= SPOOL_JSON_BYTES:
        yield b" " * CHUNK
        sent += CHUNK
    deadline = time.monotonic() + GUARD_SECONDS
    while not seen:
        seen.extend(spool_dir.glob("body-*.json"))
        assert time.monotonic() < deadline, "the server never spooled the chunked body"
        time.sleep(0.02)
    yield b'{"text": "sent in chunks"}]'


def test_chunked_json_body_is_spooled_and_imported(tmp_path: Path) -> None:
    project = tmp_path / "live"
    seen: list[Path] = []
    with running_server(project) as base, httpx.Client(base_url=base, timeout=60) as http:
        config = fixture_text("configs/sentiment.xml")
        assert http.post("/api/project/config", data={"label_config": config}).status_code == 201
        response = http.post(
            "/api/project/import",
            content=padded_body(project / "import-tmp", seen),
            headers={"content-type": "application/json"},
        )
        assert "content-length" not in response.request.headers
        assert response.status_code == 201, response.text
        assert response.json()["task_count"] == 1
        assert [t["data"] for t in http.get("/api/tasks").json()["tasks"]] == [
            {"text": "sent in chunks"}
        ]
    assert len(seen) == 1 and not seen[0].exists()  # spooled, then removed
