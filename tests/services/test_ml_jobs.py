"""Prediction jobs: batching, the one-task-per-call fallback, bounded concurrency, giving up on a
backend that stops answering, and the stored rows (created_by, model_version, score)."""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.testclient import TestClient

from server import db
from server.models import Job, MLBackend, Prediction, Task
from server.services.ml import backends as ml
from tests.ml_backend import RunningBackend
from tests.peewee_typed import tuple_rows


def with_tasks(client: TestClient, count: int, backend: RunningBackend) -> None:
    tasks = [{"text": f"task {i}"} for i in range(1, count + 1)]
    assert client.post("/api/project/import", json=tasks).status_code == 201
    assert client.patch("/api/project", json={"ml_backend": f"model={backend.url}"}).is_success
    backend.clear()


def predict_all(client: TestClient) -> None:
    response = client.post("/api/models/predictions?mode=all_tasks")
    assert response.json() == {"detail": "predictions are ready"}


def sizes(backend: RunningBackend) -> list[int]:
    return [len(e["body"]["tasks"]) for e in backend.requests("/predict")]


def test_tasks_are_sent_in_batches_and_stored_with_their_origin(
    app_with_settings: Callable[..., TestClient], ml_backend: RunningBackend
) -> None:
    client = app_with_settings(ml_batch_size=8, ml_job_concurrency=2)
    with_tasks(client, 20, ml_backend)
    predict_all(client)
    assert sorted(sizes(ml_backend)) == [4, 8, 8]
    sent = sorted(t["id"] for e in ml_backend.requests("/predict") for t in e["body"]["tasks"])
    assert sent == list(range(1, 21))

    def stored() -> list[tuple[object, ...]]:
        rows = Prediction.select(
            Prediction.task, Prediction.created_by, Prediction.model_version, Prediction.score
        ).order_by(Prediction.task)
        return list(tuple_rows(rows))

    assert db.with_connection(stored) == [(i, "model", "v1", 0.5) for i in range(1, 21)]
    backend = db.with_connection(lambda: MLBackend.get(MLBackend.name == "model"))
    assert (backend.batch_predict, backend.model_version) == (True, "v1")
    job = db.with_connection(lambda: Job.get())
    assert (job.state, job.total, job.done, job.failed, job.error) == ("done", 20, 20, 0, None)
    scores = db.with_connection(lambda: {t.predictions_score for t in Task.select()})
    assert scores == {0.5}


def test_a_backend_that_predicts_one_task_per_call_gets_one_task_per_call(
    app_with_settings: Callable[..., TestClient],
    start_ml_backend: Callable[..., RunningBackend],
) -> None:
    single = start_ml_backend("--single")
    client = app_with_settings(ml_batch_size=8, ml_job_concurrency=1)
    with_tasks(client, 20, single)
    predict_all(client)
    # The first call of 8 tasks got one result: from then on, one task per call.
    assert sizes(single) == [8] + [1] * 20
    counts = db.with_connection(lambda: [t.total_predictions for t in Task.select()])
    assert counts == [1] * 20
    assert db.with_connection(lambda: MLBackend.get().batch_predict) is False
    single.clear()
    assert client.post("/api/models/predictions?mode=all_tasks").is_success
    assert sizes(single) == []  # all stored for this model version already


def test_concurrency_is_bounded(
    app_with_settings: Callable[..., TestClient],
    start_ml_backend: Callable[..., RunningBackend],
) -> None:
    slow = start_ml_backend("--sleep", "0.3")
    client = app_with_settings(ml_batch_size=1, ml_job_concurrency=2)
    with_tasks(client, 6, slow)
    started = time.perf_counter()
    predict_all(client)
    elapsed = time.perf_counter() - started
    # 6 calls of 0.3 s, 2 at a time: about 0.9 s (sequential: 1.8 s, unbounded: 0.3 s).
    assert 0.85 <= elapsed < 1.7, elapsed
    times = sorted(e["time"] for e in slow.requests("/predict"))
    in_flight = max(sum(1 for t in times if start <= t < start + 0.29) for start in times)
    assert in_flight == 2


def test_a_backend_that_stops_answering_is_given_up_for_the_rest_of_the_job(
    app_with_settings: Callable[..., TestClient],
    start_ml_backend: Callable[..., RunningBackend],
) -> None:
    hung = start_ml_backend("--sleep", "30")
    client = app_with_settings(ml_batch_size=4, ml_job_concurrency=1, ml_predict_timeout=0.5)
    with_tasks(client, 12, hung)
    started = time.perf_counter()
    predict_all(client)
    assert time.perf_counter() - started < 3
    assert sizes(hung) == [4]
    job = db.with_connection(lambda: Job.get())
    assert (job.state, job.done, job.failed) == ("done", 12, 12)
    assert job.error == "model: gave up after timed out"


def test_backend_names(client: TestClient) -> None:
    assert ml.parse_backend_spec("mine=http://h:9090", "proj") == ("mine", "http://h:9090")
    name, url = ml.parse_backend_spec("http://h:9090/a=b", "proj")
    assert url == "http://h:9090/a=b" and len(name) == len("proj") + 4 and name.startswith("proj")
    name, url = ml.parse_backend_spec("x=y", "proj")
    assert url == "x=y"
