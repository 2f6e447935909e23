"""labelgraph with today's ``label-studio-ml`` SDK (1.0.9) as its ML backend, a real process on
127.0.0.1 running a tiny ``LabelStudioMLBase`` model (tests/sdk_backend/majority_model.py):
live predictions, a predictions job, and training that hands the model the completions (the
SDK reads them under ``annotations``; Label Studio 0.9 sent only ``completions``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import GraphQL
from tests.ml_sdk import SdkBackend

pytestmark = pytest.mark.live

JOB = "query($id: Int!) { job(id: $id) { state done failed error } }"
START_ALL = "mutation { startPredictionJob(allTasks: true) { id total } }"


def negative(task_id: int) -> dict[str, Any]:
    value = {"choices": ["Negative"]}
    result = [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": value}]
    return {"result": result}


def choices_of(prediction: dict[str, Any]) -> list[str]:
    return list(prediction["result"][0]["value"]["choices"])


def wait_for_job(gql: GraphQL, job_id: int, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = gql(JOB, {"id": job_id})["job"]
        if job["state"] in ("DONE", "FAILED"):
            return job
        assert time.monotonic() < deadline, f"job {job_id} still {job['state']}"
        time.sleep(0.05)


def test_the_label_studio_ml_sdk_as_backend(
    app_with_settings: Callable[..., TestClient], sdk_backend: SdkBackend, settings: Any
) -> None:
    client = app_with_settings()
    tasks = [{"text": "first"}, {"text": "second"}, {"text": "third"}]
    assert client.post("/api/project/import", json=tasks).status_code == 201
    response = client.patch("/api/project", json={"ml_backend": f"sdk={sdk_backend.url}"})
    assert response.status_code == 201, response.text
    assert client.get("/api/models").json() == {"models": ["sdk"]}

    # Live predictions and mode=data: the untrained model says Neutral.
    task = client.get("/api/project/next").json()
    assert [choices_of(p) for p in task["predictions"]] == [["Neutral"]]
    assert task["predictions"][0]["created_by"] == "sdk"
    response = client.post("/api/models/predictions?mode=data", json={"text": "x"})
    assert response.status_code == 200
    assert choices_of(response.json()["predictions"][0]) == ["Neutral"]

    # Train with data: the model's fit() gets the labelled tasks and their completions.
    for task_id in (1, 2):
        assert client.post(f"/api/tasks/{task_id}/completions", json=negative(task_id)).is_success
    response = client.post("/api/models/train")
    assert (response.status_code, response.json()) == (200, {"detail": "Training started"})
    (fit,) = sdk_backend.fit_calls()
    assert [t["id"] for t in fit["tasks"]] == [1, 2]
    assert [t["data"] for t in fit["tasks"]] == [{"text": "first"}, {"text": "second"}]
    assert all(choices_of(t["completions"][0]) == ["Negative"] for t in fit["tasks"])

    # A predictions job with the trained model stores its predictions for every task.
    gql = GraphQL(settings, client.app.state.project_id, client.app.state.ml)  # type: ignore[attr-defined]
    job = gql(START_ALL)["startPredictionJob"]
    assert job["total"] == 3
    finished = wait_for_job(gql, job["id"])
    assert (finished["state"], finished["done"], finished["failed"]) == ("DONE", 3, 0)
    stored = client.get("/api/tasks/3").json()["predictions"]
    assert [choices_of(p) for p in stored] == [["Negative"]]
    assert stored[0]["model_version"] != "INITIAL"  # the SDK's version of the trained model
