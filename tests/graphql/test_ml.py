"""ML backends through GraphQL: connecting, status, prediction jobs, training, live predictions."""

from __future__ import annotations

import time
from typing import Any

from starlette.testclient import TestClient

from tests.conftest import GraphQL
from tests.ml_backend import RunningBackend, dead_url

ADD = """mutation($url: String!, $name: String) {
  addMlBackend(url: $url, name: $name) { name url modelVersion batchPredict }
}"""
START = """mutation($ids: [Int!], $all: Boolean! = false) {
  startPredictionJob(taskIds: $ids, allTasks: $all) { id kind state total }
}"""
JOB = "query($id: Int!) { job(id: $id) { state progress total done failed error finishedAt } }"


def wait_for_job(gql: GraphQL, job_id: int, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = gql(JOB, {"id": job_id})["job"]
        if job["state"] in ("DONE", "FAILED"):
            return job
        assert time.monotonic() < deadline, f"job {job_id} still {job['state']}"
        time.sleep(0.02)


def test_add_list_status_and_remove(
    sentiment_project: TestClient, gql: GraphQL, ml_backend: RunningBackend
) -> None:
    added = gql(ADD, {"url": ml_backend.url, "name": "model"})["addMlBackend"]
    assert added == {
        "name": "model",
        "url": ml_backend.url,
        "modelVersion": None,
        "batchPredict": None,
    }
    query = (
        "{ project { mlBackends { name"
        " status { connected modelDir modelVersion isTraining error } } } }"
    )
    (backend,) = gql(query)["project"]["mlBackends"]
    assert backend == {
        "name": "model",
        "status": {
            "connected": True,
            "modelDir": "example-ml-backend",
            "modelVersion": "v1",
            "isTraining": False,
            "error": None,
        },
    }
    assert gql("{ project { mlBackends { modelVersion } } }")["project"]["mlBackends"] == [
        {"modelVersion": "v1"}
    ]
    assert [e["path"] for e in ml_backend.requests()] == [
        "/health",
        "/health",
        "/setup",
        "/is_training",
    ]
    assert gql('mutation { removeMlBackend(name: "model") }') == {"removeMlBackend": "model"}
    assert gql("{ project { mlBackends { name } } }")["project"]["mlBackends"] == []


def test_add_errors_have_codes(sentiment_project: TestClient, gql: GraphQL) -> None:
    error = gql.error(ADD, {"url": "nowhere"})
    assert error["code"] == "INVALID"
    assert error["message"] == 'Specified string "nowhere" doesn\'t look like URL.'
    url = dead_url()
    assert gql.error(ADD, {"url": f"n={url}"})["message"] == (
        f'ML backend with URL: "{url}" is not connected.'
    )
    assert gql.error('mutation { removeMlBackend(name: "x") }')["code"] == "NOT_FOUND"


def test_a_disconnected_backend_reports_it(sentiment_project: TestClient, gql: GraphQL) -> None:
    gql(
        'mutation($u: String!) { setMlBackends(backends: [{name: "off", url: $u}]) { name } }',
        {"u": dead_url()},
    )
    (backend,) = gql("{ project { mlBackends { status { connected error } } } }")["project"][
        "mlBackends"
    ]
    assert backend["status"]["connected"] is False and backend["status"]["error"]


def test_prediction_job_stores_predictions_and_reports_progress(
    sentiment_project: TestClient, gql: GraphQL, ml_backend: RunningBackend
) -> None:
    gql(ADD, {"url": ml_backend.url, "name": "model"})
    job = gql(START, {"ids": [2, 4, 5]})["startPredictionJob"]
    assert job["kind"] == "predictions" and job["total"] == 3
    assert job["state"] in ("QUEUED", "RUNNING", "DONE")
    finished = wait_for_job(gql, job["id"])
    assert finished["state"] == "DONE"
    assert (finished["progress"], finished["done"], finished["failed"]) == (1.0, 3, 0)
    assert finished["error"] is None and finished["finishedAt"]
    query = (
        "{ task(id: 4) { totalPredictions predictionsScore"
        " predictions { createdBy modelVersion score result } } }"
    )
    task = gql(query)["task"]
    assert task["totalPredictions"] == 1 and task["predictionsScore"] == 0.5
    assert task["predictions"][0]["createdBy"] == "model"
    assert task["predictions"][0]["modelVersion"] == "v1"
    assert task["predictions"][0]["score"] == 0.5
    assert task["predictions"][0]["result"][0]["value"] == {"choices": ["Positive"]}
    backends = gql("{ project { predictionCount mlBackends { modelVersion batchPredict } } }")
    assert backends["project"]["predictionCount"] == 3
    assert backends["project"]["mlBackends"] == [{"modelVersion": "v1", "batchPredict": True}]


def test_job_errors(
    sentiment_project: TestClient, gql: GraphQL, ml_backend: RunningBackend
) -> None:
    assert gql.error(START, {"ids": [1]})["message"] == "No ML backend"
    gql(ADD, {"url": ml_backend.url, "name": "model"})
    error = gql.error(START)
    assert (error["code"], error["message"]) == (
        "INVALID",
        'Request JSON data must have "task_ids": [1, 2, ...]',
    )
    assert gql.error(START, {"ids": [1, 404]})["code"] == "NOT_FOUND"
    assert gql.error(START, {"ids": [1], "all": True})["code"] == "INVALID"
    assert gql.error(JOB, {"id": 999})["code"] == "NOT_FOUND"


def test_a_job_with_no_backend_connected_is_done_with_every_task_failed(
    sentiment_project: TestClient, gql: GraphQL
) -> None:
    gql(
        'mutation($u: String!) { setMlBackends(backends: [{name: "off", url: $u}]) { name } }',
        {"u": dead_url()},
    )
    job = gql(START, {"all": True})["startPredictionJob"]
    finished = wait_for_job(gql, job["id"])
    assert (finished["state"], finished["total"], finished["failed"]) == ("DONE", 5, 5)
    assert finished["error"].startswith("No ML backend is connected: off: not connected")


def test_predict_task_data_and_live_predictions(
    sentiment_project: TestClient, gql: GraphQL, ml_backend: RunningBackend
) -> None:
    gql(ADD, {"url": ml_backend.url, "name": "model"})
    data = gql('mutation { predictTaskData(task: {text: "hi"}) }')["predictTaskData"]
    assert data["data"] == {"text": "hi"}
    assert data["predictions"][0]["created_by"] == "model"
    live = gql("{ task(id: 4) { livePredictions predictions { modelVersion } } }")["task"]
    assert [p["model_version"] for p in live["livePredictions"]] == ["v1"]
    assert live["livePredictions"][0]["created_by"] == "model"
    assert [p["modelVersion"] for p in live["predictions"]] == ["v1", "v2"]  # stored, untouched
    query = "{ project { nextTask { lsSourceJson(livePredictions: true) } } }"
    served = gql(query)["project"]["nextTask"]["lsSourceJson"]
    assert served["id"] == 1 and served["predictions"][0]["created_by"] == "model"
    plain = gql("{ project { nextTask { lsSourceJson } } }")["project"]["nextTask"]
    assert plain["lsSourceJson"]["predictions"] == []


def test_train_outcomes(
    sentiment_project: TestClient, gql: GraphQL, ml_backend: RunningBackend
) -> None:
    gql(
        'mutation($a: String!, $b: String!) { setMlBackends(backends: [{name: "off", url: $a}, '
        '{name: "model", url: $b}]) { name } }',
        {"a": dead_url(), "b": ml_backend.url},
    )
    outcomes = gql("mutation { trainMlBackends { name status job error } }")["trainMlBackends"]
    assert outcomes[1] == {"name": "model", "status": "STARTED", "job": "job-1", "error": None}
    assert outcomes[0]["name"] == "off" and outcomes[0]["status"] == "NOT_CONNECTED"
    assert outcomes[0]["error"].startswith('ML backend with URL: "http://127.0.0.1:')
