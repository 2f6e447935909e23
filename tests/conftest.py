"""Shared fixtures: a fresh database and project per test, an in-process client, gql().

``LABELGRAPH_TEST_DATABASE_URL`` (a PostgreSQL URL) reruns the whole suite on PostgreSQL;
by default each test gets its own SQLite file under ``tmp_path``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from strawberry.types import ExecutionResult

from schema import schema
from schema.context import Context
from server import db
from server.app import create_app
from server.settings import Settings
from tests.cloud_emulators import (  # noqa: F401  (fixtures)
    azure_container,
    azurite_endpoint,
    gcs_bucket,
    gcs_endpoint,
    gcs_service_account_key,
)
from tests.ml_backend import (  # noqa: F401  (fixtures)
    app_with_settings,
    ml_backend,
    start_ml_backend,
)
from tests.ml_sdk import sdk_backend, sdk_python_path  # noqa: F401  (fixtures)
from tests.peewee_typed import execute_sql
from tests.storage_fixtures import (  # noqa: F401  (fixtures)
    redis_store,
    redis_url,
    s3_bucket,
    s3_endpoint,
)

FIXTURES = Path(__file__).parent / "fixtures"
TEST_DATABASE_URL = os.environ.get("LABELGRAPH_TEST_DATABASE_URL", "")
# The Host names of in-process clients: Starlette's TestClient (http://testserver) and the
# httpx ASGI transport clients of these tests (base_url http://test). The settings bind to
# 127.0.0.1, so the DNS-rebinding check accepts only these names besides the loopback ones.
IN_PROCESS_HOSTS = "testserver,test"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def fixture_json(name: str) -> Any:
    return json.loads(fixture_text(name))


def _reset_postgres(url: str) -> None:
    """Empty every table of the test database (ids restart at 1).

    Only the tables that hold rows are emptied, by DELETE with foreign-key triggers off (any
    order will do when every table ends empty): a TRUNCATE of all tables cost ~70 ms per test.
    """
    database = db.make_database(url, 1)
    database.connect()
    try:
        tables = [t for t in database.get_tables() if t != "schema_version"]
        if tables:
            probe = " UNION ALL ".join(
                f"SELECT '{t}' FROM (SELECT 1 FROM \"{t}\" LIMIT 1) AS s{i}"
                for i, t in enumerate(tables)
            )
            filled = [row[0] for row in execute_sql(database, probe).fetchall()]
            with database.atomic():
                execute_sql(database, "SET LOCAL session_replication_role = replica")
                for table in filled:
                    execute_sql(database, f'DELETE FROM "{table}"')
            # The sequences of those tables (not schema_version's: its rows stay).
            execute_sql(
                database,
                "SELECT setval(s.oid, 1, false) FROM pg_class s"
                " JOIN pg_depend d ON d.objid = s.oid AND d.deptype = 'a'"
                " JOIN pg_class t ON t.oid = d.refobjid"
                " WHERE s.relkind = 'S' AND t.relnamespace = 'public'::regnamespace"
                " AND t.relname <> 'schema_version'",
            )
    finally:
        database.close()


@pytest.fixture(scope="session", autouse=True)
def fresh_postgres_schema() -> None:
    """On PostgreSQL, start the session from an empty schema so the suite always runs the
    migrations of this checkout (tests then only truncate)."""
    if not TEST_DATABASE_URL:
        return
    database = db.make_database(TEST_DATABASE_URL, 1)
    database.connect()
    try:
        execute_sql(database, "DROP SCHEMA public CASCADE")
        execute_sql(database, "CREATE SCHEMA public")
    finally:
        database.close()


# Tests that use these local servers (on 127.0.0.1) switch the address policy off for them:
# every other test runs with the default, which refuses non-public addresses.
LOCAL_ML_FIXTURES = {"ml_backend", "start_ml_backend", "sdk_backend"}
LOCAL_STORAGE_FIXTURES = {
    "s3_endpoint",
    "s3_bucket",
    "redis_url",
    "redis_store",
    "gcs_endpoint",
    "gcs_bucket",
    "azurite_endpoint",
    "azure_container",
    "cloud_store",  # tests/test_gcs_azure_storage.py: either of the two above
}


def _allow_local(request: pytest.FixtureRequest) -> dict[str, Any]:
    used = set(request.fixturenames)
    return {
        "ml_allow_private": True if used & LOCAL_ML_FIXTURES else None,
        "storage_allow_private": True if used & LOCAL_STORAGE_FIXTURES else None,
    }


@pytest.fixture
def settings(tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    if TEST_DATABASE_URL:
        _reset_postgres(TEST_DATABASE_URL)
    return Settings.from_env(
        {},
        project_dir=str(tmp_path / "project"),
        database_url=TEST_DATABASE_URL or None,
        allowed_hosts=IN_PROCESS_HOSTS,
        **_allow_local(request),
    )


@pytest.fixture
def multi_settings(tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """Settings of start-multi-session mode (root directory under ``tmp_path``)."""
    if TEST_DATABASE_URL:
        _reset_postgres(TEST_DATABASE_URL)
    root = str(tmp_path / "root")
    return Settings.from_env(
        {},
        project_dir=root,
        root_dir=root,
        database_url=TEST_DATABASE_URL or None,
        allowed_hosts=IN_PROCESS_HOSTS,
        **_allow_local(request),
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def project_id(client: TestClient) -> int:
    return int(client.app.state.project_id)  # type: ignore[attr-defined]


class GraphQL:
    """Run operations against the schema in-process, without HTTP."""

    def __init__(
        self, settings: Settings, project_id: int, ml: Any = None, storage: Any = None
    ) -> None:
        self.settings = settings
        self.project_id = project_id
        self.ml = ml  # the app's ML runtime (client and job runner)
        self.storage = storage  # the app's storage worker

    def raw(self, query: str, variables: dict[str, Any] | None = None) -> ExecutionResult:
        context = Context(
            settings=self.settings, project_id=self.project_id, ml=self.ml, storage=self.storage
        )
        return db.with_connection(
            schema.execute_sync, query, variables or {}, context_value=context
        )

    def __call__(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        result = self.raw(query, variables)
        assert result.errors is None, result.errors
        assert result.data is not None
        return result.data

    def error(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The first error's message and extensions (asserts there is one)."""
        result = self.raw(query, variables)
        assert result.errors, f"expected an error, got {result.data}"
        error = result.errors[0]
        return {"message": error.message, **(error.extensions or {})}


@pytest.fixture
def gql(client: TestClient, settings: Settings, project_id: int) -> GraphQL:
    state = client.app.state  # type: ignore[attr-defined]
    return GraphQL(settings, project_id, state.ml, state.storage)


@pytest.fixture
def sentiment_project(client: TestClient) -> TestClient:
    """The project with the sentiment config and the mixed fixture tasks imported."""
    response = client.post(
        "/api/project/config", data={"label_config": fixture_text("configs/sentiment.xml")}
    )
    assert response.status_code == 201, response.text
    response = client.post("/api/project/import", json=fixture_json("tasks/sentiment_mixed.json"))
    assert response.status_code == 201, response.text
    return client


from tests.dm_data import dm_project  # noqa: E402, F401  (data-manager fixture)
