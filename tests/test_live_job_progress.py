"""jobProgress over a WebSocket: a prediction job against the example ML backend."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import fixture_json, fixture_text
from tests.live_server import running_server
from tests.ml_backend import RunningBackend
from tests.ws_client import PROTOCOLS, GraphQLSocket

pytestmark = pytest.mark.live
PROGRESS = "subscription ($id: Int!) { jobProgress(id: $id) { jobId state total done failed } }"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_job_progress_runs_to_done_then_completes(
    tmp_path: Path, ml_backend: RunningBackend, protocol: str
) -> None:
    env = {"LABELGRAPH_ML_ALLOW_PRIVATE": "true"}
    with (
        running_server(tmp_path / "jobs", env=env) as base,
        httpx.Client(base_url=base, timeout=30) as http,
        GraphQLSocket(base, protocol) as ws,
    ):
        config = fixture_text("configs/sentiment.xml")
        assert http.post("/api/project/config", data={"label_config": config}).is_success
        tasks = fixture_json("tasks/sentiment_mixed.json")
        assert http.post("/api/project/import", json=tasks).status_code == 201
        backends = "mutation($b: [MlBackendInput!]!) { setMlBackends(backends: $b) { name } }"
        answer = http.post(
            "/graphql",
            json={"query": backends, "variables": {"b": [{"name": "m", "url": ml_backend.url}]}},
        ).json()
        assert "errors" not in answer, answer
        start = "mutation { startPredictionJob(allTasks: true) { id total } }"
        job = http.post("/graphql", json={"query": start}).json()["data"]["startPredictionJob"]

        ws.subscribe("j", PROGRESS, {"id": job["id"]})
        states = []
        while True:
            message = ws.message_for("j", timeout=30)
            if message["type"] == "complete":
                break
            assert message["type"] in ("next", "data"), message
            states.append(message["payload"]["data"]["jobProgress"])
        # The current state first, then each change, until the job is done.
        assert states[-1]["state"] == "DONE"
        assert states[-1]["done"] + states[-1]["failed"] == job["total"] == 5
        assert {s["jobId"] for s in states} == {job["id"]}
        dones = [s["done"] for s in states]
        assert dones == sorted(dones)
