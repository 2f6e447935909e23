"""Migrations keep data: re-running is a no-op, and a later step changes only the schema."""

from __future__ import annotations

from collections.abc import Callable

import peewee
import pytest
from playhouse.migrate import SchemaMigrator
from playhouse.migrate import migrate as migrate_columns
from starlette.testclient import TestClient

from server import db, migrations


def _task_total() -> int:
    return int(db.database.execute_sql('SELECT COUNT(*) FROM "task"').fetchone()[0])


def test_rerunning_migrations_keeps_data(sentiment_project: TestClient) -> None:
    def check() -> None:
        before = _task_total()
        assert before == 5
        assert migrations.migrate() == len(migrations.MIGRATIONS)
        assert _task_total() == before

    db.with_connection(check)


def test_a_column_added_later_keeps_every_row(
    sentiment_project: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def add_column() -> None:
        migrator = SchemaMigrator.from_database(db.database.obj)
        column = peewee.TextField(null=True)
        migrate_columns(migrator.add_column("project", "extra_note", column))

    steps: list[Callable[[], None]] = [*migrations.MIGRATIONS, add_column]
    monkeypatch.setattr(migrations, "MIGRATIONS", steps)

    def run() -> None:
        assert migrations.migrate() == len(steps)
        assert _task_total() == 5
        columns = {c.name for c in db.database.get_columns("project")}
        assert "extra_note" in columns
        db.database.execute_sql('ALTER TABLE "project" DROP COLUMN "extra_note"')
        version = migrations.SchemaVersion.version
        migrations.SchemaVersion.delete().where(version == len(steps)).execute()

    db.with_connection(run)


def test_a_version_1_database_gets_the_storage_tables(sentiment_project: TestClient) -> None:
    """Databases made before the storage tables existed are migrated, their data kept."""

    def downgrade_and_migrate() -> None:
        for table in ("storage_key", "storage"):
            db.database.execute_sql(f'DROP TABLE "{table}"')
        migrations.SchemaVersion.delete().where(migrations.SchemaVersion.version > 1).execute()
        assert migrations.current_version() == 1
        assert migrations.migrate() == len(migrations.MIGRATIONS)
        assert {"storage", "storage_key"} <= set(db.database.get_tables())
        assert _task_total() == 5
        columns = {c.name for c in db.database.get_columns("storage_key")}
        assert {"project_id", "role", "key", "task_id", "digest"} <= columns

    db.with_connection(downgrade_and_migrate)
    # The app still works on the migrated database: a storage can be set.
    response = sentiment_project.post(
        "/api/project/storage-settings?storage_for=target", json={"type": "completions-dir"}
    )
    assert response.status_code == 201


def test_a_version_2_database_gets_ml_backend_trusted(sentiment_project: TestClient) -> None:
    """Databases made before ``ml_backend.trusted`` existed get it; their backends are not
    trusted (null)."""

    def downgrade_and_migrate() -> None:
        db.database.execute_sql(
            'INSERT INTO "ml_backend" (project_id, name, url, created_at) '
            "SELECT id, 'old', 'http://127.0.0.5:9', 0 FROM \"project\""
        )
        db.database.execute_sql('ALTER TABLE "ml_backend" DROP COLUMN "trusted"')
        migrations.SchemaVersion.delete().where(migrations.SchemaVersion.version > 2).execute()
        assert migrations.migrate() == len(migrations.MIGRATIONS)
        columns = {c.name for c in db.database.get_columns("ml_backend")}
        assert "trusted" in columns
        rows = db.database.execute_sql('SELECT name, trusted FROM "ml_backend"').fetchall()
        assert rows == [("old", None)]

    db.with_connection(downgrade_and_migrate)


def test_a_version_3_database_gets_the_task_rank_blocks(sentiment_project: TestClient) -> None:
    """Databases made before the counted key blocks get them built from their tasks: every
    order's pages and deletions work on the migrated data."""
    before = {
        order: sentiment_project.get(f"/api/tasks?page_size=100&order={order}").json()["tasks"]
        for order in ("id", "-id", "completed_at", "-completed_at")
    }

    def downgrade_and_migrate() -> None:
        db.database.execute_sql('DROP TABLE "task_rank_block"')
        migrations.SchemaVersion.delete().where(migrations.SchemaVersion.version > 3).execute()
        assert migrations.migrate() == len(migrations.MIGRATIONS)
        assert _task_total() == 5
        sizes = db.database.execute_sql(
            'SELECT ordering, SUM(size) FROM "task_rank_block" GROUP BY ordering ORDER BY 1'
        ).fetchall()
        labeled = int(
            db.database.execute_sql('SELECT COUNT(*) FROM "task" WHERE is_labeled').fetchone()[0]
        )
        assert 0 < labeled < 5
        assert [(int(o), int(s)) for o, s in sizes] == [(0, 5), (1, labeled), (2, 5 - labeled)]

    db.with_connection(downgrade_and_migrate)
    for order, tasks in before.items():
        ids = [t["id"] for t in tasks]
        for page in (1, 2, 3):
            response = sentiment_project.get(f"/api/tasks?page={page}&page_size=2&order={order}")
            assert [t["id"] for t in response.json()["tasks"]] == ids[(page - 1) * 2 : page * 2]
    first = before["id"][0]["id"]
    assert sentiment_project.delete(f"/api/tasks/{first}").status_code == 204
    response = sentiment_project.get("/api/tasks?page=2&page_size=2")
    assert [t["id"] for t in response.json()["tasks"]] == [t["id"] for t in before["id"][3:5]]


def _foreign_keys_to_project(table: str) -> list[str]:
    """The columns of ``table`` whose foreign key references ``project``."""
    if db.is_sqlite():
        rows = db.database.execute_sql(f'PRAGMA foreign_key_list("{table}")').fetchall()
        return [row[3] for row in rows if row[2] == "project"]
    rows = db.database.execute_sql(
        "SELECT a.attname FROM pg_constraint c "
        "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey) "
        "WHERE c.contype = 'f' AND c.conrelid = %s::regclass "
        "AND c.confrelid = 'project'::regclass",
        (table,),
    ).fetchall()
    return [row[0] for row in rows]


def test_task_children_keep_project_keys_only_on_sqlite(sentiment_project: TestClient) -> None:
    """PostgreSQL drops the redundant ``project_id`` keys of the task's children (the task's
    key implies the project); the columns stay, and the tasks keep theirs."""

    def check() -> None:
        for table in migrations.TASK_CHILD_TABLES:
            columns = {c.name for c in db.database.get_columns(table)}
            assert "project_id" in columns
            expected = ["project_id"] if db.is_sqlite() else []
            assert _foreign_keys_to_project(table) == expected, table
        assert _foreign_keys_to_project("task") == ["project_id"]

    db.with_connection(check)


def test_deleting_a_project_removes_every_dependent_row(sentiment_project: TestClient) -> None:
    """Project -> task -> completion/prediction/label rows cascade on both databases, also
    without the children's own project keys."""
    choice = {"from_name": "sentiment", "to_name": "text", "type": "choices"}
    item = {
        "data": {"text": "doomed"},
        "completions": [{"result": [{**choice, "value": {"choices": ["Positive"]}}]}],
        "predictions": [{"result": [], "score": 0.5}],
    }
    response = sentiment_project.post("/api/project/import", json=[item, item])
    assert response.status_code == 201, response.text
    tables = ("task", *migrations.TASK_CHILD_TABLES)

    def counts() -> dict[str, int]:
        return {
            t: int(db.database.execute_sql(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0])
            for t in tables
        }

    def delete() -> None:
        before = counts()
        assert all(before[t] > 0 for t in tables), before
        with db.write_transaction():
            db.database.execute_sql('DELETE FROM "project"')
        assert counts() == dict.fromkeys(tables, 0)

    db.with_connection(delete)
