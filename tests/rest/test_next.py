import pytest
from starlette.testclient import TestClient

from tests.conftest import fixture_text

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
    response = scored.get("/api/project/next")
    assert response.status_code == 404  # task 1 has no predictions
    assert response.json()["id"] is None


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
