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


def test_a_prepared_select_keeps_columns_that_are_no_fields_as_peewee_does(
    client: TestClient,
) -> None:
    """Rows are built from the model's fields; a column that names none is not dropped: such
    rows are made the way peewee makes them (the value as an attribute)."""
    assert client.post("/api/project/import", json=[{"text": "x"}]).status_code == 201
    odd = db.PreparedSelect(
        Task, lambda a: Task.select(Task.id, (Task.id + 1).alias("later")).where(Task.id == a), 1
    )
    row = db.with_connection(odd.first, 1)
    assert row is not None and row.id == 1 and row.later == 2  # type: ignore[attr-defined]
    assert db.with_connection(odd.first, 99) is None


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
                expected: list[Completion | Prediction] = list(
                    model.select().where(model.task.in_(chosen)).order_by(model.id)
                )
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


def test_rows_made_from_the_cursor_are_peewees_rows(client: TestClient) -> None:
    """PreparedSelect.rows builds instances straight from the cursor (server.db.model_rows):
    every value converted as peewee converts it (booleans, nulls, JSON with integers beyond
    64 bits), nothing dirty, and the instance saves like one peewee made."""
    big = 2**70 + 1
    tasks = [
        {
            "data": {"text": "a", "big": big, "n": 1.5, "u": "\u00e9\U0001f600"},
            "meta": {"m": [1, None]},
            "completions": [{"result": [], "was_cancelled": True}, {"result": [{"x": big}]}],
            "predictions": [{"result": [], "score": 0.25}, {"result": []}],
        },
        {"data": {"text": "b"}},
    ]
    answer = client.post("/api/project/import", json=tasks)
    assert answer.status_code == 201, answer.text
    ids = answer.json()["new_task_ids"]

    def check() -> None:
        from server.models import Completion, Prediction

        children = task_service.load_children(ids)
        made: list[Completion | Prediction | Task] = [
            *children.completions[ids[0]],
            *children.predictions[ids[0]],
            *lookup._BY_ID.rows(ids[0]),
            *lookup._BY_ID.rows(ids[1]),
        ]
        assert [type(row) for row in made] == [Completion] * 2 + [Prediction] * 2 + [Task] * 2
        for row in made:
            expected = type(row).get_by_id(row.id)
            assert row.__data__ == expected.__data__
            assert [type(v) for v in row.__data__.values()] == [
                type(v) for v in expected.__data__.values()
            ]
            assert row._dirty == set() and row.__rel__ == {}  # type: ignore[union-attr]
        cancelled, kept = children.completions[ids[0]]
        assert cancelled.was_cancelled is True and kept.was_cancelled is False
        assert kept.payload["result"] == [{"x": big}]
        task, bare = made[-2:]
        assert isinstance(task, Task) and isinstance(bare, Task)
        assert task.data["big"] == big and task.meta == {"m": [1, None]}
        assert bare.meta is None and bare.completed_at is None and bare.is_labeled is False
        assert [p.score for p in children.predictions[ids[0]]] == [0.25, None]
        bare.meta = {"saved": True}
        bare.save()
        assert Task.get_by_id(bare.id).meta == {"saved": True}
        assert Task.get_by_id(bare.id).data == {"text": "b"}

    db.with_connection(check)
