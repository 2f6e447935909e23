"""End to end: ``labelgraph start --init --ml-backends URL`` (uvicorn on 127.0.0.1) with the
example ML backend as a second process (marker ``live``)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import fixture_text
from tests.live_server import running_server
from tests.ml_backend import RunningBackend

pytestmark = pytest.mark.live


def test_start_with_an_ml_backend(tmp_path: Path, ml_backend: RunningBackend) -> None:
    backend = f"model={ml_backend.url}"
    with (
        running_server(tmp_path / "live_ml", "--ml-backends", backend) as base,
        httpx.Client(base_url=base, timeout=10) as http,
    ):
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
    assert setup["hostname"] == base
