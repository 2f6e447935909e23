"""Two server processes on one PostgreSQL and one S3 file store (a local moto server), as two
hosts behind a load balancer would run: files are served by either, no write is lost, no job
runs twice, and a job whose process is killed with SIGKILL is taken over by the other process.

Each "host" has its own project directory (of the same name, so both open the same project).
Jobs get a short lease (``LABELGRAPH_JOB_LEASE=2``) so the takeover happens within seconds.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from server import db
from tests.conftest import FIXTURES, TEST_DATABASE_URL, _reset_postgres
from tests.live_server import free_port
from tests.ml_backend import RunningBackend
from tests.peewee_typed import execute_sql
from tests.storage_fixtures import S3_CREDENTIALS, Bucket

pytestmark = pytest.mark.skipif(
    not TEST_DATABASE_URL, reason="several processes need PostgreSQL (LABELGRAPH_TEST_DATABASE_URL)"
)

JOB = "query Job($id: Int!) { job(id: $id) { id state done total attempts error } }"
START_PREDICTIONS = "mutation Start($ids: [Int!]) { startPredictionJob(taskIds: $ids) { id } }"
START_EXPORT = 'mutation { startExport(format: "JSON") { id } }'
EXPORT_URL = "query Job($id: Int!) { job(id: $id) { export { url } } }"
JOB_ENV = {
    "LABELGRAPH_JOB_LEASE": "2",
    "LABELGRAPH_JOB_POLL_INTERVAL": "0.2",
    "LABELGRAPH_ML_BATCH_SIZE": "1",
    "LABELGRAPH_ML_JOB_CONCURRENCY": "1",
    "LABELGRAPH_ML_ALLOW_PRIVATE": "true",
}


class Host:
    """One ``labelgraph start`` process with a project directory of its own."""

    def __init__(self, process: subprocess.Popen[bytes], base: str) -> None:
        self.process = process
        self.base = base
        self.http = httpx.Client(base_url=base, timeout=30)

    def gql(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        body = {"query": query, "variables": variables or {}}
        answer = self.http.post("/graphql", json=body).json()
        assert "errors" not in answer, answer
        return answer["data"]


@contextlib.contextmanager
def hosts(
    tmp_path: Path, count: int, *extra: str, env: dict[str, str] | None = None
) -> Iterator[list[Host]]:
    _reset_postgres(TEST_DATABASE_URL)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LABELGRAPH_")}
    environment.update(JOB_ENV)
    environment.update(env or {})
    started: list[Host] = []
    try:
        for number in range(count):
            project = tmp_path / f"host-{number}" / "labels"
            project.parent.mkdir(parents=True)
            port = free_port()
            command = [sys.executable, "-m", "server.cli", "start", str(project), "--init"]
            command += ["--db", TEST_DATABASE_URL, "--port", str(port), "--log-level", "WARNING"]
            process = subprocess.Popen([*command, *extra], env=environment)
            host = Host(process, f"http://127.0.0.1:{port}")
            started.append(host)
            _wait_healthy(host)  # one after the other: the first one creates the project
        yield started
    finally:
        for host in started:
            host.http.close()
            if host.process.poll() is None:
                host.process.send_signal(signal.SIGINT)
                try:
                    host.process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    host.process.kill()


def _wait_healthy(host: Host) -> None:
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(httpx.TransportError):
            if host.http.get("/api/health", timeout=1).status_code == 200:
                return
        assert host.process.poll() is None, "a server exited during start-up"
        assert time.monotonic() < deadline, "a server did not answer /api/health"
        time.sleep(0.1)


def _until(check: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.1)


def _finished(host: Host, job_id: int) -> dict[str, Any] | None:
    job: dict[str, Any] = host.gql(JOB, {"id": job_id})["job"]
    return job if job["state"] in ("DONE", "FAILED") else None


def _predict_calls(backend: RunningBackend) -> Counter[int]:
    return Counter(
        task["id"] for request in backend.requests("/predict") for task in request["body"]["tasks"]
    )


def _lease_owner_pid(job_id: int) -> int | None:
    database = db.make_database(TEST_DATABASE_URL, 1)
    database.connect()
    try:
        row = execute_sql(
            database, "SELECT lease_owner FROM job WHERE id = %s AND state = 'running'", (job_id,)
        ).fetchone()
    finally:
        database.close()
    return int(row[0].split(":")[1]) if row and row[0] else None


def _get(host: Host, url: str) -> bytes:
    """A file route's bytes; a redirect to the file store is followed."""
    response = host.http.get(url, follow_redirects=True)
    assert response.status_code == 200, response.text
    return response.content


def test_two_processes_lose_no_write_and_run_each_job_once(
    tmp_path: Path, start_ml_backend: Callable[..., RunningBackend], s3_bucket: Bucket
) -> None:
    backend = start_ml_backend("--sleep", "0.3")
    config = str(FIXTURES / "configs/sentiment.xml")
    store = {
        "LABELGRAPH_FILE_STORE": f"s3://{s3_bucket.name}/shared",
        "LABELGRAPH_FILE_STORE_ENDPOINT": s3_bucket.endpoint,
        "AWS_ACCESS_KEY_ID": S3_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": S3_CREDENTIALS["aws_secret_access_key"],
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    flags = ("--label-config", config, "--ml-backends", backend.url)
    with hosts(tmp_path, 2, *flags, env=store) as (a, b):
        tasks = [{"text": f"task {i}"} for i in range(40)]
        assert a.http.post("/api/project/import", json=tasks).status_code == 201
        # A file uploaded through one process is served by the other (S3 file store).
        image = (FIXTURES / "imports" / "red.png").read_bytes()
        upload = a.http.post("/api/project/import", files=[("file", ("red.png", image))])
        assert upload.status_code == 201, upload.text
        [url] = upload.json()["task_preview"][0].values()
        assert b.http.get(url).status_code == 302
        assert _get(b, url) == image

        # Annotators behind a load balancer: every other request goes to the other process.
        created: list[int] = []
        lock = threading.Lock()

        def annotate(worker: int) -> None:
            for n in range(10):
                host = (a, b)[(worker + n) % 2]
                task_id = 1 + (worker * 10 + n) % 40
                body = {"result": [], "lead_time": worker}
                response = host.http.post(f"/api/tasks/{task_id}/completions", json=body)
                assert response.status_code == 201, response.text
                with lock:
                    created.append(response.json()["id"])

        threads = [threading.Thread(target=annotate, args=(w,)) for w in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        listed = b.http.get("/api/tasks", params={"page_size": 100}).json()
        stored = {c["id"] for t in listed["tasks"] for c in t.get("completions", [])}
        assert len(created) == 80 and set(created) == stored
        assert listed["total_completions"] == 80

        # Jobs queued through both processes: each runs exactly once.
        exports = [host.gql(START_EXPORT)["startExport"]["id"] for host in (a, b, a, b)]
        predictions = a.gql(START_PREDICTIONS, {"ids": list(range(1, 7))})
        for job_id in [*exports, predictions["startPredictionJob"]["id"]]:
            job = _until(functools.partial(_finished, b, job_id))
            assert (job["state"], job["attempts"], job["error"]) == ("DONE", 1, None), job
        assert _predict_calls(backend) == Counter(range(1, 7))
        export_url = b.gql(EXPORT_URL, {"id": exports[0]})["job"]["export"]["url"]
        assert _get(a, export_url) == _get(b, export_url)  # one of them has no copy

        # A job whose process is killed is taken over by the other one.
        ids = list(range(7, 27))
        job_id = b.gql(START_PREDICTIONS, {"ids": ids})["startPredictionJob"]["id"]
        _until(lambda: b.gql(JOB, {"id": job_id})["job"]["done"] >= 2)
        owner = _until(lambda: _lease_owner_pid(job_id))
        victim, survivor = (a, b) if owner == a.process.pid else (b, a)
        assert owner == victim.process.pid
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait(timeout=10)
        job = _until(lambda: _finished(survivor, job_id))
        assert job["state"] == "DONE" and job["attempts"] == 2, job
        assert job["done"] == len(ids)
        predicted = survivor.http.get("/api/tasks", params={"page_size": 100}).json()["tasks"]
        assert all(t["predictions"] for t in predicted if t["id"] in ids)
        calls = _predict_calls(backend)
        # Tasks predicted before the kill keep their predictions; at most the one in flight
        # when the process died is asked twice.
        assert sum(calls[i] for i in ids) <= len(ids) + 1
        assert all(1 <= calls[i] <= 2 for i in ids)
