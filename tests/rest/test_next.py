import logging
from typing import Any

import pytest
from starlette.testclient import TestClient

from server import db
from server.models import Project
from server.services.tasks.next_task import next_task
from tests.conftest import TEST_DATABASE_URL, fixture_text

RESULT = [{"from_name": "s", "to_name": "text", "type": "choices", "value": {"choices": ["A"]}}]


@pytest.fixture
def scored(client: TestClient) -> TestClient:
    client.post("/api/project/config", data={"label_config": fixture_text("configs/sentiment.xml")})
    tasks = [
        {"data": {"text": "no predictions"}},
        {"data": {"text": "low"}, "predictions": [{"result": [], "score": 0.1}]},
        {"data": {"text": "high"}, "predictions": [{"result": [], "score": 0.9}]},
        {
            "data": {"text": "mid"},
            "predictions": [{"result": [], "score": 0.2}, {"result": [], "score": 0.8}],
        },
        {"data": {"text": "unscored"}, "predictions": [{"result": []}]},
        {"data": {"text": "high too"}, "predictions": [{"result": [], "score": 0.9}]},
    ]
    assert client.post("/api/project/import", json=tasks).status_code == 201
    return client


def next_text(client: TestClient) -> str:
    response = client.get("/api/project/next")
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["text"])


def use(client: TestClient, sampling: str) -> None:
    assert client.patch("/api/project", json={"sampling": sampling}).status_code == 201


def test_sequential_skips_labeled(scored: TestClient) -> None:
    task = scored.get("/api/project/next").json()
    assert task == {"id": 1, "data": {"text": "no predictions"}, "predictions": []}
    scored.post("/api/tasks/1/completions", json={"result": RESULT})
    scored.post("/api/tasks/2/completions?was_cancelled=1", json={"result": []})
    assert next_text(scored) == "high"


def test_score_sampling(scored: TestClient) -> None:
    use(scored, "prediction-score-min")
    assert next_text(scored) == "low"
    use(scored, "prediction-score-max")
    assert next_text(scored) == "high"  # ties: lowest id
    scored.post("/api/tasks/3/completions", json={"result": RESULT})
    assert next_text(scored) == "high too"
    for tid in (2, 4, 6):
        scored.post(f"/api/tasks/{tid}/completions", json={"result": RESULT})
    assert next_text(scored) == "unscored"  # no score sorts last instead of crashing
    scored.post("/api/tasks/5/completions", json={"result": RESULT})
    assert next_text(scored) == "no predictions"  # served last, not skipped
    scored.post("/api/tasks/1/completions", json={"result": RESULT})
    response = scored.get("/api/project/next")
    assert response.status_code == 404
    assert response.json()["id"] is None


@pytest.mark.parametrize("sampling", ["prediction-score-min", "prediction-score-max"])
def test_score_sampling_serves_every_unlabeled_task(client: TestClient, sampling: str) -> None:
    """4 tasks, 2 predicted: scored first, then the ones without predictions by id."""
    client.post("/api/project/config", data={"label_config": fixture_text("configs/sentiment.xml")})
    tasks = [
        {"data": {"text": "plain a"}},
        {"data": {"text": "scored"}, "predictions": [{"result": [], "score": 0.5}]},
        {"data": {"text": "plain b"}},
        {"data": {"text": "unscored"}, "predictions": [{"result": []}]},
    ]
    assert client.post("/api/project/import", json=tasks).status_code == 201
    use(client, sampling)
    served = []
    for _ in range(5):
        response = client.get("/api/project/next")
        if response.status_code == 404:
            break
        task_id = response.json()["id"]
        served.append(response.json()["data"]["text"])
        client.post(f"/api/tasks/{task_id}/completions", json={"result": RESULT})
    assert served == ["scored", "unscored", "plain a", "plain b"]


def test_score_sampling_without_any_predictions(client: TestClient) -> None:
    client.post("/api/project/config", data={"label_config": fixture_text("configs/sentiment.xml")})
    tasks = [{"data": {"text": "first"}}, {"data": {"text": "second"}}]
    assert client.post("/api/project/import", json=tasks).status_code == 201
    use(client, "prediction-score-max")
    assert next_text(client) == "first"


def test_uniform_returns_only_unlabeled(scored: TestClient) -> None:
    use(scored, "uniform")
    for tid in (1, 3, 5):
        scored.post(f"/api/tasks/{tid}/completions", json={"result": RESULT})
    seen = {scored.get("/api/project/next").json()["id"] for _ in range(60)}
    assert seen <= {2, 4, 6} and len(seen) >= 2


def test_empty_stream_is_404(client: TestClient) -> None:
    response = client.get("/api/project/next")
    assert response.status_code == 404
    assert response.json()["id"] is None


def _query_plans(client: TestClient, sampling: str) -> list[str]:
    """SQLite's plan of every statement the label stream runs for one request."""
    statements: list[tuple[str, Any]] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if isinstance(record.msg, tuple) and record.msg[0].lstrip().startswith("SELECT"):
                statements.append(record.msg)

    project = Project.get()
    handler = Capture(logging.DEBUG)
    logger = logging.getLogger("peewee")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        assert next_task(project, sampling) is not None
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    plans = []
    for sql, params in statements:
        rows = db.database.execute_sql(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
        plans.append(" / ".join(str(row[-1]) for row in rows))
    return plans


@pytest.mark.skipif(bool(TEST_DATABASE_URL), reason="reads SQLite query plans")
@pytest.mark.parametrize("sampling", ["prediction-score-min", "prediction-score-max"])
def test_score_sampling_fallback_is_index_backed(client: TestClient, sampling: str) -> None:
    client.post("/api/project/config", data={"label_config": fixture_text("configs/sentiment.xml")})
    tasks = [{"data": {"text": f"plain {n}"}} for n in range(3)]
    assert client.post("/api/project/import", json=tasks).status_code == 201
    plans = db.with_connection(_query_plans, client, sampling)
    assert len(plans) == 3, plans  # scored seek, unscored seek, unlabeled seek
    for plan in plans:
        assert "USING" in plan and "INDEX" in plan, plan
        assert not plan.startswith("SCAN"), plan
