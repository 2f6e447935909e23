"""Many writers at once (issue 17 item 1): 32 clients POSTing completions to a few tasks lose
no write, store none twice and leave every counter and rank block in step, on SQLite and on
PostgreSQL (``LABELGRAPH_TEST_DATABASE_URL``). Timings are bench/concurrent_writers.py's."""

from __future__ import annotations

import dataclasses
import sys
import threading
from collections import Counter
from pathlib import Path

import anyio
import httpx
import pytest

from server import db
from server.app import create_app
from server.models import Task
from server.settings import Settings
from tests.choices import CONFIG, choice_result
from tests.conftest import TEST_DATABASE_URL
from tests.peewee_typed import tuple_rows

pytestmark = pytest.mark.anyio

WRITERS = 32
POSTS = 8
TASKS = 5
RESULT = choice_result("Neg")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_32_writers_lose_and_duplicate_nothing(settings: Settings) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answer = await client.post("/api/project/config", data={"label_config": CONFIG})
            assert answer.status_code == 201, answer.text
            tasks = [{"text": f"task {i}"} for i in range(TASKS)]
            answer = await client.post("/api/project/import", json=tasks)
            task_ids = answer.json()["new_task_ids"]
            sent: Counter[int] = Counter()
            answered: list[tuple[int, int]] = []  # (task id, completion id)

            async def writer(index: int) -> None:
                for post in range(POSTS):
                    task_id = task_ids[(index + post) % TASKS]
                    sent[task_id] += 1
                    response = await client.post(
                        f"/api/tasks/{task_id}/completions", json={"result": RESULT}
                    )
                    assert response.status_code == 201, response.text
                    answered.append((task_id, response.json()["id"]))

            async with anyio.create_task_group() as group:
                for index in range(WRITERS):
                    group.start_soon(writer, index)

            completion_ids = [c for _t, c in answered]
            assert len(completion_ids) == WRITERS * POSTS
            assert len(set(completion_ids)) == len(completion_ids)  # no id answered twice
            for task_id in task_ids:
                task = (await client.get(f"/api/tasks/{task_id}")).json()
                stored = sorted(c["id"] for c in task["completions"])
                assert stored == sorted(c for t, c in answered if t == task_id)
                assert task["total_completions"] == sent[task_id]
            query = "{ project { completionCount labeledTaskCount } }"
            project = (await client.post("/graphql", json={"query": query})).json()
            counters = project["data"]["project"]
            assert counters == {"completionCount": WRITERS * POSTS, "labeledTaskCount": TASKS}
            # The stored per-task counters the listings read, and the completion order's
            # blocks: every task once, labeled ones first.
            rows = await db.run_db(
                lambda: list(tuple_rows(Task.select(Task.id, Task.total_completions)))
            )
            assert dict(rows) == {task_id: sent[task_id] for task_id in task_ids}
            page = (await client.get("/api/tasks?order=completed_at&page_size=100")).json()
            assert sorted(t["id"] for t in page["tasks"]) == sorted(task_ids)
            assert page["total"] == TASKS


@pytest.mark.skipif(bool(TEST_DATABASE_URL), reason="SQLite's writer turn")
def test_sqlite_writers_take_turns_and_readers_do_not_wait(tmp_path: Path) -> None:
    """A write transaction holds the process's writer turn (nested ones reuse it); a read on
    another thread meanwhile answers from its snapshot instead of waiting for the commit."""
    previous = db.database.obj
    db.connect(f"sqlite:///{tmp_path / 'turns.db'}", 4)
    try:
        with db.database.connection_context():
            db.database.execute_sql("CREATE TABLE t (n INTEGER)")
            db.database.execute_sql("INSERT INTO t VALUES (1)")
        seen: list[int] = []
        failures: list[BaseException] = []

        def read() -> None:
            try:
                with db.database.connection_context():
                    seen.append(db.database.execute_sql("SELECT SUM(n) FROM t").fetchone()[0])
            except BaseException as exc:
                failures.append(exc)

        with db.database.connection_context():
            assert not db._sqlite_writer.locked()
            with db.write_transaction():
                assert db._sqlite_writer.locked()
                with db.write_transaction():  # nested: a savepoint, same turn
                    db.database.execute_sql("INSERT INTO t VALUES (2)")
                reader = threading.Thread(target=read)
                reader.start()
                reader.join(5)
                assert not reader.is_alive(), "a read waited for the writer"
            assert not db._sqlite_writer.locked()
        assert failures == [] and seen == [1]  # the snapshot before the commit
    finally:
        db.database.close()
        if previous is not None:
            db.database.initialize(previous)


async def test_the_server_sets_the_thread_switch_interval_while_it_runs(
    settings: Settings,
) -> None:
    """Many requests' threads share one interpreter lock: the server asks each holder to hand
    it on after ``thread_switch_interval`` while it runs, and leaves the process as it found
    it afterwards; 0 (the default) leaves Python's interval alone."""
    before = sys.getswitchinterval()
    assert settings.thread_switch_interval == 0.0
    app = create_app(dataclasses.replace(settings, thread_switch_interval=0.0002))
    async with app.router.lifespan_context(app):
        assert sys.getswitchinterval() == pytest.approx(0.0002)
    assert sys.getswitchinterval() == before
    app = create_app(dataclasses.replace(settings, thread_switch_interval=0.0))
    async with app.router.lifespan_context(app):
        assert sys.getswitchinterval() == before
