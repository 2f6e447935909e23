"""The label stream's sequential and uniform seeks run prepared SQL (server/services/tasks/
next_task.py): the same task as peewee's own query, for any pivot, with labeled and deleted
tasks in the way, and no SQL built by peewee per call (what the mixed load of bench/load/
spent most of a ``next`` on). SQLite and PostgreSQL, as every test here."""

from __future__ import annotations

import random
from unittest import mock

import peewee
from starlette.testclient import TestClient

from server import db
from server.models import UNLABELED, Project, Task
from server.services.tasks.next_task import next_task

RESULT = [{"from_name": "s", "to_name": "text", "type": "choices", "value": {"choices": ["A"]}}]
CONFIG = (
    '<View><Text name="text" value="$text"/><Choices name="s" toName="text">'
    '<Choice value="A"/><Choice value="B"/></Choices></View>'
)


def _peewee_uniform(project_id: int, pivot: int) -> int | None:
    """The uniform mode's task for this pivot, by peewee's own queries."""
    candidates = Task.select().where(Task.project == project_id, UNLABELED)
    found = candidates.where(Task.id >= pivot).order_by(Task.id).first()
    low = candidates.order_by(Task.id).first()
    return (found or low).id if low is not None else None


def test_next_task_equals_peewees_query_and_builds_no_sql(client: TestClient) -> None:
    assert client.post("/api/project/config", data={"label_config": CONFIG}).is_success
    answer = client.post("/api/project/import", json=[{"text": f"t{i}"} for i in range(30)])
    ids = answer.json()["new_task_ids"]
    for task_id in ids[:3] + ids[10:14] + ids[-2:]:  # labeled: the first, a run, the last
        assert client.post(f"/api/tasks/{task_id}/completions", json={"result": RESULT}).is_success
    for task_id in (ids[5], ids[20]):
        assert client.delete(f"/api/tasks/{task_id}").status_code == 204
    unlabeled = [t for t in ids if t not in ids[:3] + ids[10:14] + ids[-2:] + [ids[5], ids[20]]]

    def check() -> None:
        project = Project.get()
        assert next_task(project, "sequential").id == unlabeled[0]  # type: ignore[union-attr]
        for pivot in range(ids[0] - 1, ids[-1] + 2):
            rng = mock.Mock(spec=random.Random)
            rng.randint.return_value = pivot
            chosen = next_task(project, "uniform", rng)
            assert chosen is not None and chosen.id == _peewee_uniform(project.id, pivot)
            assert chosen.id in unlabeled and isinstance(chosen.data, dict)
            assert chosen.data["text"].startswith("t")
            rng.randint.assert_called_once_with(unlabeled[0], unlabeled[-1])
        with mock.patch.object(peewee.Select, "__sql__", side_effect=AssertionError("built")):
            next_task(project, "sequential")
            next_task(project, "uniform", random.Random(1))

    db.with_connection(check)


def test_an_empty_stream_gives_none(client: TestClient) -> None:
    assert client.post("/api/project/config", data={"label_config": CONFIG}).is_success
    answer = client.post("/api/project/import", json=[{"text": "only"}])
    task_id = answer.json()["new_task_ids"][0]
    assert client.post(f"/api/tasks/{task_id}/completions", json={"result": RESULT}).is_success

    def check() -> None:
        project = Project.get()
        assert next_task(project, "sequential") is None
        assert next_task(project, "uniform", random.Random(1)) is None

    db.with_connection(check)
    assert client.get("/api/project/next").status_code == 404
