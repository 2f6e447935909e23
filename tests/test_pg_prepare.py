"""PostgreSQL's connections prepare the statements they run repeatedly (server/pg_prepare.py,
server/pg_pool.py): same answers as unprepared, never a broken transaction, bounded, and
forgotten with the connection."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import peewee
import pytest
from psycopg2.extras import Json
from starlette.testclient import TestClient

from server import db
from server.pg_pool import PostgresPool
from server.pg_prepare import Statements, accepted_types, dollar_parameters
from server.services.tasks import rank_blocks
from server.services.tasks.rank_block_rows import set_sizes_sql
from server.services.tasks.rank_blocks import Ordering
from tests.conftest import TEST_DATABASE_URL, fixture_text

postgres_only = pytest.mark.skipif(not TEST_DATABASE_URL, reason="PostgreSQL only")


def test_placeholders_become_dollar_parameters() -> None:
    assert dollar_parameters('SELECT "a" FROM "t" WHERE "b" = %s AND "c" LIKE %s', [1, "x"]) == (
        ['SELECT "a" FROM "t" WHERE "b" = $1 AND "c" LIKE $2'],
        [2],
        [],
    )
    # %% is a percent sign; an int after LIMIT is written into the text (a generic plan).
    assert dollar_parameters("SELECT '%%s' FROM t LIMIT %s OFFSET %s", [1, 20]) == (
        ["SELECT '%s' FROM t LIMIT 1 OFFSET $1"],
        [1],
        [0],
    )
    # Several statements: numbered each from $1.
    assert dollar_parameters("SELECT f(%s, %s); SELECT g(%s)", [1, 2, 3]) == (
        ["SELECT f($1, $2)", "SELECT g($1)"],
        [2, 1],
        [],
    )
    assert dollar_parameters("SELECT %(name)s", [1]) is None
    assert dollar_parameters("SELECT %s, %s", [1]) is None
    assert dollar_parameters("SELECT %s", [1, 2]) is None


def test_which_values_a_parameter_type_takes() -> None:
    assert int in accepted_types("bigint") and bool not in accepted_types("bigint")
    assert int not in accepted_types("text")  # SELECT %s with an int: sent unprepared
    assert str in accepted_types("boolean") and type(None) in accepted_types("jsonb")
    assert Json in accepted_types("jsonb") and list in accepted_types("integer[]")


def test_what_is_never_prepared() -> None:
    statements = Statements(8)
    for sql, params in [
        ("CREATE TABLE x (a int)", []),
        ("SET search_path TO public", []),
        ("COPY x FROM STDIN", []),
        ("SELECT 1 WHERE a = %(a)s", {"a": 1}),
        ("SELECT $1", []),
        ("SELECT 1; SELECT ';'", []),
        ("SELECT 1; SET x = 1", []),
        ("SELECT 3", None),
    ]:
        assert not statements.ready(sql, params)
        assert not statements.ready(sql, params), sql
    assert not statements.ready("SELECT 1", [])  # run once
    assert statements.ready("SELECT 1", [])  # twice: prepare it


@pytest.fixture
def pool() -> Iterator[PostgresPool]:
    made = db.make_database(TEST_DATABASE_URL or "", 4)
    assert isinstance(made, PostgresPool)
    yield made
    made.close_all()


def prepared_names(pool: PostgresPool) -> set[str]:
    cursor = pool._state.conn.cursor()
    cursor.execute("SELECT name FROM pg_prepared_statements")
    return {row[0] for row in cursor.fetchall()}


def statements_of(pool: PostgresPool) -> Statements:
    statements = pool._statements()
    assert statements is not None
    return statements


def last_query(cursor: Any) -> str:
    return bytes(cursor.query).decode()


@postgres_only
def test_a_repeated_statement_is_executed_prepared(pool: PostgresPool) -> None:
    sql = "SELECT %s::int * 2, %s::text LIMIT %s"
    with pool.connection_context():
        first = pool.execute_sql(sql, (1, "a%", 1))
        assert last_query(first).startswith("SELECT") and first.fetchall() == [(2, "a%")]
        assert statements_of(pool).prepares == 0
        second = pool.execute_sql(sql, (2, "b", 1))
        assert second.fetchall() == [(4, "b")]
        assert statements_of(pool).prepares == 1
        assert len(prepared_names(pool)) == 1
        third = pool.execute_sql(sql, (3, None, 1))
        assert last_query(third).startswith("EXECUTE lg_")
        assert third.fetchall() == [(6, None)]
        # Another LIMIT than the one written into the prepared text: sent as it is.
        other = pool.execute_sql("SELECT g FROM generate_series(1, 5) g LIMIT %s", (2,))
        assert other.fetchall() == [(1,), (2,)]
        for limit in (2, 2, 3):
            rows = pool.execute_sql("SELECT g FROM generate_series(1, 5) g LIMIT %s", (limit,))
            assert rows.fetchall() == [(g,) for g in range(1, limit + 1)]
        assert statements_of(pool).prepares == 2


VALUES_TABLE = (
    'CREATE TABLE "lg_prepare_values" ("id" serial PRIMARY KEY, "flag" boolean, "doc" jsonb,'
    ' "raw" bytea, "ids" integer[], "score" double precision, "at" timestamp, "name" text,'
    ' "big" bigint)'
)
ROWS: list[tuple[Any, ...]] = [
    (True, Json({"a": [1, "é"]}), b"\x00\xff", [1, 2], 0.5, datetime.datetime(2026, 12, 1), "x"),
    (False, Json([]), b"", [], 1.0, datetime.datetime(2020, 1, 1, 5), "it's 100%"),
    (None, None, None, None, None, None, None),
]


def values_round_trip(pool: PostgresPool) -> list[Any]:
    """Insert, then read back and filter, the same rows several times: what each call gives."""
    answers: list[Any] = []
    insert = (
        'INSERT INTO "lg_prepare_values" ("flag", "doc", "raw", "ids", "score", "at", "name",'
        ' "big") VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING "id", "flag", "doc", "raw",'
        ' "ids", "score", "at", "name", "big"'
    )
    select = (
        'SELECT "id", "flag", "doc", "raw", "ids", "score", "at", "name", "big"'
        ' FROM "lg_prepare_values" WHERE "flag" IS NOT DISTINCT FROM %s AND "id" > %s'
        ' AND ("name" = %s OR %s) ORDER BY "id"'
    )
    for round_ in range(3):
        for row in ROWS:
            cursor = pool.execute_sql(insert, (*row, 2**40 + round_))
            answers.append(
                [
                    tuple(bytes(v) if isinstance(v, memoryview) else v for v in r)
                    for r in cursor.fetchall()
                ]
            )
        for flag in (True, False, None):
            cursor = pool.execute_sql(select, (flag, 0, "x", flag is None))
            answers.append(
                [
                    tuple(bytes(v) if isinstance(v, memoryview) else v for v in r)
                    for r in cursor.fetchall()
                ]
            )
        # A parameter PostgreSQL types as text, given an int: the int still comes back.
        answers.append(pool.execute_sql("SELECT %s, %s", (7, "7")).fetchall())
    return answers


@postgres_only
def test_prepared_answers_are_the_unprepared_ones(pool: PostgresPool) -> None:
    plain = db.make_database(TEST_DATABASE_URL or "", 1, prepared_statements=0)
    assert isinstance(plain, PostgresPool)
    try:
        results = []
        for database in (plain, pool):
            with database.connection_context():
                database.execute_sql('DROP TABLE IF EXISTS "lg_prepare_values"')
                database.execute_sql(VALUES_TABLE)
                results.append(values_round_trip(database))
                database.execute_sql('DROP TABLE "lg_prepare_values"')
        assert results[0] == results[1]
        assert results[1][-1] == [(7, "7")]
    finally:
        plain.close_all()
    with pool.connection_context():
        pool.execute_sql(VALUES_TABLE)
        values_round_trip(pool)
        statements = statements_of(pool)
        assert len(statements.prepared) == 3  # the INSERT, the SELECT, SELECT %s, %s
        pool.execute_sql('DROP TABLE "lg_prepare_values"')


@postgres_only
def test_a_prepare_that_fails_leaves_the_transaction_usable(pool: PostgresPool) -> None:
    with pool.connection_context():
        pool.execute_sql('CREATE TEMPORARY TABLE "lg_kept" ("v" int)')
        with pool.atomic():
            for value in range(4):
                # PostgreSQL cannot type $1 in "$1 IS NULL": its PREPARE fails, under a savepoint.
                cursor = pool.execute_sql("SELECT 1 WHERE %s IS NULL", (None,))
                assert cursor.fetchall() == [(1,)]
                pool.execute_sql('INSERT INTO "lg_kept" VALUES (%s)', (value,))
        rows = pool.execute_sql('SELECT "v" FROM "lg_kept" ORDER BY 1').fetchall()
        assert rows == [(0,), (1,), (2,), (3,)]
        assert "SELECT 1 WHERE %s IS NULL" in statements_of(pool).refused


@postgres_only
def test_prepared_statements_outlive_a_failed_transaction(pool: PostgresPool) -> None:
    sql = "SELECT %s::int + 1"
    with pool.connection_context():
        pool.execute_sql('CREATE TEMPORARY TABLE "lg_unique" ("v" int PRIMARY KEY)')
        with pytest.raises(peewee.IntegrityError), pool.atomic():
            for value in range(3):
                assert pool.execute_sql(sql, (value,)).fetchone() == (value + 1,)
            pool.execute_sql('INSERT INTO "lg_unique" VALUES (1), (1)')
        assert len(statements_of(pool).prepared) == 1
        with pool.atomic():  # prepared inside the transaction that failed: still there
            cursor = pool.execute_sql(sql, (41,))
            assert last_query(cursor).startswith("EXECUTE") and cursor.fetchone() == (42,)


@postgres_only
def test_a_new_connection_starts_with_no_prepared_statements(pool: PostgresPool) -> None:
    sql = "SELECT %s::int + 1"
    with pool.connection_context():
        for value in range(3):
            pool.execute_sql(sql, (value,))
        assert len(prepared_names(pool)) == 1
        pool._state.conn.close()  # the server went away: the pool will replace it
    pool.ping_after = 0.0
    with pool.connection_context():
        assert statements_of(pool).prepared == {}
        assert prepared_names(pool) == set()
        for value in range(3):
            assert pool.execute_sql(sql, (value,)).fetchone() == (value + 1,)


@postgres_only
def test_ddl_drops_the_connections_statements(pool: PostgresPool) -> None:
    with pool.connection_context():
        pool.execute_sql('CREATE TEMPORARY TABLE "lg_ddl" ("v" int)')
        pool.execute_sql('INSERT INTO "lg_ddl" VALUES (1)')
        for _ in range(3):
            assert pool.execute_sql('SELECT "v" FROM "lg_ddl" WHERE %s', (True,)).fetchall() == [
                (1,)
            ]
        assert len(prepared_names(pool)) == 1
        pool.execute_sql('ALTER TABLE "lg_ddl" ALTER COLUMN "v" TYPE text')
        assert prepared_names(pool) == set() and statements_of(pool).prepared == {}
        assert pool.execute_sql('SELECT "v" FROM "lg_ddl" WHERE %s', (True,)).fetchall() == [("1",)]


@postgres_only
def test_a_column_changed_by_another_connection(pool: PostgresPool) -> None:
    with pool.connection_context():
        pool.execute_sql('DROP TABLE IF EXISTS "lg_changed"')
        pool.execute_sql('CREATE TABLE "lg_changed" ("v" int)')
        pool.execute_sql('INSERT INTO "lg_changed" VALUES (1)')
    try:
        with pool.connection_context():
            for _ in range(3):
                pool.execute_sql('SELECT "v" FROM "lg_changed" WHERE %s', (True,))
            assert len(statements_of(pool).prepared) == 1
            other = db.make_database(TEST_DATABASE_URL or "", 1)
            assert isinstance(other, PostgresPool)
            with other.connection_context():
                other.execute_sql('ALTER TABLE "lg_changed" ALTER COLUMN "v" TYPE text')
            other.close_all()
            # "cached plan must not change result type": dropped, run again unprepared.
            rows = pool.execute_sql('SELECT "v" FROM "lg_changed" WHERE %s', (True,)).fetchall()
            assert rows == [("1",)]
            assert statements_of(pool).prepared == {}
    finally:
        with pool.connection_context():
            pool.execute_sql('DROP TABLE "lg_changed"')


@postgres_only
def test_at_most_the_configured_number_per_connection() -> None:
    pool = db.make_database(TEST_DATABASE_URL or "", 1, prepared_statements=2)
    assert isinstance(pool, PostgresPool)
    try:
        with pool.connection_context():
            for n in range(6):
                for _ in range(3):
                    row = pool.execute_sql(f"SELECT %s::int + {n}", (1,)).fetchone()
                    assert row == (1 + n,)
                statements = statements_of(pool)
                assert len(statements.prepared) == min(n + 1, 2)
                # Evicted statements are deallocated with the next PREPARE.
                assert len(prepared_names(pool)) <= 3
            assert list(statements.prepared) == ["SELECT %s::int + 4", "SELECT %s::int + 5"]
    finally:
        pool.close_all()


@postgres_only
def test_none_when_switched_off() -> None:
    pool = db.make_database(TEST_DATABASE_URL or "", 1, prepared_statements=0)
    assert isinstance(pool, PostgresPool)
    try:
        with pool.connection_context():
            for _ in range(3):
                cursor = pool.execute_sql("SELECT %s::int", (1,))
            assert last_query(cursor).startswith("SELECT")
            assert prepared_names(pool) == set()
    finally:
        pool.close_all()


@postgres_only
def test_the_rank_blocks_sizes_statement_prepares(pool: PostgresPool) -> None:
    """It once failed to PREPARE (a CASE of bare parameters is typed text): every connection
    that repeated it paid a failed PREPARE and PostgreSQL logged an error."""
    sql = set_sizes_sql(2, "%s")
    with pool.connection_context():
        pool.execute_sql('CREATE TEMPORARY TABLE "task_rank_block" ("id" int, "size" int)')
        pool.execute_sql('INSERT INTO "task_rank_block" VALUES (1, 0), (2, 0), (3, 0)')
        for size in (5, 6, 7):
            pool.execute_sql(sql, (1, size, 3, size + 10, 1, 3))
        assert sql not in statements_of(pool).refused
        assert last_query(pool.execute_sql(sql, (1, 8, 3, 18, 1, 3))).startswith("EXECUTE lg_")
        rows = pool.execute_sql('SELECT "id", "size" FROM "task_rank_block" ORDER BY 1')
        assert rows.fetchall() == [(1, 8), (2, 0), (3, 18)]


CHOICE = {
    "from_name": "sentiment",
    "to_name": "text",
    "type": "choices",
    "value": {"choices": ["Positive"]},
}


@postgres_only
def test_the_statements_an_annotator_repeats_all_prepare(
    client: TestClient, project_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Completions posted, changed and deleted, tasks deleted, the blocks rebuilt: every
    statement run twice is prepared, none refused by PostgreSQL (a refused one costs a failed
    PREPARE per connection and an error line in PostgreSQL's log). Three were, until their
    constants became literals or casts."""
    failed: list[str] = []
    original = PostgresPool._prepare

    def recording(self: PostgresPool, statements: Statements, sql: str, params: Any) -> None:
        original(self, statements, sql, params)
        if sql in statements.refused and dollar_parameters(sql, params) is not None:
            failed.append(sql)

    monkeypatch.setattr(PostgresPool, "_prepare", recording)
    config = fixture_text("configs/sentiment.xml")
    assert client.post("/api/project/config", data={"label_config": config}).is_success
    tasks = [{"text": f"t{n}"} for n in range(40)]
    ids = client.post("/api/project/import", json=tasks).json()["new_task_ids"]
    for task_id in ids[:30]:
        posted = client.post(f"/api/tasks/{task_id}/completions", json={"result": [CHOICE]})
        assert posted.status_code == 201
        completion_id = posted.json()["id"]
        changed = client.patch(
            f"/api/tasks/{task_id}/completions/{completion_id}", json={"was_cancelled": True}
        )
        assert changed.is_success, changed.text
        assert client.delete(f"/api/tasks/{task_id}/completions/{completion_id}").is_success
    for task_id in ids[::3]:
        assert client.delete(f"/api/tasks/{task_id}").status_code == 204
    with db.database.connection_context():  # a bulk reset's rebuild, twice on one connection
        for _ in range(2):
            with db.write_transaction():
                rank_blocks.clear(project_id, Ordering.ID, Ordering.COMPLETED)
                rank_blocks.rebuild(Ordering.ID, project_id)
                rank_blocks.rebuild(Ordering.COMPLETED, project_id)
    page = client.get("/api/tasks?page=1&page_size=100").json()
    assert sorted(t["id"] for t in page["tasks"]) == sorted(set(ids) - set(ids[::3]))
    assert failed == []
