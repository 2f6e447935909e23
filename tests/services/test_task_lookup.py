"""Tasks by id through a prepared select (server/services/tasks/lookup.py): the same rows, the
same conversions and the same NOT_FOUND as peewee's own query, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64

import pytest
from starlette.testclient import TestClient

from server import db
from server.errors import DomainError
from server.models import Task
from server.services.tasks import lookup
from server.services.tasks import tasks as task_service
from server.services.tasks.lookup import find_task
from tests.conftest import fixture_json


def test_found_tasks_equal_peewees_rows_and_others_are_not_found(client: TestClient) -> None:
    answer = client.post("/api/project/import", json=fixture_json("tasks/sentiment_mixed.json"))
    assert answer.status_code == 201, answer.text
    ids = answer.json()["new_task_ids"]

    def check() -> None:
        for task_id in ids:
            expected = task_service.get_task(task_id)
            for found in (find_task(task_id), find_task(task_id, expected.project_id)):
                assert type(found) is Task
                assert found.__data__ == expected.__data__
                assert not found.is_dirty() and found.__rel__ == {}  # as peewee's own rows
                assert found.project_id == expected.project_id
                assert isinstance(found.data, dict) and found.data == expected.data
        project_id = find_task(ids[0]).project_id
        for missing, project in ((max(ids) + 1, None), (ids[0], project_id + 1), (-5, None)):
            with pytest.raises(DomainError) as raised:
                find_task(missing, project)
            assert raised.value.code == "not_found"
            assert raised.value.message == f"Task {missing} not found"

    db.with_connection(check)


def test_a_prepared_select_needs_each_argument_once(client: TestClient) -> None:
    twice = db.PreparedSelect(
        Task, lambda a: Task.select().where((Task.id == a) | (Task.position == a)), 1
    )
    with pytest.raises(ValueError, match="exactly once"):
        twice._sql()


def test_the_locked_lookup_locks_the_row_on_postgresql_only(client: TestClient) -> None:
    sql = lookup._LOCKED_BY_ID_IN_PROJECT._sql()[0]
    assert ("FOR UPDATE" in sql) is (not db.is_sqlite())
    assert "FOR UPDATE" not in lookup._BY_ID_IN_PROJECT._sql()[0]


def test_a_prepared_select_refuses_columns_that_are_no_fields(client: TestClient) -> None:
    """Rows are built from the model's fields: a column that names none is an error, not a
    silently dropped value."""
    odd = db.PreparedSelect(
        Task, lambda a: Task.select(Task.id, (Task.id + 1).alias("later")).where(Task.id == a), 1
    )
    with pytest.raises(ValueError, match="no field of Task"):
        db.with_connection(odd.first, 1)


def test_page_loaders_equal_peewees_queries(client: TestClient) -> None:
    """The page's prepared queries (children by task ids of any count, id-order slices, the
    project) answer the rows peewee's own queries answer."""
    tasks = [
        {
            "data": {"text": f"t{i}"},
            "completions": [{"result": []}] * (i % 3),
            "predictions": [{"result": [], "score": i / 10}] * (i % 2),
        }
        for i in range(12)
    ]
    answer = client.post("/api/project/import", json=tasks)
    assert answer.status_code == 201, answer.text
    ids = answer.json()["new_task_ids"]

    def check() -> None:
        from server.models import Completion, Prediction, Project
        from server.services import projects

        for chosen in (ids[:1], ids[2:9], ids, [*ids, 10**6], [10**6]):
            children = task_service.load_children(chosen)
            for model, found in (
                (Completion, children.completions),
                (Prediction, children.predictions),
            ):
                expected = list(model.select().where(model.task.in_(chosen)).order_by(model.id))
                got = [row for task_id in sorted(found) for row in found[task_id]]
                assert sorted(r.id for r in got) == [r.id for r in expected]
                by_id = {r.id: r.__data__ for r in expected}
                assert all(r.__data__ == by_id[r.id] for r in got)
        # Beyond the prepared sizes the query is built as before.
        many = [*ids, *range(10**6, 10**6 + 1000)]
        assert sum(map(len, task_service.load_children(many).completions.values())) == sum(
            i % 3 for i in range(12)
        )
        project = projects.get_project(find_task(ids[0]).project_id)
        assert project.__data__ == Project.get_by_id(project.id).__data__
        for order in (task_service.TaskOrder.ID_ASC, task_service.TaskOrder.ID_DESC):
            first = task_service.list_slice(project, 5, None, order, 100)
            ordered = sorted(ids, reverse=order is task_service.TaskOrder.ID_DESC)
            assert [t.id for t in first.tasks] == ordered[:5]
            assert first.has_next_page
            rest = task_service.list_slice(project, 100, first.cursors[-1], order, 100)
            assert [t.id for t in rest.tasks] == ordered[5:]
            assert not rest.has_next_page
            assert rest.tasks[0].__data__ == Task.get_by_id(ordered[5]).__data__
            # A cursor whose key is null (crafted: ours never are in id order) ends the list.
            raw = base64.urlsafe_b64encode(f'["{order.value}",null]'.encode()).decode()
            assert task_service.list_slice(project, 5, raw, order, 100).tasks == []

    db.with_connection(check)
