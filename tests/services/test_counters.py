"""Project totals (server/services/counters.py): per-task writers count into per-shard rows,
bulk writers into the project row, and every reader gets the exact sum; on PostgreSQL per-task
writers of different tasks do not wait for each other, while a bulk writer waits for them
(the project's advisory lock: shared for the first, exclusive for the second)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any

import peewee
import pytest
from starlette.testclient import TestClient

from server import db
from server.errors import DomainError
from server.models import Completion, Prediction, Project, ProjectCounter, Task
from server.services import counters
from server.services.projects import get_project, lock_project
from server.services.tasks import completions
from tests.conftest import TEST_DATABASE_URL

RESULT = [
    {"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["Neg"]}}
]
CONFIG = """<View><Text name="text" value="$text"/>
<Choices name="sentiment" toName="text"><Choice value="Pos"/><Choice value="Neg"/></Choices>
</View>"""


def _import(client: TestClient, count: int) -> list[int]:
    answer = client.post("/api/project/config", data={"label_config": CONFIG})
    assert answer.status_code == 201, answer.text
    tasks = [
        {
            "data": {"text": f"t{i}"},
            "predictions": [{"result": RESULT, "score": 0.5}] if i % 3 == 0 else [],
            "completions": [{"result": RESULT}] if i % 4 == 0 else [],
        }
        for i in range(count)
    ]
    answer = client.post("/api/project/import", json=tasks)
    assert answer.status_code == 201, answer.text
    return [int(i) for i in answer.json()["new_task_ids"]]


def _truth(project_id: int) -> dict[str, int]:
    in_project = Task.project == project_id
    return {
        "task_count": Task.select().where(in_project).count(),
        "labeled_task_count": Task.select().where(in_project, Task.is_labeled == True).count(),  # noqa: E712
        "completion_count": Completion.select().where(Completion.project == project_id).count(),
        "prediction_count": Prediction.select().where(Prediction.project == project_id).count(),
    }


def _every_reading(project_id: int) -> list[dict[str, int]]:
    """The totals as each kind of reader sees them."""
    by_read = counters.read(project_id)
    requested = get_project(project_id)  # the request's project, read with its totals
    loaded = Project.get_by_id(project_id)  # any other load: read on first use
    with db.write_transaction():
        locked = lock_project(project_id)
        under_lock = {f: getattr(locked, f) for f in counters.FIELDS}
    return [
        by_read,
        {f: getattr(requested, f) for f in counters.FIELDS},
        {f: getattr(loaded, f) for f in counters.FIELDS},
        under_lock,
    ]


def test_totals_stay_exact_through_per_task_and_bulk_writes(
    client: TestClient, project_id: int
) -> None:
    ids = _import(client, 40)

    def check() -> None:
        assert _every_reading(project_id) == [_truth(project_id)] * 4

    assert db.with_connection(_truth, project_id) == {
        "task_count": 40,
        "labeled_task_count": 10,
        "completion_count": 10,
        "prediction_count": 14,
    }
    db.with_connection(check)
    for task_id in ids[:20]:  # per-task writers: completions on many tasks (many shards)
        answer = client.post(f"/api/tasks/{task_id}/completions", json={"result": RESULT})
        assert answer.status_code == 201, answer.text
    assert client.patch(f"/api/tasks/{ids[1]}", json={"predictions": []}).status_code == 200
    assert client.delete(f"/api/tasks/{ids[4]}").status_code == 204
    completion_id = client.get(f"/api/tasks/{ids[8]}").json()["completions"][0]["id"]
    assert client.delete(f"/api/tasks/{ids[8]}/completions/{completion_id}").status_code == 204

    def shards_and_check() -> None:
        shards = ProjectCounter.select().where(ProjectCounter.project == project_id).count()
        assert shards > 10  # spread over the shards of the tasks written
        check()

    db.with_connection(shards_and_check)
    # The project JSON and the task list agree with the rows.
    truth = db.with_connection(_truth, project_id)
    listing = client.get("/api/tasks?page=1&page_size=5").json()
    assert listing["total"] == truth["task_count"]
    assert listing["total_completions"] == truth["completion_count"]
    assert listing["total_predictions"] == truth["prediction_count"]
    # Bulk writers: clearing every completion, a bulk import, deleting every task.
    assert client.delete("/api/completions").status_code == 201  # (as Label Studio)
    db.with_connection(check)
    more = client.post("/api/project/import", json=[{"text": "late"}, {"text": "later"}])
    assert more.status_code == 201, more.text
    assert client.post(f"/api/tasks/{ids[2]}/completions", json={"result": RESULT}).status_code
    db.with_connection(check)
    assert client.delete("/api/tasks").status_code in (200, 201, 204)

    def emptied() -> None:
        assert _every_reading(project_id) == [dict.fromkeys(counters.FIELDS, 0)] * 4
        assert not ProjectCounter.select().where(ProjectCounter.project == project_id).exists()

    db.with_connection(emptied)


def test_saving_a_project_never_writes_its_totals(client: TestClient, project_id: int) -> None:
    ids = _import(client, 4)
    assert client.post(f"/api/tasks/{ids[1]}/completions", json={"result": RESULT}).status_code

    def save_and_read() -> None:
        project = get_project(project_id)  # holds the totals, not the project row's base
        project.title = "renamed"
        project.save()
        assert Project.get_by_id(project_id).title == "renamed"
        assert counters.read(project_id) == _truth(project_id)

    db.with_connection(save_and_read)


# --- PostgreSQL: who waits for whom ---------------------------------------------------------

postgres_only = pytest.mark.skipif(not TEST_DATABASE_URL, reason="PostgreSQL's locks")


class _OpenWriter:
    """A completion written in a transaction kept open on another thread until released."""

    def __init__(self, task_id: int, project_id: int) -> None:
        self.ready = threading.Event()
        self.release = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(task_id, project_id))

    def _run(self, task_id: int, project_id: int) -> None:
        def write() -> None:
            with db.write_transaction():
                completions.create_completion(task_id, {"result": RESULT}, project_id=project_id)
                self.ready.set()
                self.release.wait(30)

        try:
            db.with_connection(write)
        except BaseException as exc:  # reported by the test
            self.error = exc
            self.ready.set()

    def __enter__(self) -> _OpenWriter:
        self.thread.start()
        assert self.ready.wait(30)
        assert self.error is None
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.thread.join(30)
        assert self.error is None


def _with_lock_timeout(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in a write transaction that fails instead of waiting over 1 s for a lock."""

    def run() -> Any:
        with db.write_transaction():
            db.database.execute_sql("SET LOCAL lock_timeout = '1s'")
            return fn()

    return db.with_connection(run)


@pytest.fixture
def open_writer(client: TestClient, project_id: int) -> Iterator[tuple[_OpenWriter, list[int]]]:
    """A writer holding the first completion of a task in a project of 1,400 tasks (1,050
    unlabeled: past a block's minimum size), so labeling a task only shifts two block sizes,
    under the blocks' shared lock."""
    ids = _import(client, 1400)
    with _OpenWriter(ids[1], project_id) as writer:
        yield writer, ids


@postgres_only
def test_writers_of_different_tasks_do_not_wait_for_each_other(
    open_writer: tuple[_OpenWriter, list[int]], project_id: int
) -> None:
    _writer, ids = open_writer
    # Newer completions of labeled tasks (every 4th was imported with one), which stay in
    # their completion-order block: none waits for the open writer. (Another task's first
    # completion would: both shift the size of the last completion-order block, a row lock
    # held until commit.)
    for task_id in (ids[0], ids[4], ids[0], ids[8]):
        created = _with_lock_timeout(
            functools.partial(
                completions.create_completion, task_id, {"result": RESULT}, project_id=project_id
            )
        )
        assert created.task_id == task_id


@postgres_only
def test_a_bulk_writer_waits_for_the_per_task_writers(
    open_writer: tuple[_OpenWriter, list[int]], project_id: int
) -> None:
    writer, _ids = open_writer
    with pytest.raises((peewee.OperationalError, DomainError)) as raised:
        _with_lock_timeout(lambda: completions.delete_all_completions(project_id))
    assert "lock timeout" in str(raised.value)
    writer.release.set()
    writer.thread.join(30)
    assert _with_lock_timeout(lambda: completions.delete_all_completions(project_id)) >= 1
    assert db.with_connection(counters.read, project_id)["completion_count"] == 0
