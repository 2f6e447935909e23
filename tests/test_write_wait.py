"""A write that cannot get its turn within the write wait (``LABELGRAPH_WRITE_WAIT``) is
refused cleanly: REST 503 with ``Retry-After`` in Label Studio's error shape, GraphQL
``DATABASE_BUSY``; never a 500, and nothing of it stored. Label Studio answers 500 ("database
is locked") when a save meets a long import on SQLite; so did labelgraph after 20 s."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import httpx2
import peewee
import pytest
from starlette.testclient import TestClient

from server import db, sqlite_gate
from server.app import create_app
from server.errors import DomainError
from server.migrations import MIGRATION_LOCK_ID, migrate
from server.services import projects
from server.settings import Settings
from tests.choices import CONFIG, choice_result
from tests.conftest import TEST_DATABASE_URL
from tests.live_server import running_server
from tests.peewee_typed import execute_sql

WAIT = 0.5
COMPLETION = {"result": choice_result("Neg")}
CREATE = """mutation Create($taskId: Int!, $completion: JSON!) {
  createCompletion(taskId: $taskId, completion: $completion) { id } }"""
BUSY_DETAIL = (
    "The database is busy with another write (a large import, say) and this one could not get "
    f"its turn (write wait: {WAIT:g} s). Try again in a moment."
)
on_sqlite_only = pytest.mark.skipif(bool(TEST_DATABASE_URL), reason="SQLite's own lock")
on_postgres_only = pytest.mark.skipif(not TEST_DATABASE_URL, reason="PostgreSQL's lock_timeout")


@pytest.fixture
def busy_client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(dataclasses.replace(settings, write_wait=WAIT))) as client:
        yield client


@pytest.fixture
def task_id(busy_client: TestClient) -> int:
    answer = busy_client.post("/api/project/config", data={"label_config": CONFIG})
    assert answer.status_code == 201, answer.text
    answer = busy_client.post("/api/project/import", json=[{"text": "one"}, {"text": "two"}])
    assert answer.status_code == 201, answer.text
    return int(answer.json()["new_task_ids"][0])


@contextlib.contextmanager
def project_held(project_id: int) -> Iterator[None]:
    """Another writer of this process holding the project, as an import does for its whole
    transaction (SQLite: the write turn; PostgreSQL: the project's exclusive lock)."""
    taken, done = threading.Event(), threading.Event()

    def hold() -> None:
        with db.write_transaction():
            projects.lock_project(project_id)
            taken.set()
            done.wait(30)

    thread = threading.Thread(target=db.with_connection, args=(hold,))
    thread.start()
    try:
        assert taken.wait(10)
        yield
    finally:
        done.set()
        thread.join(10)


def project_id_of(client: TestClient) -> int:
    return int(client.app.state.project_id)  # type: ignore[attr-defined]


def assert_refused(answer: httpx.Response | httpx2.Response, operation: str, waited: float) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.json() == {"status": 503, "detail": BUSY_DETAIL}
    assert answer.headers["Retry-After"] == "5"
    assert answer.headers["X-Labelgraph-Operation"] == operation
    assert waited >= WAIT


def total_completions(client: TestClient, task_id: int) -> int:
    return int(client.get(f"/api/tasks/{task_id}").json()["total_completions"])


def test_a_completion_behind_a_held_project_is_refused_with_503(
    busy_client: TestClient, task_id: int
) -> None:
    with project_held(project_id_of(busy_client)):
        started = time.monotonic()
        answer = busy_client.post(f"/api/tasks/{task_id}/completions", json=COMPLETION)
        assert_refused(answer, "RestCompletionCreate", time.monotonic() - started)
    assert total_completions(busy_client, task_id) == 0  # nothing of the refused write
    answer = busy_client.post(f"/api/tasks/{task_id}/completions", json=COMPLETION)
    assert answer.status_code == 201, answer.text
    assert total_completions(busy_client, task_id) == 1


def test_graphql_names_the_refusal_database_busy(busy_client: TestClient, task_id: int) -> None:
    variables = {"taskId": task_id, "completion": COMPLETION}
    with project_held(project_id_of(busy_client)):
        answer = busy_client.post("/graphql", json={"query": CREATE, "variables": variables})
    assert answer.status_code == 200
    body = answer.json()
    assert body["data"] is None
    [error] = body["errors"]
    assert error["message"] == BUSY_DETAIL
    assert error["extensions"] == {"code": "DATABASE_BUSY", "retryAfter": 5}
    answer = busy_client.post("/graphql", json={"query": CREATE, "variables": variables})
    assert "errors" not in answer.json(), answer.text


def test_an_import_behind_a_held_project_is_refused_whole(
    busy_client: TestClient, task_id: int
) -> None:
    with project_held(project_id_of(busy_client)):
        started = time.monotonic()
        answer = busy_client.post("/api/project/import", json=[{"text": "three"}])
        assert_refused(answer, "RestImport", time.monotonic() - started)
    assert busy_client.get("/api/project").json()["task_count"] == 2


def test_reads_go_on_while_more_writers_than_connections_wait(settings: Settings) -> None:
    """Writers queued behind an import hand their pooled connections back while they wait
    (SQLite: for the write turn; PostgreSQL: for one of the process's write slots, an eighth
    of the pool being kept for reads): with more of them than connections, a read still gets
    one (it used to wait for the import, or fail once the pool's own timeout ran out)."""
    small = dataclasses.replace(settings, db_pool_size=3)
    app = create_app(small)

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://test") as client,
        ):
            await client.post("/api/project/config", data={"label_config": CONFIG})
            answer = await client.post("/api/project/import", json=[{"text": "one"}])
            task = answer.json()["new_task_ids"][0]
            with project_held(int(app.state.project_id)):
                writers = [
                    asyncio.create_task(
                        client.post(f"/api/tasks/{task}/completions", json=COMPLETION)
                    )
                    for _ in range(6)
                ]
                await asyncio.sleep(0.5)  # the writers queue for the turn
                read = await asyncio.wait_for(client.get(f"/api/tasks/{task}"), timeout=20)
                assert read.status_code == 200, read.text
                assert read.json()["total_completions"] == 0
                assert not any(writer.done() for writer in writers)  # still waiting
            statuses = [answer.status_code for answer in await asyncio.gather(*writers)]
            assert statuses == [201] * 6
            read = await client.get(f"/api/tasks/{task}")
            assert read.json()["total_completions"] == 6

    asyncio.run(scenario())


@on_sqlite_only
def test_a_writer_outside_the_gate_meets_sqlites_busy_timeout(
    busy_client: TestClient, task_id: int
) -> None:
    """A program that writes the file without the writer gate (the sqlite3 shell, say): the
    server's write waits in SQLite's busy handler for the write wait, then is refused."""
    path = sqlite_gate.sqlite_file(db.database.obj)
    assert path
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        answer = busy_client.post(f"/api/tasks/{task_id}/completions", json=COMPLETION)
        assert_refused(answer, "RestCompletionCreate", time.monotonic() - started)
    finally:
        other.execute("ROLLBACK")
        other.close()
    answer = busy_client.post(f"/api/tasks/{task_id}/completions", json=COMPLETION)
    assert answer.status_code == 201, answer.text


@on_sqlite_only
def test_is_busy_knows_sqlites_lock_errors(tmp_path: Path) -> None:
    path = str(tmp_path / "locked.db")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    waiter = peewee.SqliteDatabase(path, timeout=0.05)
    try:
        with pytest.raises(peewee.OperationalError) as locked:
            execute_sql(waiter, "INSERT INTO t VALUES (1)")
        assert db.is_busy(locked.value)  # peewee's error, holding sqlite3's
        with pytest.raises(peewee.OperationalError) as missing:
            execute_sql(waiter, "SELECT * FROM no_such_table")
        assert not db.is_busy(missing.value)
        assert not db.is_busy(ValueError("database is locked"))
    finally:
        waiter.close()
        holder.execute("ROLLBACK")
        holder.close()


@on_postgres_only
def test_migrations_wait_beyond_the_lock_timeout(settings: Settings) -> None:
    """Processes starting at once wait for the one that migrates, however long it takes."""
    db.connect(settings.resolved_database_url, 2, write_wait=0.2)
    import psycopg2

    other = psycopg2.connect(settings.resolved_database_url)
    released = threading.Timer(1.0, other.rollback)
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_ID,))
        released.start()
        started = time.monotonic()
        version = db.with_connection(migrate)
        assert time.monotonic() - started >= 0.9
        assert version > 0
    finally:
        released.join()
        other.close()


@on_postgres_only
def test_a_writer_that_waited_for_a_slot_waits_for_locks_only_the_rest_of_the_wait(
    settings: Settings,
) -> None:
    """One write wait bounds both waits: for a write slot of the process, then for locks."""
    db.connect(settings.resolved_database_url, 4, write_wait=30)
    slots = db._postgres_writers
    taken = 0
    while slots.try_acquire():  # every slot busy, as with writers queued behind an import
        taken += 1
    assert taken == db.write_slots(4) == 3

    def lock_timeout_ms() -> int:
        with db.write_transaction():
            shown = db.database.execute_sql("SHOW lock_timeout").fetchone()[0]
        assert shown.endswith("ms") or shown.endswith("s"), shown
        return int(shown[:-2]) if shown.endswith("ms") else int(shown[:-1]) * 1000

    result: list[int] = []
    writer = threading.Thread(target=lambda: result.append(db.with_connection(lock_timeout_ms)))
    writer.start()
    time.sleep(0.3)
    assert not result  # waiting for a slot
    slots.release()
    writer.join(10)
    assert result and 0 < result[0] <= 29_900  # what was left of the 30 s after ~0.3 s
    assert db.with_connection(lock_timeout_ms) == 30_000  # a free slot: the whole wait
    for _ in range(taken - 1):
        slots.release()
    assert db.with_connection(lock_timeout_ms) == 30_000


@on_postgres_only
def test_job_bookkeeping_does_not_queue_for_a_write_slot(settings: Settings) -> None:
    """With every write slot taken (writers queued behind an import), a background job's
    lease is still renewed: a heartbeat that queued would lose it to another process."""
    from server.services.jobs import queue

    db.connect(settings.resolved_database_url, 4, write_wait=WAIT)
    db.with_connection(migrate)
    project_id = db.with_connection(projects.ensure_project, "slots")[0].id
    job = db.with_connection(queue.enqueue, project_id, "export", {})
    claimed = db.with_connection(queue.claim_next, "me", ("export",), 30, 3)
    assert claimed is not None and claimed.id == job.id
    slots = db._postgres_writers
    taken = 0
    while slots.try_acquire():
        taken += 1
    try:
        with pytest.raises(DomainError) as refused:  # a slotted write: refused after the wait
            db.with_connection(projects.update_project, project_id, {"title": "renamed"})
        assert refused.value.code == "database_busy"
        assert db.with_connection(queue.heartbeat, [job.id], "me", 30) == {job.id}
    finally:
        for _ in range(taken):
            slots.release()


@contextlib.contextmanager
def connections_taken(count: int) -> Iterator[None]:
    """``count`` pooled connections held by other threads (long exports, say)."""
    taken, done = threading.Semaphore(0), threading.Event()

    def hold() -> None:
        with db.database.connection_context():
            taken.release()
            done.wait(30)

    threads = [threading.Thread(target=hold) for _ in range(count)]
    for thread in threads:
        thread.start()
    try:
        for _ in threads:
            assert taken.acquire(timeout=10)
        yield
    finally:
        done.set()
        for thread in threads:
            thread.join(10)


POOL_WAIT = 0.2
NO_CONNECTION = (
    f"Every database connection of this server process was in use for {POOL_WAIT:g} s. "
    "Try again in a moment."
)


def test_a_request_that_gets_no_connection_is_refused_with_503(settings: Settings) -> None:
    """Every pooled connection held past the pool's wait: REST 503 with Retry-After, GraphQL
    DATABASE_BUSY (both were a 500), and the next request once one is free answers."""
    small = dataclasses.replace(settings, db_pool_size=2, db_pool_wait=POOL_WAIT)
    with TestClient(create_app(small)) as client:
        task = client.post("/api/project/import", json=[{"text": "one"}]).json()["new_task_ids"][0]
        with connections_taken(2):
            answer = client.get(f"/api/tasks/{task}")
            assert answer.status_code == 503, answer.text
            assert answer.json() == {"status": 503, "detail": NO_CONNECTION}
            assert answer.headers["Retry-After"] == "5"
            answer = client.post(f"/api/tasks/{task}/completions", json=COMPLETION)
            assert answer.status_code == 503, answer.text
            body = client.post("/graphql", json={"query": "{ project { id } }"}).json()
            assert body.get("data") is None
            assert body["errors"][0]["message"] == NO_CONNECTION
            assert body["errors"][0]["extensions"] == {"code": "DATABASE_BUSY", "retryAfter": 5}
        assert client.get(f"/api/tasks/{task}").json()["id"] == task
        assert total_completions(client, task) == 0


def test_the_pool_wait_is_a_positive_setting() -> None:
    assert Settings.from_env({"LABELGRAPH_DB_POOL_WAIT": "2.5"}).db_pool_wait == 2.5
    assert Settings.from_env({}).db_pool_wait == db.DEFAULT_POOL_WAIT == 30
    with pytest.raises(ValueError, match="db_pool_wait must be a positive number of seconds"):
        Settings.from_env({"LABELGRAPH_DB_POOL_WAIT": "0"})


def test_a_writer_that_gets_its_turn_but_no_connection_gives_the_turn_back(
    settings: Settings, tmp_path: Path
) -> None:
    """A writer waits for its turn (SQLite) or a write slot (PostgreSQL) without its
    connection; if none is free once it has the turn, it is refused and hands the turn on:
    kept, it would have stopped every later write of the process."""
    url = TEST_DATABASE_URL or f"sqlite:///{tmp_path / 'turns.db'}"
    db.connect(url, 2, write_wait=10, pool_wait=POOL_WAIT)
    turns = db._sqlite_writer if db.is_sqlite() else db._postgres_writers
    held = 0
    while turns.try_acquire():  # the turn held, as by an import
        held += 1
    failures: list[BaseException] = []

    def write() -> None:
        try:
            with db.write_transaction():
                db.database.execute_sql("SELECT 1")
        except BaseException as exc:
            failures.append(exc)

    writer = threading.Thread(target=db.with_connection, args=(write,))
    writer.start()
    deadline = time.monotonic() + 10
    while not turns._waiters or not db.database.obj._connections:  # queued, connection back
        assert time.monotonic() < deadline
        time.sleep(0.01)
    with connections_taken(2):
        turns.release()  # handed to the writer, which finds no connection
        writer.join(10)
    for _ in range(held - 1):
        turns.release()
    assert len(failures) == 1 and isinstance(failures[0], DomainError)
    assert failures[0].message == NO_CONNECTION
    assert all(turns.try_acquire() for _ in range(held))  # every turn is free again
    for _ in range(held):
        turns.release()
    db.with_connection(write)
    assert len(failures) == 1


HOLDER = textwrap.dedent(
    """
    import sys, time
    from server import db
    from server.services import projects
    db.connect(sys.argv[1], 1)
    def hold():
        with db.write_transaction():
            projects.lock_project(int(sys.argv[2]))
            print("held", flush=True)
            time.sleep(float(sys.argv[3]))
    db.with_connection(hold)
    """
)


def test_another_process_holding_the_project_gets_a_503_not_a_500(tmp_path: Path) -> None:
    """A real server beside another process that writes for longer than the write wait (a
    ``labelgraph import`` of a large file, say): its writes are refused with 503 in about the
    wait, then go through once the other process is done."""
    project_dir = tmp_path / "project"
    environment = {"LABELGRAPH_WRITE_WAIT": str(WAIT)}
    with running_server(project_dir, env=environment) as base, httpx.Client(base_url=base) as http:
        assert http.post("/api/project/config", data={"label_config": CONFIG}).status_code == 201
        task = http.post("/api/project/import", json=[{"text": "one"}]).json()["new_task_ids"][0]
        project = http.post("/graphql", json={"query": "{ project { id } }"}).json()
        project_id = project["data"]["project"]["id"]
        url = TEST_DATABASE_URL or f"sqlite:///{project_dir / 'labelgraph.db'}"
        with subprocess.Popen(
            [sys.executable, "-c", HOLDER, url, str(project_id), "3"],
            cwd=Path(__file__).parents[1],
            stdout=subprocess.PIPE,
            text=True,
        ) as holder:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
            started = time.monotonic()
            answer = http.post(f"/api/tasks/{task}/completions", json=COMPLETION, timeout=30)
            assert_refused(answer, "RestCompletionCreate", time.monotonic() - started)
        assert holder.returncode == 0
        answer = http.post(f"/api/tasks/{task}/completions", json=COMPLETION)
        assert answer.status_code == 201, answer.text
        assert http.get(f"/api/tasks/{task}").json()["total_completions"] == 1
