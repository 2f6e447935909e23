from typing import Any

from starlette.testclient import TestClient

RESULT = [
    {"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["A"]}}
]


def create(client: TestClient, task_id: int, query: str = "", **extra: object) -> int:
    response = client.post(
        f"/api/tasks/{task_id}/completions{query}", json={"result": RESULT, **extra}
    )
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/json"
    return int(response.json()["id"])


def test_create_and_serve(sentiment_project: TestClient) -> None:
    cid = create(sentiment_project, 1, lead_time=4.2, ground_truth=True)
    task = sentiment_project.get("/api/tasks/1").json()
    (completion,) = task["completions"]
    assert completion["id"] == cid
    assert completion["lead_time"] == 4.2 and completion["ground_truth"] is True
    assert completion["result"] == RESULT
    assert isinstance(completion["created_at"], int)
    assert "was_cancelled" not in completion
    assert task["total_completions"] == 1 and task["completed_at"] is not None


def test_cancelled_flag_values(sentiment_project: TestClient) -> None:
    create(sentiment_project, 1, "?was_cancelled=1")
    create(sentiment_project, 2, "?was_cancelled=false", was_cancelled=True, skipped=True)
    first = sentiment_project.get("/api/tasks/1").json()
    assert first["completions"][0]["was_cancelled"] is True
    assert first["cancelled_completions"] == 1
    second = sentiment_project.get("/api/tasks/2").json()
    assert "was_cancelled" not in second["completions"][0]
    assert "skipped" not in second["completions"][0]
    assert second["cancelled_completions"] == 0
    response = sentiment_project.post(
        "/api/tasks/1/completions?was_cancelled=maybe", json={"result": []}
    )
    assert response.status_code == 400


def test_body_id_of_existing_completion_updates_it(sentiment_project: TestClient) -> None:
    cid = create(sentiment_project, 1)
    again = create(sentiment_project, 1, id=cid, lead_time=9)
    assert again == cid
    completions = sentiment_project.get("/api/tasks/1").json()["completions"]
    assert len(completions) == 1 and completions[0]["lead_time"] == 9
    other = create(sentiment_project, 1, id=123456)
    assert other != cid and other != 123456


def test_ids_are_global_and_never_reused(sentiment_project: TestClient) -> None:
    a = create(sentiment_project, 1)
    b = create(sentiment_project, 2)
    assert b > a
    assert sentiment_project.delete(f"/api/tasks/2/completions/{b}").status_code == 204
    c = create(sentiment_project, 2)
    assert c > b


def test_update_merges_and_keeps_created_at(sentiment_project: TestClient) -> None:
    client = sentiment_project
    cid = create(client, 1, "?was_cancelled=1", lead_time=1)
    before = client.get("/api/tasks/1").json()["completions"][0]
    response = client.patch(f"/api/tasks/1/completions/{cid}", json={"lead_time": 7})
    assert response.status_code == 201
    assert response.json() == {"detail": "created"}
    after = client.get("/api/tasks/1").json()["completions"][0]
    assert after["lead_time"] == 7 and after["result"] == RESULT
    assert after["created_at"] == before["created_at"]
    assert after["was_cancelled"] is False  # reset unless the body or query sets it
    client.post(f"/api/tasks/1/completions/{cid}?was_cancelled=1", json={})
    assert client.get("/api/tasks/1").json()["cancelled_completions"] == 1


def test_null_completion_id(sentiment_project: TestClient) -> None:
    for method in ("patch", "post", "delete"):
        kwargs: dict[str, Any] = {"json": {}} if method != "delete" else {}
        response = getattr(sentiment_project, method)("/api/tasks/1/completions/null", **kwargs)
        assert response.status_code == 200
        assert response.json() == {"detail": "completion id is null"}


def test_unknown_ids_are_404(sentiment_project: TestClient) -> None:
    client = sentiment_project
    response = client.post("/api/tasks/999/completions", json={"result": []})
    assert response.status_code == 404
    assert response.json() == {"status": 404, "detail": "Task 999 not found"}
    for method in ("patch", "delete"):
        kwargs: dict[str, Any] = {"json": {}} if method != "delete" else {}
        response = getattr(client, method)("/api/tasks/1/completions/777", **kwargs)
        assert response.status_code == 404
        assert response.json()["detail"] == "Completion 777 not found"
    cid = create(client, 1)
    # a completion of another task is not found under this task
    assert client.delete(f"/api/tasks/2/completions/{cid}").status_code == 404


def test_missing_body_is_400(sentiment_project: TestClient) -> None:
    response = sentiment_project.post("/api/tasks/1/completions")
    assert response.status_code == 400
    assert "JSON object" in response.json()["detail"]
    response = sentiment_project.post("/api/tasks/1/completions", json={"result": "not a list"})
    assert response.status_code == 400


def test_delete_gate(sentiment_project: TestClient) -> None:
    client = sentiment_project
    cid = create(client, 1)
    assert client.patch("/api/project", json={"allow_delete_completions": False}).status_code == 201
    expected = {"status": 422, "detail": "Completion removing is not allowed in server config"}
    response = client.delete(f"/api/tasks/1/completions/{cid}")
    assert response.status_code == 422 and response.json() == expected
    response = client.delete("/api/tasks/1/completions")
    assert response.status_code == 422 and response.json() == expected
    client.patch("/api/project", json={"allow_delete_completions": True})
    assert client.delete("/api/tasks/1/completions").status_code == 204
    task = client.get("/api/tasks/1").json()
    assert "completions" not in task and task["completed_at"] is None


def test_completion_ids_and_delete_all(sentiment_project: TestClient) -> None:
    client = sentiment_project
    create(client, 5)
    create(client, 1)
    create(client, 1)
    assert client.get("/api/completions").json() == {"ids": [1, 3, 5]}
    assert client.get("/api/project").json()["completion_count"] == 3  # labeled tasks
    assert client.get("/api/tasks").json()["total_completions"] == 4
    response = client.delete("/api/completions")
    assert response.status_code == 201 and response.json() == {"detail": "done"}
    assert client.get("/api/completions").json() == {"ids": []}
    assert client.get("/api/tasks").json()["total_completions"] == 0
