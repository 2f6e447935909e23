"""startExport: an export as a background job with progress, the file on the job; a prediction
job left by a dead process is taken over, one stopped with its server is queued again; REST HEAD
of the export runs no export."""

from __future__ import annotations

import io
import json
import logging
import time
import zipfile
from typing import Any

import pytest
from starlette.testclient import TestClient

from rest_compat._http import OPERATION_HEADER
from server import db
from server.app import create_app
from server.models import Job, now_seconds
from tests.conftest import GraphQL
from tests.ml_backend import RunningBackend

START = """
mutation Start($format: String!) {
  startExport(format: $format) { id kind state total done }
}
"""
JOB = """
query Job($id: Int!) {
  job(id: $id) {
    id kind state total done progress attempts error
    export { format url downloadName taskCount }
  }
}
"""


def wait_for(gql: GraphQL, job_id: int, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = gql(JOB, {"id": job_id})["job"]
        if job["state"] in ("DONE", "FAILED"):
            return job
        assert time.monotonic() < deadline, f"job {job_id} still {job['state']}"
        time.sleep(0.02)


def test_start_export_runs_in_the_background_and_names_its_file(
    sentiment_project: TestClient, gql: GraphQL
) -> None:
    started = gql(START, {"format": "JSON"})["startExport"]
    assert started["kind"] == "export"
    assert started["state"] == "QUEUED"
    assert started["total"] == 1  # the labeled tasks of the fixture
    job = wait_for(gql, started["id"])
    assert job["state"] == "DONE", job
    assert (job["done"], job["progress"], job["attempts"]) == (1, 1.0, 1)
    export = job["export"]
    assert export["format"] == "JSON" and export["taskCount"] == 1
    assert export["downloadName"].endswith("-JSON.zip")
    response = sentiment_project.get(export["url"])
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        tasks = json.loads(archive.read("result.json"))
    assert len(tasks) == 1 and all(task["completions"] for task in tasks)


def test_start_export_refuses_an_unknown_format_at_once(client: TestClient, gql: GraphQL) -> None:
    error = gql.error(START, {"format": "PDF"})
    assert error["code"] == "INVALID"
    assert "JSON_MIN" in error["formats"]

    def jobs() -> int:
        return int(Job.select().count())

    assert db.with_connection(jobs) == 0


def test_a_prediction_job_of_a_dead_process_is_taken_over(
    sentiment_project: TestClient, gql: GraphQL, ml_backend: RunningBackend
) -> None:
    """A job left ``running`` by a process that died (its lease ran out) is claimed by this
    process's worker and finished."""
    add = 'mutation Add($url: String!) { addMlBackend(url: $url, name: "model") { id } }'
    gql(add, {"url": ml_backend.url})

    def orphan() -> int:
        with db.write_transaction():
            job = Job.create(
                project=gql.project_id,
                kind="predictions",
                params={"task_ids": [1, 2]},
                total=2,
                state="running",
                lease_owner="gone-host:4242:dead",
                heartbeat_at=now_seconds() - 60,
                lease_expires_at=now_seconds() - 30,
                attempts=1,
                done=1,
            )
        return int(job.id)

    job_id = db.with_connection(orphan)
    gql.ml.jobs.wake()
    job = wait_for(gql, job_id)
    assert job["state"] == "DONE", job
    assert (job["done"], job["attempts"]) == (2, 2)
    tasks = [sentiment_project.get(f"/api/tasks/{i}").json() for i in (1, 2)]
    assert all(task["predictions"] for task in tasks)


def test_head_of_the_rest_export_runs_no_export(
    sentiment_project: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="server.services.export.exporter"):
        response = sentiment_project.head("/api/project/export", params={"format": "JSON"})
        bad = sentiment_project.head("/api/project/export", params={"format": "NOPE"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["filename"].endswith("-JSON.zip")
    assert response.headers[OPERATION_HEADER] == "RestExportFormats"
    assert response.content == b""
    assert bad.status_code == 400
    assert not [r for r in caplog.records if r.getMessage().startswith("export ")]
    export_dir = sentiment_project.app.state.settings.export_dir  # type: ignore[attr-defined]
    assert not export_dir.exists() or not list(export_dir.iterdir())


def test_a_job_stopped_with_its_server_goes_back_to_the_queue(
    settings: Any, start_ml_backend: Any
) -> None:
    """A server that stops hands its running job back (not failed): another process, or this
    one started again, takes it up."""
    backend = start_ml_backend("--sleep", "0.5")
    with TestClient(create_app(settings)) as client:
        tasks = [{"text": f"t{i}"} for i in range(3)]
        assert client.post("/api/project/import", json=tasks).status_code == 201
        add = 'mutation Add($url: String!) { addMlBackend(url: $url, name: "slow") { id } }'
        post = client.post("/graphql", json={"query": add, "variables": {"url": backend.url}})
        assert "errors" not in post.json(), post.json()
        start = {"query": "mutation { startPredictionJob(allTasks: true) { id } }"}
        job_id = client.post("/graphql", json=start).json()["data"]["startPredictionJob"]["id"]
        deadline = time.monotonic() + 30
        while not backend.requests("/predict"):  # the job is calling the backend
            assert time.monotonic() < deadline
            time.sleep(0.02)

    def row() -> Job:
        found: Job = Job.get_by_id(job_id)
        return found

    job = db.with_connection(row)
    assert (job.state, job.attempts, job.lease_owner) == ("queued", 0, None)
