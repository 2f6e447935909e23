"""The annotator's hot paths make a fixed, small number of queries (no timings here: see
bench/hot_paths.py for those)."""

from __future__ import annotations

import time

import pytest
from starlette.testclient import TestClient

from rest_compat._http import ENDPOINTS
from server.services.tasks import rank_blocks
from tests.conftest import TEST_DATABASE_URL
from tests.query_log import count_queries

# On PostgreSQL a task write takes its project's lock (shared) before the task's row lock
# (one lock order for every writer: server.services.tasks.lookup.lock_task); then the blocks'
# lock shared and the task's pending rank changes, in one round trip (rank_blocks.record).
# SQLite's writers are serialised.
POSTGRES = bool(TEST_DATABASE_URL)
# The task (locked, within the request's project), the completion, its labels (task_label
# rows, for the data manager's label filters), the task's counters and the project's (an
# upsert of the task's counter shard). On PostgreSQL, two round trips: the project's lock and
# the task's in one (``SELECT pg_advisory_xact_lock_shared(…); SELECT … FOR UPDATE``), then
# the four writes as one statement of data-modifying CTEs (``WITH``), which also answers
# whether a target storage wants the completion.
NEW_COMPLETION = (
    ["SELECT", "WITH"] if POSTGRES else ["SELECT", "INSERT", "INSERT", "UPDATE", "INSERT"]
)
# Whether the project has a target storage: SQLite looks it up last in the transaction.
TARGET_LOOKUP = [] if POSTGRES else ["SELECT"]

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


def test_a_task_without_ml_backends_is_one_query(sentiment_project: TestClient) -> None:
    """The task, with whether the project has an ML backend (an EXISTS of an indexed lookup)."""
    task_id = _unlabeled_task_id(sentiment_project)
    for _ in range(3):  # PostgreSQL: prepared from the third time on; the log shows the SQL
        with count_queries() as counter:
            answer = sentiment_project.get(f"/api/tasks/{task_id}")
        assert answer.status_code == 200
        assert answer.json()["id"] == task_id
        assert answer.json()["data"] == {"text": "a fresh task"}
        (task_query,) = (q.msg[0] for q in counter.get_queries())
        assert task_query.startswith("SELECT") and '"task"' in task_query
        assert 'EXISTS(SELECT 1 FROM "ml_backend"' in task_query


def test_the_next_task_without_ml_backends_is_one_query(sentiment_project: TestClient) -> None:
    """The project, then the seek that finds the task, with whether the project has an ML
    backend."""
    for _ in range(3):
        with count_queries() as counter:
            answer = sentiment_project.get("/api/project/next")
        assert answer.status_code == 200
        assert answer.json()["data"]["text"]
        queries = [q.msg[0] for q in counter.get_queries()]
        assert not any(q.startswith('SELECT 1 FROM "ml_backend"') for q in queries), queries
        assert 'EXISTS(SELECT 1 FROM "ml_backend"' in queries[-1]


# A per-task writer's change of the rank blocks: its pending rows, inserted (on PostgreSQL after
# the blocks' shared lock, in the same round trip: logged as one statement starting "SELECT").
RANK_CHANGE = "SELECT" if POSTGRES else "INSERT"


@pytest.fixture
def no_fold(monkeypatch: pytest.MonkeyPatch) -> None:
    """No fold of the pending rank changes during the test (one write in FOLD_EVERY folds)."""
    monkeypatch.setattr(rank_blocks, "FOLD_EVERY", 10**9)


def test_a_completion_post_makes_a_fixed_number_of_queries(
    sentiment_project: TestClient, no_fold: None
) -> None:
    task_id = _unlabeled_task_id(sentiment_project)
    with count_queries() as counter:
        answer = sentiment_project.post(
            f"/api/tasks/{task_id}/completions", json={"result": RESULT}
        )
    assert answer.status_code == 201
    statements = [q.msg[0].split()[0] for q in counter.get_queries()]
    # The new completion's writes (NEW_COMPLETION); the task leaves the unlabeled order and
    # joins the completion order: two pending rank changes in one INSERT, no block row
    # changed; whether a target storage wants it (SQLite; in the writes' statement on
    # PostgreSQL), before the commit.
    assert statements == [*NEW_COMPLETION, RANK_CHANGE, *TARGET_LOOKUP]
    task = sentiment_project.get(f"/api/tasks/{task_id}").json()
    assert [c["id"] for c in task["completions"]] == [answer.json()["id"]]
    assert task["completions"][0]["result"] == RESULT


def test_a_completion_post_in_a_large_project_is_eight_statements(
    sentiment_project: TestClient, no_fold: None
) -> None:
    """In a large project too, leaving the unlabeled order and joining the completion order
    is one INSERT of pending rank changes, as is a labeled task's newer completion (its old
    and new completion-order keys): the write path of a completion makes no other statement."""
    answer = sentiment_project.post(
        "/api/project/import", json=[{"text": f"task {i}"} for i in range(1100)]
    )
    assert answer.status_code == 201, answer.text
    task_id, other_id = answer.json()["new_task_ids"][:2]
    with count_queries() as counter:
        created = sentiment_project.post(
            f"/api/tasks/{task_id}/completions", json={"result": RESULT}
        )
    assert created.status_code == 201, created.text
    statements = [q.msg[0].split()[0] for q in counter.get_queries()]
    assert statements == [
        *NEW_COMPLETION,  # task, completion, labels, counters
        RANK_CHANGE,  # out of the unlabeled order, into the completion order
        *TARGET_LOOKUP,  # a target storage?
    ]
    # A second completion (of another task first, so the first task's is not the newest).
    assert (
        sentiment_project.post(
            f"/api/tasks/{other_id}/completions", json={"result": RESULT}
        ).status_code
        == 201
    )
    time.sleep(1.05)  # a later completed_at (seconds)
    with count_queries() as counter:
        again = sentiment_project.post(f"/api/tasks/{task_id}/completions", json={"result": RESULT})
    assert again.status_code == 201, again.text
    statements = [q.msg[0].split()[0] for q in counter.get_queries()]
    assert statements == [*NEW_COMPLETION, RANK_CHANGE, *TARGET_LOOKUP]  # its old and new key
    task = sentiment_project.get(f"/api/tasks/{task_id}").json()
    assert [c["id"] for c in task["completions"]] == [created.json()["id"], again.json()["id"]]
    assert task["total_completions"] == 2
    # The completion order's blocks agree: labeled tasks first, the newest completion last.
    page = sentiment_project.get("/api/tasks?order=completed_at&page=1&page_size=100").json()
    labeled = [t["id"] for t in page["tasks"] if t["total_completions"]]
    assert [t["id"] for t in page["tasks"][: len(labeled)]] == labeled
    assert labeled[-2:] == [other_id, task_id]
