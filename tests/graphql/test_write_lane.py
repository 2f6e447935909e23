"""The write lane (schema/stored.py, schema/write_lane.py): short writes (a completion, a task),
from REST or ``/graphql``, run on a small pool of their own (one thread on SQLite, one after
another); reads and long writes keep the shared pool, and a write held up on the lane holds up
no read. A queued write's write wait counts from when it was queued."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from starlette.testclient import TestClient

from schema import schema
from schema.stored import POSTGRES_LANE_THREADS
from schema.write_lane import SHORT_WRITE_FIELDS, is_short_write
from server import db
from server.services.tasks import completions as completion_service

LANE = "labelgraph-write-lane-"
POOL = "labelgraph-operation-"
BODY = {"result": [{"from_name": "x", "to_name": "y", "type": "choices", "value": {}}]}


def _task_ids(client: TestClient, count: int = 2) -> list[int]:
    answer = client.post("/api/project/import", json=[{"text": f"t{i}"} for i in range(count)])
    assert answer.status_code == 201, answer.text
    return list(answer.json()["new_task_ids"])


def _record_threads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """(operation, thread) of every operation run from now on, stored or sent to /graphql."""
    seen: list[tuple[str, str]] = []
    real_stored = schema.stored_operations.execute
    real_sync = schema.execute_sync

    def stored(source: str, variables: Any, context: Any, name: str) -> Any:
        seen.append((name, threading.current_thread().name))
        return real_stored(source, variables, context, name)

    def sync(*args: Any, **kwargs: Any) -> Any:
        seen.append(("graphql", threading.current_thread().name))
        return real_sync(*args, **kwargs)

    monkeypatch.setattr(schema.stored_operations, "execute", stored)
    monkeypatch.setattr(schema, "execute_sync", sync)
    return seen


def test_rest_short_writes_take_the_lane_and_reads_the_pool(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = _task_ids(client)
    seen = _record_threads(monkeypatch)
    created = client.post(f"/api/tasks/{first}/completions", json=BODY)
    assert created.status_code == 201, created.text
    completion_id = created.json()["id"]
    patched = client.patch(f"/api/tasks/{first}/completions/{completion_id}", json={"lead_time": 2})
    assert patched.status_code == 201, patched.text  # Label Studio's answer to a PATCH
    assert client.get(f"/api/tasks/{first}").json()["completions"][0]["lead_time"] == 2
    assert client.delete(f"/api/tasks/{first}/completions/{completion_id}").status_code == 204
    assert client.patch(f"/api/tasks/{second}", json={"data": {"text": "new"}}).status_code == 200
    assert client.delete(f"/api/tasks/{second}").status_code == 204
    page = client.get("/api/tasks").json()  # the writes all landed
    assert [(t["id"], t["total_completions"]) for t in page["tasks"]] == [(first, 0)]
    expected_writes = [
        "RestCompletionCreate",
        "RestCompletionUpdate",
        "RestCompletionDelete",
        "RestTaskPatch",
        "RestTaskDelete",
    ]
    writes = [(name, thread) for name, thread in seen if name in expected_writes]
    assert [name for name, _ in writes] == expected_writes
    assert all(thread.startswith(LANE) for _, thread in writes), writes
    reads = [(name, thread) for name, thread in seen if name not in expected_writes]
    assert {name for name, _ in reads} >= {"RestTask", "RestTasks"}
    assert all(thread.startswith(POOL) for _, thread in reads), reads


def test_graphql_short_writes_take_the_lane(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    (task_id,) = _task_ids(client, 1)
    seen = _record_threads(monkeypatch)
    create = (
        "mutation Save($id: Int!, $c: JSON!) { createCompletion(taskId: $id, completion: $c)"
        " { id } }"
    )
    variables = {"id": task_id, "c": BODY}
    answer = client.post("/graphql", json={"query": create, "variables": variables})
    assert answer.status_code == 200 and "errors" not in answer.json(), answer.text
    completion_id = answer.json()["data"]["createCompletion"]["id"]
    count = "{ project { completionCount } }"
    assert client.post("/graphql", json={"query": count}).json() == {
        "data": {"project": {"completionCount": 1}}
    }
    mixed = (
        f"mutation {{ deleteCompletion(taskId: {task_id}, id: {completion_id}) "
        'importTasks(tasks: [{text: "more"}]) { taskCount } }'
    )
    answer = client.post("/graphql", json={"query": mixed})
    assert answer.json()["data"]["importTasks"] == {"taskCount": 1}, answer.text
    threads = [thread for name, thread in seen if name == "graphql"]
    assert len(threads) == 3
    assert threads[0].startswith(LANE)
    assert threads[1].startswith(POOL)  # a query
    assert threads[2].startswith(POOL)  # a mutation with a long write in it


def test_a_write_held_up_on_the_lane_holds_up_no_read(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A completion POST stuck in its service call: reads of the same task still answer
    meanwhile, and the next short write waits for the lane (SQLite's one thread) and then
    lands."""
    first, second = _task_ids(client)
    entered = threading.Event()
    release = threading.Event()
    real_store = completion_service.store_completion

    def slow_store(task_id: int, *args: Any, **kwargs: Any) -> Any:
        if task_id == first:
            entered.set()
            assert release.wait(30)
        return real_store(task_id, *args, **kwargs)

    monkeypatch.setattr(completion_service, "store_completion", slow_store)
    answers: dict[int, int] = {}

    def post(task_id: int) -> None:
        answers[task_id] = client.post(f"/api/tasks/{task_id}/completions", json=BODY).status_code

    held = threading.Thread(target=post, args=(first,))
    held.start()
    try:
        assert entered.wait(30)
        queued = threading.Thread(target=post, args=(second,))
        queued.start()
        for _ in range(3):
            answer = client.get(f"/api/tasks/{first}")
            assert answer.status_code == 200 and answer.json()["total_completions"] == 0
        assert client.get("/api/tasks").status_code == 200
        if db.is_sqlite():
            queued.join(0.3)
            assert queued.is_alive() and second not in answers  # behind the held write
    finally:
        release.set()
        held.join(30)
    queued.join(30)
    assert answers == {first: 201, second: 201}
    counts = [client.get(f"/api/tasks/{t}").json()["total_completions"] for t in (first, second)]
    assert counts == [1, 1]


def test_writes_queued_on_the_lane_wait_the_write_wait_in_all(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Behind another writer that holds the turn (SQLite) or every write slot (PostgreSQL),
    one save more than the lane has threads: those on the lane's threads wait the whole write
    wait, the last only what is left of its own, counted from when it was queued (not a whole
    one more after them): all are refused as busy."""
    lane_threads = 1 if db.is_sqlite() else POSTGRES_LANE_THREADS
    task_ids = _task_ids(client, lane_threads + 1)
    monkeypatch.setattr(db, "_write_wait", 0.5)
    waits: list[float] = []
    real_acquire_released = db._acquire_released

    def recording(acquire: Any, release: Any, timeout: float) -> bool:
        waits.append(timeout)
        return real_acquire_released(acquire, release, timeout)

    monkeypatch.setattr(db, "_acquire_released", recording)
    if db.is_sqlite():
        held = db._sqlite_writer
    else:
        held = db.FairSemaphore(1)
        monkeypatch.setattr(db, "_postgres_writers", held)
    answers: dict[int, Any] = {}

    def post(task_id: int) -> None:
        answers[task_id] = client.post(f"/api/tasks/{task_id}/completions", json=BODY)

    assert held.acquire(5)  # another writer holds what the saves need
    try:
        posts = [threading.Thread(target=post, args=(t,)) for t in task_ids]
        for thread in posts:
            thread.start()
        for thread in posts:
            thread.join(30)
    finally:
        held.release()
    assert {t: a.status_code for t, a in answers.items()} == dict.fromkeys(task_ids, 503)
    assert all(a.headers["Retry-After"] == "5" for a in answers.values())
    assert len(waits) == len(task_ids)
    assert sorted(waits)[1] > 0.35  # the writes on the lane's threads: the whole write wait
    assert min(waits) < 0.25  # the last had been queued behind them for most of its wait
    assert client.post(f"/api/tasks/{task_ids[0]}/completions", json=BODY).status_code == 201


def test_a_queued_write_whose_wait_is_over_still_runs_when_nothing_holds_it_up(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Queued longer than the write wait, a write still runs when its turn (SQLite) or a slot
    and its locks (PostgreSQL) are free; on PostgreSQL it would wait for a lock only 1 ms.
    Its context's next write waits from its own start."""
    monkeypatch.setattr(db, "_write_wait", 0.2)

    def queued_write() -> tuple[str, str]:
        db.mark_write_queued()
        time.sleep(0.3)
        with db.write_transaction():
            first = _lock_timeout()
        with db.write_transaction():
            second = _lock_timeout()
        return first, second

    first, second = db.with_connection(queued_write)
    if not db.is_sqlite():
        assert first == "1ms"
        assert second != "1ms"  # the connection's own lock_timeout again: not shortened


def _lock_timeout() -> str:
    if db.is_sqlite():
        return ""
    return str(db.database.execute_sql("SHOW lock_timeout").fetchone()[0])


@pytest.mark.parametrize(
    ("query", "operation_name", "expected"),
    [
        ("mutation { createCompletion(taskId: 1, completion: {}) { id } }", None, True),
        ("mutation M { updateTask(id: 1, data: {}) { id } deleteTask(id: 2) }", None, True),
        ("mutation { deleteAllTasks }", None, False),
        ("mutation { deleteTask(id: 1) importTasks(tasks: []) { taskCount } }", None, False),
        ("query { task(id: 1) { id } } # mutation { deleteTask(id: 1) }", None, False),
        ('{ tasks(search: "mutation") { nodes { id } } }', None, False),
        ("mutation A { deleteTask(id: 1) } mutation B { deleteAllTasks }", "A", True),
        ("mutation A { deleteTask(id: 1) } mutation B { deleteAllTasks }", "B", False),
        ("mutation A { deleteTask(id: 1) } mutation B { deleteAllTasks }", None, False),
        ("mutation { ...F } fragment F on Mutation { deleteTask(id: 1) }", None, False),
        ("mutation { deleteTask(id: 1", None, False),
        ("mutation { a: deleteTask(id: 1) b: deleteTask(id: 2) }", None, True),
    ],
)
def test_which_documents_are_short_writes(
    query: str, operation_name: str | None, expected: bool
) -> None:
    assert is_short_write(query, operation_name, None) is expected


def test_short_write_fields_are_mutations_of_the_schema() -> None:
    mutation = schema._schema.mutation_type
    assert mutation is not None
    assert set(mutation.fields) >= SHORT_WRITE_FIELDS
