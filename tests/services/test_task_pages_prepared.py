"""Pages in id order fetch their tasks through prepared SQL (server/services/tasks/tasks.py
``_ID_PAGES``): the same tasks as peewee's own query for every page and size, both orders,
with deleted tasks in the way, and no SQL built by peewee per page (what the mixed load of
bench/load/ spent much of a page on). SQLite and PostgreSQL, as every test here."""

from __future__ import annotations

from unittest import mock

import peewee
from starlette.testclient import TestClient

from server import db
from server.models import Project, Task
from server.services.tasks.tasks import TaskOrder, list_page


def test_id_pages_equal_peewees_query_and_build_no_sql(client: TestClient) -> None:
    answer = client.post("/api/project/import", json=[{"text": f"t{i}"} for i in range(23)])
    ids = answer.json()["new_task_ids"]
    for task_id in (ids[0], ids[7], ids[8], ids[-1]):
        assert client.delete(f"/api/tasks/{task_id}").status_code == 204
    kept = [t for t in ids if t not in (ids[0], ids[7], ids[8], ids[-1])]

    def check() -> None:
        project = Project.get()
        for order in (TaskOrder.ID_ASC, TaskOrder.ID_DESC):
            list_page(project, 1, 1, order)  # the SQL is built on first use
        for order, expected_order in ((TaskOrder.ID_ASC, kept), (TaskOrder.ID_DESC, kept[::-1])):
            for size in (1, 4, 10, 30):
                pages = -(-len(kept) // size)
                for page in range(1, pages + 2):
                    with mock.patch.object(
                        peewee.Select, "__sql__", side_effect=AssertionError("built")
                    ):
                        got = list_page(project, page, size, order).tasks
                    want = expected_order[(page - 1) * size : page * size]
                    assert [t.id for t in got] == want
                    rows = {t.id: t for t in Task.select().where(Task.id.in_(want))}
                    assert [t.__data__ for t in got] == [rows[i].__data__ for i in want]
                    assert all(isinstance(t.data, dict) for t in got)

    db.with_connection(check)
