"""The project's identity lives in the database: a copied or renamed project directory opens
its own data, a shared database opened under another name is refused with the project's name,
and several processes starting at once on an empty PostgreSQL migrate and create exactly once."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest
from starlette.testclient import TestClient

from server import db, migrations
from server.app import create_app, prepare_database
from server.migrations import MIGRATIONS
from server.models import DatabaseHome, Project
from server.settings import Settings
from tests.cli_process import labelgraph_command, run_labelgraph
from tests.conftest import IN_PROCESS_HOSTS, TEST_DATABASE_URL, fixture_json, fixture_text
from tests.peewee_typed import connection, execute_sql


def _sqlite_settings(project_dir: Path, **overrides: str) -> Settings:
    return Settings.from_env(
        {}, project_dir=str(project_dir), allowed_hosts=IN_PROCESS_HOSTS, **overrides
    )


def _fill(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        config = fixture_text("configs/sentiment.xml")
        assert client.post("/api/project/config", data={"label_config": config}).is_success
        tasks = fixture_json("tasks/sentiment_mixed.json")
        assert client.post("/api/project/import", json=tasks).status_code == 201


def test_a_copied_project_directory_opens_its_own_project(tmp_path: Path) -> None:
    original = tmp_path / "annotations"
    _fill(_sqlite_settings(original))
    copy = tmp_path / "annotations-copy"
    shutil.copytree(original, copy)
    with TestClient(create_app(_sqlite_settings(copy))) as client:
        tasks = client.get("/api/tasks").json()
        assert tasks["total"] == 5
        assert client.get("/api/project").json()["project_name"] == "annotations"

    def projects() -> list[str]:
        return [p.name for p in Project.select().order_by(Project.id)]

    assert db.with_connection(projects) == ["annotations"]  # no empty twin was made


def test_a_database_shared_by_url_refuses_another_directory_name(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    _fill(_sqlite_settings(tmp_path / "first", database_url=url))
    with pytest.raises(Exception) as refused:
        prepare_database(_sqlite_settings(tmp_path / "second", database_url=url))
    message = str(refused.value)
    assert "belongs to project 'first'" in message
    assert "--project-name first" in message
    # Asking for a name explicitly opens (or makes) that project.
    project_id, created = prepare_database(
        _sqlite_settings(tmp_path / "second", database_url=url, project="first")
    )
    assert not created
    other_id, created = prepare_database(
        _sqlite_settings(tmp_path / "second", database_url=url, project="second")
    )
    assert created
    assert other_id != project_id


def test_the_cli_names_the_project_it_refuses_to_open(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    (tmp_path / "alpha").mkdir()
    (tmp_path / "beta").mkdir()
    assert run_labelgraph("init", "alpha", "--db", url, cwd=tmp_path).returncode == 0
    refused = run_labelgraph("init", "beta", "--db", url, cwd=tmp_path)
    assert refused.returncode == 2
    assert "belongs to project 'alpha'" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_database_from_before_the_home_row_adopts_its_only_project(tmp_path: Path) -> None:
    settings = _sqlite_settings(tmp_path / "old-name")
    _fill(settings)

    def forget_home() -> None:
        DatabaseHome.delete().execute()
        version = MIGRATIONS.index(migrations._database_home) + 1
        db.database.execute_sql(f'DELETE FROM "schema_version" WHERE version >= {version}')

    db.with_connection(forget_home)
    moved = tmp_path / "new-name"
    shutil.move(str(tmp_path / "old-name"), moved)
    with TestClient(create_app(_sqlite_settings(moved))) as client:
        assert client.get("/api/tasks").json()["total"] == 5


@pytest.fixture
def empty_postgres() -> Iterator[str]:
    """A PostgreSQL database of its own, empty, dropped afterwards."""
    if not TEST_DATABASE_URL:
        pytest.skip("needs LABELGRAPH_TEST_DATABASE_URL (PostgreSQL)")
    name = f"lg_start_{uuid.uuid4().hex[:10]}"
    admin = db.make_database(TEST_DATABASE_URL, 1)
    admin.connect()
    connection(admin).autocommit = True
    execute_sql(admin, f'CREATE DATABASE "{name}"')
    parsed = urlparse(TEST_DATABASE_URL)
    try:
        yield urlunparse(parsed._replace(path="/" + name))
    finally:
        execute_sql(admin, f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()


def test_two_processes_starting_at_once_migrate_exactly_once(
    tmp_path: Path, empty_postgres: str
) -> None:
    """Two "hosts" (separate project directories of the same name) run ``labelgraph init`` on
    one empty PostgreSQL at the same moment: both succeed, each migration is recorded once and
    one project exists."""
    starts = []
    for host in ("host-a", "host-b"):
        (tmp_path / host / "labels").mkdir(parents=True)
        starts.append(
            subprocess.Popen(
                [*labelgraph_command(), "init", "labels", "--db", empty_postgres],
                cwd=tmp_path / host,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for process in starts:
        _out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    database = db.make_database(empty_postgres, 1)
    database.connect()
    try:
        versions = [
            row[0]
            for row in execute_sql(
                database, 'SELECT version FROM "schema_version" ORDER BY version'
            ).fetchall()
        ]
        names = [row[0] for row in execute_sql(database, 'SELECT name FROM "project"').fetchall()]
    finally:
        database.close()
    assert versions == list(range(1, len(MIGRATIONS) + 1))
    assert names == ["labels"]
