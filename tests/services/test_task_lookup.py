"""Tasks by id through a prepared select (server/services/tasks/lookup.py): the same rows, the
same conversions and the same NOT_FOUND as peewee's own query, on SQLite and PostgreSQL."""

from __future__ import annotations

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
