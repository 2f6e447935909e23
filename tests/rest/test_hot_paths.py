"""The annotator's hot paths make a fixed, small number of queries (no timings here: see
bench/hot_paths.py for those)."""

from __future__ import annotations

from starlette.testclient import TestClient

from rest_compat._http import ENDPOINTS
from tests.query_log import count_queries

RESULT = [
    {
        "from_name": "sentiment",
        "to_name": "text",
        "type": "choices",
        "value": {"choices": ["Positive"]},
    }
]


def _unlabeled_task_id(client: TestClient) -> int:
    """A new task without completions or predictions."""
    answer = client.post("/api/project/import", json=[{"text": "a fresh task"}])
    assert answer.status_code == 201, answer.text
    return int(answer.json()["new_task_ids"][0])


def test_operations_run_on_the_event_loop_make_no_query(client: TestClient) -> None:
    on_loop = {e.path for e in ENDPOINTS if e.operation.on_loop}
    assert on_loop == {"/api/health", "/version"}
    with count_queries() as counter:
        assert client.get("/api/health").json() == {"status": "up"}
        assert client.get("/version").json()["labelgraph"]
    assert counter.count == 0


def test_a_task_without_ml_backends_is_two_queries(sentiment_project: TestClient) -> None:
    """The task, and whether the project has an ML backend (an indexed lookup)."""
    task_id = _unlabeled_task_id(sentiment_project)
    with count_queries() as counter:
        answer = sentiment_project.get(f"/api/tasks/{task_id}")
    assert answer.status_code == 200
    assert answer.json()["id"] == task_id
    assert answer.json()["data"] == {"text": "a fresh task"}
    task_query, backend_query = (q.msg[0] for q in counter.get_queries())
    assert task_query.startswith("SELECT") and '"task"' in task_query
    assert backend_query.startswith('SELECT 1 FROM "ml_backend"')


def test_a_completion_post_makes_a_fixed_number_of_queries(sentiment_project: TestClient) -> None:
    task_id = _unlabeled_task_id(sentiment_project)
    with count_queries() as counter:
        answer = sentiment_project.post(
            f"/api/tasks/{task_id}/completions", json={"result": RESULT}
        )
    assert answer.status_code == 201
    statements = [q.msg[0].split()[0] for q in counter.get_queries()]
    # The task (visibility), the task again in the write transaction, the completion, the
    # task's and the project's counters; the project (locked) and the rank blocks the task
    # leaves (unlabeled) and joins (completion order); its labels (task_label rows, for the
    # data manager's label filters); whether a target storage wants it.
    assert statements == [
        *["SELECT", "SELECT", "INSERT", "UPDATE", "UPDATE"],
        *["SELECT", "SELECT", "UPDATE", "SELECT", "SELECT", "SELECT", "UPDATE"],
        "INSERT",
        "SELECT",
    ]
    task = sentiment_project.get(f"/api/tasks/{task_id}").json()
    assert [c["id"] for c in task["completions"]] == [answer.json()["id"]]
    assert task["completions"][0]["result"] == RESULT
