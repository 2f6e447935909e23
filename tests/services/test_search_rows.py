"""The full-text search rows stay exact through imports, updates and deletions (SQLite's table
is contentless: a row is forgotten through the text its trigger recomputes), and the migration
rebuilds a table of the former kind."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from server import db, migrations
from server.models import Task
from server.services import projects
from server.services.datamanager import search
from server.services.datamanager.actions import delete_tasks
from server.services.imports.json_import import import_tasks
from server.services.tasks.tasks import delete_task, update_task
from tests.conftest import TEST_DATABASE_URL, fixture_text

WORDS = ["refund", "order", "late", "Ünïcode", "naïve", "x1", "café", "great"]


def _data(rng: random.Random) -> dict[str, object]:
    def text() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 4)))

    return {"text": text(), "nested": {"more": [text(), 7, None], "flag": True}, "n": 3}


def _found(project_id: int, word: str) -> list[int]:
    condition = search.matches(word)
    assert condition is not None
    query = Task.select(Task.id).where(Task.project == project_id, condition)
    return sorted(query.scalars())


def _expected(project_id: int, word: str) -> list[int]:
    wanted = word.casefold()
    found = []
    for task in Task.select().where(Task.project == project_id):
        words = {w.casefold() for w in search.words(search.text_of(task.data))}
        if wanted in words:
            found.append(task.id)
    return sorted(found)


def _check(project_id: int) -> None:
    for word in WORDS:
        assert _found(project_id, word) == _expected(project_id, word), word


def test_search_rows_follow_imports_updates_and_deletes(
    client: TestClient, project_id: int
) -> None:
    rng = random.Random(7)

    def run() -> None:
        projects.set_label_config(project_id, fixture_text("configs/sentiment.xml"))
        ids = import_tasks(project_id, [{"data": _data(rng)} for _ in range(60)]).task_ids
        _check(project_id)
        for task_id in ids[:20]:
            update_task(task_id, {"data": _data(rng)})
        update_task(ids[20], {"data": {"text": "", "other": "refund"}})
        _check(project_id)
        for task_id in ids[20:30]:
            delete_task(task_id)
        delete_tasks(project_id, ids[30:45])
        _check(project_id)
        more = import_tasks(project_id, [{"data": _data(rng)} for _ in range(10)]).task_ids
        update_task(more[0], {"data": _data(rng)})
        _check(project_id)

    db.with_connection(run)


@pytest.mark.skipif(bool(TEST_DATABASE_URL), reason="SQLite's FTS5 table")
def test_the_migration_rebuilds_a_table_with_its_own_content(
    client: TestClient, project_id: int
) -> None:
    rng = random.Random(8)
    former = [
        "CREATE VIRTUAL TABLE task_fts USING fts5(body, detail=none, tokenize='unicode61')",
        "CREATE TRIGGER task_fts_delete AFTER DELETE ON task BEGIN "
        "DELETE FROM task_fts WHERE rowid = old.id; END",
    ]

    def run() -> None:
        projects.set_label_config(project_id, fixture_text("configs/sentiment.xml"))
        import_tasks(project_id, [{"data": _data(rng)} for _ in range(30)])
        for kind, name in (("TRIGGER", "task_fts_delete"), ("TRIGGER", "task_fts_update")):
            db.database.execute_sql(f"DROP {kind} {name}")
        db.database.execute_sql("DROP TABLE task_fts")
        for statement in former:
            db.database.execute_sql(statement)
        db.database.execute_sql(
            "INSERT INTO task_fts(rowid, body) VALUES (1, 'stale words only'), (2, 'refund')"
        )
        version = migrations.SchemaVersion.version
        steps = len(migrations.MIGRATIONS)
        step = migrations.MIGRATIONS.index(migrations._contentless_search) + 1
        migrations.SchemaVersion.delete().where(version >= step).execute()
        assert migrations.migrate() == steps  # the later steps are safe to run again
        sql = db.database.execute_sql(
            "SELECT sql FROM sqlite_master WHERE name = 'task_fts'"
        ).fetchone()[0]
        assert "content=''" in sql and "columnsize=0" in sql
        _check(project_id)
        assert _found(project_id, "stale") == []
        delete_task(int(Task.select(Task.id).where(Task.project == project_id).first().id))
        _check(project_id)

    db.with_connection(run)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=40))
def test_any_search_text_is_answered(client: TestClient, project_id: int, text: str) -> None:
    """Whatever a user types (punctuation, underscores, quotes, FTS5 or tsquery syntax, any
    script) is a search for its words, never a database error."""

    def run() -> None:
        if not Task.select().where(Task.project == project_id).exists():
            import_tasks(project_id, [{"data": {"text": 'order_id refund "late" café'}}])
        condition = search.matches(text)
        if condition is not None:
            list(Task.select(Task.id).where(Task.project == project_id, condition))

    db.with_connection(run)
