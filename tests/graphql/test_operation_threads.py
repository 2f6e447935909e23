"""The worker threads of stored operations (schema.stored.OperationThreads): answers and
errors come back to the caller, context variables travel, the pool stays within its size,
runs queued calls in order when all threads are busy, and closing waits for running calls."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time

import pytest
from starlette.testclient import TestClient

from rest_compat.tasks import GET_TASK
from schema import schema
from schema.stored import OperationThreads
from server import db

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


def test_answers_errors_and_context_variables_come_back(client: TestClient) -> None:
    threads = OperationThreads(2)

    def work(x: int) -> tuple[int, str, bool, str]:
        # A pooled connection is held for the call, as run_db gives one.
        return x * 2, REQUEST_ID.get(), not db.database.is_closed(), threading.current_thread().name

    def broken() -> None:
        raise LookupError("no such thing")

    async def scenario() -> None:
        REQUEST_ID.set("r-7")
        doubled, seen, connected, name = await threads.run(work, 21)
        assert (doubled, seen, connected) == (42, "r-7", True)
        assert name.startswith("labelgraph-operation-")
        assert name != threading.current_thread().name
        with pytest.raises(LookupError, match="no such thing"):
            await threads.run(broken)

    try:
        asyncio.run(scenario())
    finally:
        threads.close()


def test_at_most_size_threads_and_queued_calls_wait_their_turn() -> None:
    threads = OperationThreads(3)
    running = 0
    most = 0
    lock = threading.Lock()
    names: set[str] = set()

    def work(i: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
            names.add(threading.current_thread().name)
        time.sleep(0.02)
        with lock:
            running -= 1
        return i

    async def scenario() -> list[int]:
        return list(await asyncio.gather(*(threads.run(work, i) for i in range(12))))

    try:
        assert asyncio.run(scenario()) == list(range(12))
    finally:
        threads.close()
    assert most == 3
    assert len(names) == 3


def test_calls_one_after_another_reuse_one_thread() -> None:
    """A thread counts as idle before its caller hears back, so the caller's next call
    finds it rather than starting another (up to the size, as if calls overlapped)."""
    threads = OperationThreads(8)
    names: set[str] = set()

    def work() -> None:
        names.add(threading.current_thread().name)

    async def scenario() -> None:
        for _ in range(200):
            await threads.run(work)

    try:
        asyncio.run(scenario())
    finally:
        threads.close()
    assert len(names) == 1


def test_close_waits_for_running_calls_and_refuses_new_ones() -> None:
    threads = OperationThreads(2)
    finished: list[int] = []
    started = threading.Event()

    def slow() -> None:
        started.set()
        time.sleep(0.1)
        finished.append(1)

    async def scenario() -> None:
        task = asyncio.ensure_future(threads.run(slow))
        await asyncio.to_thread(started.wait, 5)
        await asyncio.to_thread(threads.close)
        assert finished == [1]
        await task
        with pytest.raises(RuntimeError, match="closed"):
            await threads.run(slow)

    asyncio.run(scenario())


def test_a_cancelled_caller_stops_waiting_and_the_call_still_finishes() -> None:
    threads = OperationThreads(1)
    release = threading.Event()
    done: list[str] = []

    def blocked() -> None:
        release.wait(5)
        done.append("written")

    async def scenario() -> None:
        task = asyncio.ensure_future(threads.run(blocked))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        assert await threads.run(lambda: "next") == "next"  # the thread took the next call

    try:
        asyncio.run(scenario())
    finally:
        threads.close()
    assert done == ["written"]


def test_rest_operations_run_on_the_applications_operation_threads(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """REST requests hop to the lifespan's pool (not anyio's threads), once per request."""
    names: list[str] = []
    real_run = OperationThreads.run

    async def recording_run(self: OperationThreads, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        names.append(getattr(fn, "__name__", "?"))
        return await real_run(self, fn, *args, **kwargs)

    monkeypatch.setattr(OperationThreads, "run", recording_run)
    answer = client.post("/api/project/import", json=[{"text": "one"}])
    assert answer.status_code == 201, answer.text
    task_id = answer.json()["new_task_ids"][0]
    names.clear()
    answer = client.get(f"/api/tasks/{task_id}")
    assert answer.status_code == 200
    assert answer.headers["X-Labelgraph-Operation"] == GET_TASK.name
    assert answer.json()["data"] == {"text": "one"}
    assert names == ["execute"]
    assert isinstance(client.app.state.operation_threads, OperationThreads)  # type: ignore[attr-defined]


def test_graphql_requests_run_on_the_applications_operation_threads(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``/graphql`` queries and mutations take the same pool as REST, once per request, and
    run on one of its threads (the resolvers see the thread's name)."""
    names: list[str] = []
    real_run = OperationThreads.run

    async def recording_run(self: OperationThreads, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        names.append(getattr(fn, "__name__", "?"))
        return await real_run(self, fn, *args, **kwargs)

    seen: list[str] = []
    real_execute_sync = schema.execute_sync

    def watched_execute_sync(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(threading.current_thread().name)
        return real_execute_sync(*args, **kwargs)

    monkeypatch.setattr(OperationThreads, "run", recording_run)
    monkeypatch.setattr(schema, "execute_sync", watched_execute_sync)
    mutation = 'mutation { importTasks(tasks: [{text: "one"}]) { taskCount } }'
    answer = client.post("/graphql", json={"query": mutation})
    assert answer.status_code == 200, answer.text
    query = "{ project { taskCount } }"
    answer = client.post("/graphql", json={"query": query})
    assert answer.json() == {"data": {"project": {"taskCount": 1}}}
    assert names == ["watched_execute_sync", "watched_execute_sync"]
    assert len(seen) == 2 and all(n.startswith("labelgraph-operation-") for n in seen)
