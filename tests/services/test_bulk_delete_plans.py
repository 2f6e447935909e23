"""Bulk deletes on PostgreSQL do not depend on the foreign-key trigger plans a connection
cached while the tables were small (server/db_rows.py ``analyze_referencing``).

The natural sequence that made ``DELETE /api/tasks`` O(n²): statistics taken while the project
was tiny, a few single deletes on a connection (PostgreSQL caches the generic plan of each
``ON DELETE CASCADE`` query: a sequential scan of the tiny ``completion`` table), a large
import without ANALYZE, then a bulk delete on the same connection: each deleted task scanned
every (already deleted) completion row. The work is read from PostgreSQL's own counters of the
transaction (``pg_stat_xact_user_tables``), not timed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from server import db
from server.db import database
from server.db_rows import ANALYZE_OVER
from server.models import Completion, Project, Task, TaskLabel
from server.services import projects
from server.services.datamanager import actions
from server.services.imports.json_import import import_tasks
from server.services.tasks.tasks import delete_all_tasks, delete_task
from tests.conftest import TEST_DATABASE_URL, fixture_text

pytestmark = pytest.mark.skipif(not TEST_DATABASE_URL, reason="PostgreSQL's cached plans")

MANY = ANALYZE_OVER + 500


def _item(number: int) -> dict[str, Any]:
    result = [
        {
            "from_name": "sentiment",
            "to_name": "text",
            "type": "choices",
            "value": {"choices": ["Positive"]},
        }
    ]
    return {"data": {"text": f"t{number}"}, "completions": [{"result": result}]}


def _child_table_scans() -> int:
    """Sequential scans so far in this transaction of the tables referencing ``task`` that
    hold rows here (``prediction`` and ``storage_key`` are empty: scanning them is free)."""
    row = database.execute_sql(
        "SELECT coalesce(sum(seq_scan), 0) FROM pg_stat_xact_user_tables "
        "WHERE relname IN ('completion', 'task_label')"
    ).fetchone()
    return int(row[0])


def _stale_plans_then_import(project_id: int) -> list[int]:
    """Small tables analyzed, cascade plans cached by single deletes, then MANY tasks with a
    completion each imported on the same connection (no ANALYZE since)."""
    projects.set_label_config(project_id, fixture_text("configs/sentiment.xml"))
    small = import_tasks(project_id, [_item(n) for n in range(10)]).task_ids
    for table in ("task", "completion", "task_label", "prediction", "storage_key"):
        database.execute_sql(f'ANALYZE "{table}"')  # what autovacuum does on a quiet table
    for task_id in small[:8]:  # > 5 runs: PostgreSQL settles on the generic plan
        delete_task(task_id)
    return import_tasks(project_id, [_item(n) for n in range(MANY)]).task_ids


def _run_in_one_transaction(project_id: int, delete: Callable[[list[int]], int]) -> int:
    """Import and delete on one connection, in one outer transaction, so that the
    transaction's own scan counters can be read at the end; returns the sequential scans of
    the child tables during the delete."""
    with database.atomic():
        ids = _stale_plans_then_import(project_id)
        before = _child_table_scans()
        delete(ids)
        return _child_table_scans() - before


def test_delete_all_tasks_scans_no_child_table_per_task(
    client: TestClient, project_id: int
) -> None:
    scanned = db.with_connection(
        _run_in_one_transaction, project_id, lambda ids: delete_all_tasks(project_id)
    )

    def left() -> tuple[int, int, int, int]:
        project = Project.get_by_id(project_id)
        return (
            Task.select().where(Task.project == project_id).count(),
            Completion.select().count(),
            TaskLabel.select().count(),
            project.task_count + project.completion_count + project.labeled_task_count,
        )

    assert db.with_connection(left) == (0, 0, 0, 0)
    # Without fresh statistics each of the MANY deleted tasks scans both child tables with
    # rows (2 * MANY scans, each of all their rows: O(MANY²)); with them, index seeks.
    assert scanned < 20, scanned


def test_data_manager_delete_scans_no_child_table_per_task(
    client: TestClient, project_id: int
) -> None:
    deleted: list[int] = []

    def delete(ids: list[int]) -> int:
        deleted.append(actions.delete_tasks(project_id, ids[1:]))
        return deleted[-1]

    scanned = db.with_connection(_run_in_one_transaction, project_id, delete)
    assert deleted == [MANY - 1]

    def left() -> tuple[int, int, int]:
        project = Project.get_by_id(project_id)
        return (
            Task.select().where(Task.project == project_id).count(),
            Completion.select().count(),
            project.task_count,
        )

    assert db.with_connection(left) == (3, 3, 3)  # 2 of the small import and 1 of the large
    assert scanned < 20, scanned
