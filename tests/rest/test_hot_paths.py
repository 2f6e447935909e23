"""The annotator's hot paths make a fixed, small number of queries (no timings here: see
bench/hot_paths.py for those)."""

from __future__ import annotations

import time

from starlette.testclient import TestClient

from rest_compat._http import ENDPOINTS
from tests.conftest import TEST_DATABASE_URL
from tests.query_log import count_queries

# On PostgreSQL a task write takes its project's lock (shared) before the task's row lock
# (one lock order for every writer: server.services.tasks.lookup.lock_task); then, in a
# savepoint, the blocks' lock shared and the task's two blocks (one round trip), and their
# sizes shifted when that is all the move takes (rank_blocks._moved_in_place); else the
# savepoint is rolled back and the full move runs under the blocks' lock taken exclusively.
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
    # The new completion's writes (NEW_COMPLETION); the rank block the task leaves (unlabeled:
    # a small block, so its neighbours are looked up to join it) and the one it joins (completion
    # order), each shifted in one UPDATE; whether a target storage wants it (SQLite; in the
    # writes' statement on PostgreSQL), before the commit.
    assert statements == [
        *NEW_COMPLETION,
        # (PostgreSQL: not in place, an unlabeled block this small is merged)
        *(["SAVEPOINT", "SELECT", "UPDATE", "UPDATE"] if POSTGRES else []),
        *(["ROLLBACK", "SELECT"] if POSTGRES else []),
        *["UPDATE", "SELECT", "SELECT", "UPDATE"],
        *TARGET_LOOKUP,
    ]
    task = sentiment_project.get(f"/api/tasks/{task_id}").json()
    assert [c["id"] for c in task["completions"]] == [answer.json()["id"]]
    assert task["completions"][0]["result"] == RESULT


def test_a_completion_post_in_a_large_project_is_eight_statements(
    sentiment_project: TestClient,
) -> None:
    """Past a block's minimum size (1,024 tasks) leaving the unlabeled order is one UPDATE,
    and a labeled task's newer completion that stays in its completion-order block changes
    no block: the write path of a completion makes no other statement."""
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
        # out of the unlabeled order, into the completion order
        *(["SAVEPOINT", "SELECT"] if POSTGRES else []),  # the blocks' lock and both blocks
        *["UPDATE", "UPDATE"],
        *(["RELEASE"] if POSTGRES else []),
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
    assert statements == [
        *NEW_COMPLETION,
        # its old and new completion-order block, the same one (PostgreSQL: with the lock)
        *(["SAVEPOINT", "SELECT", "RELEASE"] if POSTGRES else ["SELECT", "SELECT"]),
        *TARGET_LOOKUP,
    ]
    task = sentiment_project.get(f"/api/tasks/{task_id}").json()
    assert [c["id"] for c in task["completions"]] == [created.json()["id"], again.json()["id"]]
    assert task["total_completions"] == 2
    # The completion order's blocks agree: labeled tasks first, the newest completion last.
    page = sentiment_project.get("/api/tasks?order=completed_at&page=1&page_size=100").json()
    labeled = [t["id"] for t in page["tasks"] if t["total_completions"]]
    assert [t["id"] for t in page["tasks"][: len(labeled)]] == labeled
    assert labeled[-2:] == [other_id, task_id]
