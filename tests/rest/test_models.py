"""ML backends over REST, against the example backend running as a real process: connecting,
listing, removing, predictions (live, data, all_tasks, specific_tasks), training; the requests
the backend receives are checked against ml-backend.md."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from server.settings import Settings
from tests.ml_backend import RunningBackend, dead_url

POSITIVE = [
    {
        "from_name": "sentiment",
        "to_name": "text",
        "type": "choices",
        "value": {"choices": ["Positive"]},
    }
]
UA = {"user-agent": "label-studio/"}
JSON_UA = {"user-agent": "label-studio/", "content-type": "application/json"}
PARAMS = {"force_load": True, "login": "", "password": ""}


def connect(client: TestClient, backend: RunningBackend, name: str = "model") -> None:
    response = client.patch("/api/project", json={"ml_backend": f"{name}={backend.url}"})
    assert response.status_code == 201, response.text


def config_line(client: TestClient) -> str:
    return str(client.get("/api/project").json()["label_config_line"])


def predicted(name: str = "model", version: str = "v1") -> dict[str, Any]:
    """What the example backend's prediction looks like once served (created_date aside)."""
    return {"result": POSITIVE, "score": 0.5, "created_by": name, "model_version": version}


def without_dates(predictions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for p in predictions:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}", p.pop("created_date"))
    return predictions


def setup_request(client: TestClient, name: str = "model") -> dict[str, Any]:
    body = {"project": name, "schema": config_line(client), "hostname": "http://127.0.0.1:8080"}
    return {"method": "POST", "path": "/setup", "query": "", "headers": JSON_UA, "body": body}


HEALTH = {"method": "GET", "path": "/health", "query": "", "headers": UA, "body": None}


def received(backend: RunningBackend) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.items() if k != "time"} for e in backend.requests()]


@pytest.fixture
def project(sentiment_project: TestClient, ml_backend: RunningBackend) -> TestClient:
    """The sentiment project (5 tasks) with the example backend connected as "model"."""
    connect(sentiment_project, ml_backend)
    ml_backend.clear()
    return sentiment_project


# --- connecting, listing, removing ---------------------------------------------------------


def test_patch_connects_a_backend_after_a_health_check(
    sentiment_project: TestClient, ml_backend: RunningBackend
) -> None:
    body = {"ml_backend": f"model={ml_backend.url}", "title": "With a model"}
    response = sentiment_project.patch("/api/project", json=body)
    assert response.status_code == 201
    assert response.json()["config"]["ml_backends"] == [{"url": ml_backend.url, "name": "model"}]
    assert response.json()["config"]["title"] == "With a model"
    assert received(ml_backend) == [HEALTH]
    project = sentiment_project.get("/api/project").json()
    assert project["config"]["ml_backends"] == [{"url": ml_backend.url, "name": "model"}]
    assert sentiment_project.get("/api/models").json() == {"models": ["model"]}


def test_a_backend_without_a_name_is_named_after_the_project(
    client: TestClient, ml_backend: RunningBackend
) -> None:
    assert client.patch("/api/project", json={"ml_backend": ml_backend.url}).status_code == 201
    (name,) = client.get("/api/models").json()["models"]
    assert re.fullmatch(r"project[0-9a-f]{4}", name)


def test_patch_refuses_bad_urls_and_backends_that_do_not_answer(client: TestClient) -> None:
    response = client.patch("/api/project", json={"ml_backend": "not a url", "title": "X"})
    assert response.status_code == 400
    assert response.json() == {
        "status": 400,
        "detail": 'Specified string "not a url" doesn\'t look like URL.',
    }
    url = dead_url()
    response = client.patch("/api/project", json={"ml_backend": url})
    assert response.status_code == 400
    assert response.json()["detail"] == f'ML backend with URL: "{url}" is not connected.'
    assert response.json()["status"] == 400
    assert client.get("/api/models").json() == {"models": []}
    assert client.get("/api/project").json()["config"]["title"] == "Label Studio"
    assert client.patch("/api/project", json={"ml_backend": 7}).status_code == 400


def test_names_are_unique(project: TestClient, ml_backend: RunningBackend) -> None:
    response = project.patch("/api/project", json={"ml_backend": f"model={ml_backend.url}"})
    assert response.status_code == 409
    assert response.json()["detail"] == 'ML backend with name "model" already exists'


def test_patch_ml_backends_replaces_the_list_without_asking_them(
    client: TestClient, ml_backend: RunningBackend
) -> None:
    backends = [{"url": dead_url(), "name": "offline"}, {"url": ml_backend.url, "name": "on"}]
    response = client.patch("/api/project", json={"ml_backends": backends})
    assert response.status_code == 201
    assert response.json()["config"]["ml_backends"] == backends
    assert received(ml_backend) == []
    assert client.get("/api/models").json() == {"models": ["offline", "on"]}
    bad = client.patch("/api/project", json={"ml_backends": [{"url": ml_backend.url}]})
    assert bad.status_code == 400
    twice = client.patch("/api/project", json={"ml_backends": [backends[1], backends[1]]})
    assert twice.status_code == 400
    assert client.patch("/api/project", json={"ml_backends": []}).status_code == 201
    assert client.get("/api/models").json() == {"models": []}


def test_delete_models(project: TestClient) -> None:
    missing = project.request("DELETE", "/api/models", json={"name": "nope"})
    assert missing.status_code == 404
    assert missing.json() == {
        "status": 404,
        "detail": 'Can\'t remove ML backend with name "nope": not found.',
    }
    assert project.request("DELETE", "/api/models", json={}).status_code == 400
    response = project.request("DELETE", "/api/models", json={"name": "model"})
    assert response.status_code == 204 and response.content == b""
    assert project.get("/api/models").json() == {"models": []}
    assert project.get("/api/project").json()["config"]["ml_backends"] == []


# --- predictions ---------------------------------------------------------------------------


def test_every_prediction_route_needs_a_backend(sentiment_project: TestClient) -> None:
    no_backend = {"status": 400, "detail": "No ML backend"}
    for query in ("", "?mode=data", "?mode=all_tasks", "?mode=specific_tasks&task_ids=1"):
        response = sentiment_project.post(f"/api/models/predictions{query}", json={"text": "x"})
        assert (response.status_code, response.json()) == (400, no_backend), query
    response = sentiment_project.post("/api/models/train")
    assert (response.status_code, response.json()) == (400, no_backend)


def test_mode_errors(project: TestClient) -> None:
    response = project.post("/api/models/predictions?mode=everything")
    assert (response.status_code, response.json()["detail"]) == (422, "unknown mode")
    response = project.post("/api/models/predictions?mode=data")
    assert response.status_code == 422
    assert response.json()["detail"] == "no task data found in request json"


def test_data_mode_answers_the_task_with_predictions(
    project: TestClient, ml_backend: RunningBackend
) -> None:
    response = project.post("/api/models/predictions", json={"text": "some text"})
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["data", "predictions"]
    assert body["data"] == {"text": "some text"}
    assert without_dates(body["predictions"]) == [predicted()]
    predict = {
        "tasks": [{"data": {"text": "some text"}, "predictions": []}],
        "model_version": "v1",
        "project": "model",
        "label_config": config_line(project),
        "params": PARAMS,
    }
    assert received(ml_backend) == [
        HEALTH,
        setup_request(project),
        {"method": "POST", "path": "/predict", "query": "", "headers": JSON_UA, "body": predict},
    ]
    task = {"data": {"text": "t"}, "meta": {"k": 1}}
    response = project.request("GET", "/api/models/predictions?mode=data", json=task)
    assert response.json()["meta"] == {"k": 1} and response.json()["data"] == {"text": "t"}
    assert project.get("/api/tasks").json()["total_predictions"] == 2  # nothing stored


def test_all_tasks_stores_predictions_for_every_task(
    project: TestClient, ml_backend: RunningBackend
) -> None:
    response = project.post("/api/models/predictions?mode=all_tasks")
    assert (response.status_code, response.json()) == (200, {"detail": "predictions are ready"})
    page = project.get("/api/tasks?page_size=10").json()
    assert page["total_predictions"] == 5
    for task in page["tasks"]:
        # Task 4's imported predictions are replaced, as Label Studio does.
        assert without_dates(task["predictions"]) == [predicted()], task["id"]
        assert task["predictions_score"] == 0.5
    (predict,) = ml_backend.requests("/predict")
    assert predict["body"]["tasks"] == [
        {"id": 1, "data": {"text": "A bare task: the item is the data"}, "predictions": []},
        {
            "id": 2,
            "data": {"text": "A wrapped task with meta"},
            "meta": {"source": "crawl-7"},
            "predictions": [],
        },
        {"id": 3, "data": {"text": "Labeled on import"}, "predictions": []},
        {"id": 4, "data": {"text": "Predicted with a score"}, "predictions": []},
        {"id": 5, "data": {"text": 42}, "predictions": []},
    ]
    assert {k: v for k, v in predict["body"].items() if k != "tasks"} == {
        "model_version": "v1",
        "project": "model",
        "label_config": config_line(project),
        "params": PARAMS,
    }
    assert [e["path"] for e in ml_backend.requests()] == ["/health", "/setup", "/predict"]


def test_a_stored_prediction_of_the_same_model_version_is_not_requested_again(
    project: TestClient, ml_backend: RunningBackend
) -> None:
    project.post("/api/models/predictions?mode=all_tasks")
    stored = project.get("/api/tasks/1").json()["predictions"]
    ml_backend.clear()
    assert project.get("/api/tasks/1").json()["predictions"] == stored
    assert project.get("/api/project/next").json()["predictions"] == stored
    project.post("/api/models/predictions?mode=all_tasks")
    assert [e["path"] for e in ml_backend.requests()] == ["/health", "/setup"] * 3
    # Training makes a new model version: its predictions are asked for.
    assert project.post("/api/models/train").status_code == 200
    ml_backend.clear()
    served = project.get("/api/tasks/1").json()["predictions"]
    assert without_dates(served) == [predicted(version="v2")]
    assert ml_backend.requests("/predict")[0]["body"]["model_version"] == "v2"


def test_specific_tasks_from_the_query_or_a_json_body(
    project: TestClient, ml_backend: RunningBackend
) -> None:
    response = project.get("/api/models/predictions?mode=specific_tasks&task_ids=1,3")
    assert (response.status_code, response.json()) == (200, {"detail": "predictions are ready"})
    response = project.post("/api/models/predictions?mode=specific_tasks", json={"task_ids": [5]})
    assert response.status_code == 200
    counts = {t["id"]: t["total_predictions"] for t in project.get("/api/tasks").json()["tasks"]}
    assert counts == {1: 1, 2: 0, 3: 1, 4: 2, 5: 1}
    sent = [[t["id"] for t in e["body"]["tasks"]] for e in ml_backend.requests("/predict")]
    assert sent == [[1, 3], [5]]


def test_specific_tasks_errors(project: TestClient) -> None:
    url = "/api/models/predictions?mode=specific_tasks"
    response = project.post(url)
    assert response.status_code == 400
    assert response.json()["detail"] == 'Request JSON data must have "task_ids": [1, 2, ...]'
    response = project.post(url + "&task_ids=1,999")
    assert (response.status_code, response.json()["detail"]) == (404, "Task 999 not found")
    assert project.post(url + "&task_ids=1,x").status_code == 400
    assert project.post(url, json={"task_ids": [1.5]}).status_code == 400
    assert project.post(url, json={"task_ids": {"id": 1}}).status_code == 400


def test_task_get_and_next_serve_live_predictions_without_storing_them(
    project: TestClient, ml_backend: RunningBackend
) -> None:
    task = project.get("/api/tasks/4").json()
    assert without_dates(task["predictions"]) == [predicted()]
    assert (task["total_predictions"], task["predictions_score"]) == (1, 0.5)
    (predict,) = ml_backend.requests("/predict")
    assert predict["body"]["tasks"] == [
        {
            "id": 4,
            "data": {"text": "Predicted with a score"},
            "completed_at": None,
            "completions_results": "",
            "predictions_results": "",
            "total_completions": 0,
            "total_predictions": 0,
            "cancelled_completions": 0,
            "predictions": [],
        }
    ]
    listed = {t["id"]: t for t in project.get("/api/tasks").json()["tasks"]}
    assert [p["model_version"] for p in listed[4]["predictions"]] == ["v1", "v2"]  # as imported
    ml_backend.clear()
    task = project.get("/api/project/next").json()
    assert task["id"] == 1 and without_dates(task["predictions"]) == [predicted()]
    (predict,) = ml_backend.requests("/predict")
    assert predict["body"]["tasks"] == [
        {"id": 1, "data": {"text": "A bare task: the item is the data"}, "predictions": []}
    ]


def test_stored_predictions_are_served_when_no_backend_answers(
    sentiment_project: TestClient,
) -> None:
    backends = [{"url": dead_url(), "name": "offline"}]
    assert sentiment_project.patch("/api/project", json={"ml_backends": backends}).is_success
    started = time.perf_counter()
    task = sentiment_project.get("/api/tasks/4").json()
    assert [p["model_version"] for p in task["predictions"]] == ["v1", "v2"]
    assert sentiment_project.get("/api/tasks/1").json().get("predictions") is None
    assert time.perf_counter() - started < 2


def test_one_failing_backend_never_stops_the_others(
    app_with_settings: Callable[..., TestClient], start_ml_backend: Callable[..., RunningBackend]
) -> None:
    slow, fast = start_ml_backend("--sleep", "5"), start_ml_backend()
    client = app_with_settings(ml_predict_timeout=0.5, ml_retry_after=30)
    client.post("/api/project/import", json=[{"text": "one"}])
    backends = [{"url": slow.url, "name": "slow"}, {"url": fast.url, "name": "fast"}]
    assert client.patch("/api/project", json={"ml_backends": backends}).is_success
    started = time.perf_counter()
    task = client.get("/api/tasks/1").json()
    assert time.perf_counter() - started >= 0.5
    assert without_dates(task["predictions"]) == [predicted("fast")]
    # The slow backend timed out: it is skipped for a while instead of costing a timeout again.
    started = time.perf_counter()
    task = client.get("/api/tasks/1").json()
    assert time.perf_counter() - started < 0.5
    assert without_dates(task["predictions"]) == [predicted("fast")]
    assert [e["path"] for e in slow.requests()] == ["/health", "/setup", "/predict"]


def test_deleting_all_tasks_tells_the_backends(
    project: TestClient, ml_backend: RunningBackend
) -> None:
    assert project.delete("/api/tasks").status_code == 204
    assert received(ml_backend) == [
        {
            "method": "POST",
            "path": "/delete",
            "query": "",
            "headers": JSON_UA,
            "body": {"project": "model"},
        }
    ]


# --- training ------------------------------------------------------------------------------


def test_train_sends_every_completion_document(
    project: TestClient, ml_backend: RunningBackend, settings: Settings
) -> None:
    cancelled = project.post("/api/tasks/1/completions?was_cancelled=1", json={"result": []})
    response = project.post("/api/models/train")
    assert (response.status_code, response.json()) == (200, {"detail": "Training started"})
    requests = received(ml_backend)
    assert [e["path"] for e in requests] == ["/health", "/is_training", "/train"]
    assert requests[1]["query"] == "project=model"
    body = requests[2]["body"]
    assert body["project"] == "model" and body["label_config"] == config_line(project)
    assert body["params"] == {
        "login": "",
        "password": "",
        "project_full_path": str(Path(settings.project_dir).resolve()),
    }
    first, third = body["completions"]
    # Today's label-studio-ml SDK reads the same documents under "annotations".
    assert body["annotations"] == body["completions"]
    assert first == {
        "completions": [
            {"result": [], "was_cancelled": True, **_ids(cancelled.json()["id"], first)}
        ],
        "data": {"text": "A bare task: the item is the data"},
        "id": 1,
    }
    assert list(third) == ["completions", "data", "id"] and third["id"] == 3
    assert third["completions"][0]["result"] == POSITIVE
    # The backend answered a job id: it is asked about it before the next training.
    ml_backend.clear()
    assert project.post("/api/models/train").status_code == 200
    job_status = ml_backend.requests()[1]
    assert (job_status["path"], job_status["body"]) == ("/job_status", {"job": "job-1"})


def _ids(completion_id: int, document: dict[str, Any]) -> dict[str, Any]:
    created_at = document["completions"][0]["created_at"]
    assert isinstance(created_at, int)
    return {"id": completion_id, "created_at": created_at}


def test_train_refusals_and_backends_that_are_not_connected(
    client: TestClient, ml_backend: RunningBackend
) -> None:
    offline = [{"url": dead_url(), "name": "offline"}]
    assert client.patch("/api/project", json={"ml_backends": offline}).is_success
    response = client.post("/api/models/train")
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "Training is not started: seems that you don't have any ML backend connected"
    )
    both = [*offline, {"url": ml_backend.url, "name": "model"}]
    assert client.patch("/api/project", json={"ml_backends": both}).is_success
    response = client.post("/api/models/train")  # no completions: the backend refuses
    assert response.status_code == 502
    # Label Studio passed the backend's body on; we never reflect it (docs/compat.md).
    detail = (
        "CantStartTrainJobError: Can't update model: ML backend returns an error: "
        "the backend answered HTTP 400"
    )
    assert response.json() == {
        "status": 502,
        "detail": detail,
        "errors": [{"name": "model", "detail": detail}],
    }
