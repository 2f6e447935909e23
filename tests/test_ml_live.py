"""End to end: ``labelgraph start --init --ml-backends URL`` (uvicorn on 127.0.0.1) with the
example ML backend as a second process (marker ``live``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_DATABASE_URL, _reset_postgres, fixture_text
from tests.ml_backend import RunningBackend
from tests.test_live import free_port

pytestmark = pytest.mark.live


def test_start_with_an_ml_backend(tmp_path: Path, ml_backend: RunningBackend) -> None:
    port = free_port()
    command = [
        *(sys.executable, "-m", "server.cli", "start", str(tmp_path / "live_ml"), "--init"),
        *("--port", str(port), "--log-level", "WARNING"),
        *("--ml-backends", f"model={ml_backend.url}"),
    ]
    if TEST_DATABASE_URL:
        _reset_postgres(TEST_DATABASE_URL)
        command += ["--db", TEST_DATABASE_URL]
    process = subprocess.Popen(command, cwd=Path(__file__).parents[1], env=dict(os.environ))
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
        with httpx.Client(base_url=base, timeout=10) as http:
            config = fixture_text("configs/sentiment.xml")
            assert http.post("/api/project/config", data={"label_config": config}).is_success
            assert http.post("/api/project/import", json=[{"text": "a"}, {"text": "b"}]).is_success
            assert http.get("/api/models").json() == {"models": ["model"]}
            task = http.get("/api/project/next").json()
            assert task["predictions"][0]["created_by"] == "model"
            ready = http.post("/api/models/predictions?mode=all_tasks")
            assert ready.json() == {"detail": "predictions are ready"}
            assert http.get("/api/tasks").json()["total_predictions"] == 2
        setup = ml_backend.requests("/setup")[0]["body"]
        assert setup["hostname"] == f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
