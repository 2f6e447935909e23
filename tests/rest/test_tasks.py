from starlette.testclient import TestClient

from server import db
from server.models import Completion, Prediction, TaskLabel

RESULT = [
    {"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["A"]}}
]


def test_list_is_label_studio_object(sentiment_project: TestClient) -> None:
    body = sentiment_project.get("/api/tasks").json()
    assert set(body) == {"tasks", "total", "total_completions", "total_predictions"}
    assert body["total"] == 5
    assert body["total_completions"] == 1
    assert body["total_predictions"] == 2
    assert [t["id"] for t in body["tasks"]] == [1, 2, 3, 4, 5]


def test_served_form_computed_fields(sentiment_project: TestClient) -> None:
    tasks = sentiment_project.get("/api/tasks").json()["tasks"]
    bare, _, labeled, predicted, numeric = tasks
    assert bare == {
        "id": 1,
        "data": {"text": "A bare task: the item is the data"},
        "completed_at": None,
        "completions_results": "",
        "predictions_results": "",
        "total_completions": 0,
        "total_predictions": 0,
        "cancelled_completions": 0,
    }
    assert labeled["total_completions"] == 1
    assert labeled["predictions"] == []
    assert labeled["completed_at"].endswith(".000000Z") and len(labeled["completed_at"]) == 27
    assert labeled["completions_results"].startswith('[[{"from_name":"sentiment"')
    assert predicted["predictions_score"] == 0.5
    assert predicted["total_predictions"] == 2
    assert "completions" not in predicted
    assert predicted["predictions_results"] == (
        '[[{"from_name":"sentiment","to_name":"text","type":"choices",'
        '"value":{"choices":["Negative"]}}],[]]'
    )
    assert numeric["data"] == {"text": 42}


def test_pages_and_page_sizes(sentiment_project: TestClient) -> None:
    page2 = sentiment_project.get("/api/tasks?page=2&page_size=2").json()
    assert [t["id"] for t in page2["tasks"]] == [3, 4]
    assert page2["total"] == 5
    last = sentiment_project.get("/api/tasks?page=3&page_size=2").json()
    assert [t["id"] for t in last["tasks"]] == [5]
    past = sentiment_project.get("/api/tasks?page=9&page_size=2").json()
    assert past["tasks"] == [] and past["total"] == 5


def test_orders(sentiment_project: TestClient) -> None:
    client = sentiment_project
    client.post("/api/tasks/5/completions", json={"result": RESULT})

    def ids(order: str) -> list[int]:
        return [t["id"] for t in client.get(f"/api/tasks?order={order}").json()["tasks"]]

    assert ids("-id") == ids("-tasks:id") == [5, 4, 3, 2, 1]
    assert ids("tasks:id") == [1, 2, 3, 4, 5]
    # completed tasks first (oldest completion first), then the rest by id
    assert ids("completed_at")[:2] in ([3, 5], [5, 3])
    assert ids("completed_at")[2:] == [1, 2, 4]
    assert ids("-tasks:completed_at")[2:] == [1, 2, 4]
    page = client.get("/api/tasks?order=-id&page=2&page_size=2").json()["tasks"]
    assert [t["id"] for t in page] == [3, 2]


def test_bad_pages_and_orders(sentiment_project: TestClient) -> None:
    for query in ("page=0", "page_size=0", "page=-1"):
        response = sentiment_project.get(f"/api/tasks?{query}")
        assert response.status_code == 422
        assert response.json() == {"status": 422, "detail": "Incorrect page or page_size"}
    response = sentiment_project.get("/api/tasks?page=abc")
    assert response.status_code == 400
    assert "page must be an integer" in response.json()["detail"]
    response = sentiment_project.get("/api/tasks?order=banana")
    assert response.status_code == 400
    assert "Unknown order 'banana'" in response.json()["detail"]


def test_get_task_and_pretty(sentiment_project: TestClient) -> None:
    response = sentiment_project.get("/api/tasks/2")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["meta"] == {"source": "crawl-7"}
    pretty = sentiment_project.get("/api/tasks/2?pretty=1")
    assert "\n  " in pretty.text and pretty.json() == response.json()


def test_unknown_task_is_404(sentiment_project: TestClient) -> None:
    for method in ("get", "delete"):
        response = getattr(sentiment_project, method)("/api/tasks/999")
        assert response.status_code == 404
        assert response.json() == {"status": 404, "detail": "Task 999 not found"}
    response = sentiment_project.patch("/api/tasks/999", json={"data": {"text": "x"}})
    assert response.status_code == 404
    assert sentiment_project.get("/api/tasks/abc").status_code == 404


def test_patch_replaces_named_parts(sentiment_project: TestClient) -> None:
    client = sentiment_project
    body = {"data": {"text": "new text"}, "predictions": [{"result": [], "score": 0.9}]}
    response = client.patch("/api/tasks/4", json=body)
    assert response.status_code == 200
    assert response.json() == {"detail": "Task patched", "data": body}
    task = client.get("/api/tasks/4").json()
    assert task["data"] == {"text": "new text"}
    assert task["predictions"] == [{"result": [], "score": 0.9}]
    assert task["predictions_score"] == 0.9
    assert client.get("/api/tasks").json()["total_predictions"] == 1
    # POST is the same as PATCH; meta only
    assert client.post("/api/tasks/4", json={"meta": {"k": 1}}).status_code == 200
    task = client.get("/api/tasks/4").json()
    assert task["meta"] == {"k": 1} and task["data"] == {"text": "new text"}


def test_patch_after_completion_shows_current_data(sentiment_project: TestClient) -> None:
    client = sentiment_project
    client.patch("/api/tasks/3", json={"data": {"text": "edited after labeling"}})
    assert client.get("/api/tasks/3").json()["data"] == {"text": "edited after labeling"}


def test_patch_validation_error_is_400_array(sentiment_project: TestClient) -> None:
    response = sentiment_project.patch("/api/tasks/1", json={"data": {"title": "no text"}})
    assert response.status_code == 400
    assert response.json() == [
        'Error   at item 0: "text" key is expected in task data '
        "[assume: item[\"data\"] = task root with values] :: {'data': {'title': 'no text'}}"
    ]
    assert sentiment_project.get("/api/tasks/1").json()["data"]["text"].startswith("A bare")
    response = sentiment_project.patch("/api/tasks/1", json=[1, 2])
    assert response.status_code == 400


def test_delete_task_keeps_pages_dense(sentiment_project: TestClient) -> None:
    client = sentiment_project
    assert client.delete("/api/tasks/2").status_code == 204
    body = client.get("/api/tasks?page=2&page_size=2").json()
    assert [t["id"] for t in body["tasks"]] == [4, 5]
    assert body["total"] == 4
    assert client.delete("/api/tasks/3").status_code == 204
    assert client.get("/api/tasks").json()["total_completions"] == 0
    assert client.get("/api/project").json()["task_count"] == 3


def test_delete_all_tasks(sentiment_project: TestClient) -> None:
    response = sentiment_project.delete("/api/tasks")
    assert response.status_code == 204 and response.content == b""
    body = sentiment_project.get("/api/tasks").json()
    assert body == {"tasks": [], "total": 0, "total_completions": 0, "total_predictions": 0}
    report = sentiment_project.post("/api/project/import", json=[{"text": "again"}]).json()
    assert report["total_tasks"] == 1
    assert sentiment_project.get("/api/tasks").json()["tasks"][0]["data"] == {"text": "again"}


def test_delete_task_removes_its_completions_predictions_and_label_rows(
    sentiment_project: TestClient,
) -> None:
    """The task's rows in other tables go by the foreign keys' cascades; other tasks keep
    theirs."""
    client = sentiment_project
    choice = {"from_name": "sentiment", "to_name": "text", "type": "choices"}
    item = {
        "data": {"text": "to be deleted"},
        "completions": [{"result": [{**choice, "value": {"choices": ["Positive"]}}]}],
        "predictions": [{"result": [], "score": 0.5}],
    }
    assert client.post("/api/project/import", json=[item, item]).status_code == 201
    gone, kept = (t["id"] for t in client.get("/api/tasks?page_size=100").json()["tasks"][-2:])

    def rows(task_id: int) -> tuple[int, int, int]:
        return (
            Completion.select().where(Completion.task == task_id).count(),
            Prediction.select().where(Prediction.task == task_id).count(),
            TaskLabel.select().where(TaskLabel.task == task_id).count(),
        )

    assert db.with_connection(rows, gone) == (1, 1, 1)
    before = client.get("/api/tasks").json()
    assert client.delete(f"/api/tasks/{gone}").status_code == 204
    assert db.with_connection(rows, gone) == (0, 0, 0)
    assert db.with_connection(rows, kept) == (1, 1, 1)
    after = client.get("/api/tasks").json()
    assert after["total_completions"] == before["total_completions"] - 1
    assert after["total_predictions"] == before["total_predictions"] - 1
