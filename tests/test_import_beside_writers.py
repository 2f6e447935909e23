"""PostgreSQL: an import lets its project's per-task writers through (issue 14).

An import holds its project's lock shared, as an annotator's save does, and counts its tasks in
the rank blocks only at its end: completions and single deletions of existing tasks are stored
while it runs (they used to wait for its commit, ~40 s for a million tasks, or get the 503 of
the write wait), and every page stays exact afterwards. Bulk writers and a second import of
the project still wait for it. SQLite serialises every writer whatever the locks, so these
tests run on PostgreSQL only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from server import db
from server.app import create_app
from server.models import Completion, Task
from server.services.imports import pipeline
from server.services.imports.json_import import import_tasks
from server.services.imports.report import ImportResult
from server.services.tasks import rank_blocks
from server.settings import Settings
from tests.choices import CONFIG, choice_result
from tests.conftest import TEST_DATABASE_URL
from tests.services.test_rank_changes import _check_exact

pytestmark = pytest.mark.skipif(
    not TEST_DATABASE_URL, reason="PostgreSQL: SQLite serialises every writer"
)

WAIT = 2.0  # the write wait: a writer held by the paused import is refused after it
RESULT = choice_result("Neg")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(dataclasses.replace(settings, write_wait=WAIT))) as test_client:
        yield test_client


@pytest.fixture
def existing(client: TestClient) -> list[int]:
    """Twelve tasks, every third with a completion."""
    answer = client.post("/api/project/config", data={"label_config": CONFIG})
    assert answer.status_code == 201, answer.text
    items = [
        {
            "data": {"text": f"old {n}"},
            "completions": [{"result": RESULT, "created_at": 1_650_000_000 + n}],
        }
        if n % 3 == 0
        else {"text": f"old {n}"}
        for n in range(12)
    ]
    answer = client.post("/api/project/import", json=items)
    assert answer.status_code == 201, answer.text
    return [int(i) for i in answer.json()["new_task_ids"]]


def new_items(count: int) -> list[dict[str, Any]]:
    """Tasks with completions whose times fall below, among and above the existing ones', and
    tasks without."""
    times = itertools.cycle([1_600_000_000, 1_650_000_004, 2_000_000_000])
    return [
        {
            "data": {"text": f"new {n}"},
            "completions": [{"result": RESULT, "created_at": next(times)}],
        }
        if n % 2
        else {"text": f"new {n}"}
        for n in range(count)
    ]


@contextlib.contextmanager
def import_paused(
    project_id: int, items: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[Any]]:
    """An import of ``items`` in another thread, paused (its locks held, its first chunk
    stored) until the block ends; yields a list that then holds its result or its error."""
    written, resume = threading.Event(), threading.Event()
    write_chunk = pipeline._write_chunk

    def write_then_pause(*args: Any) -> Any:
        keys = write_chunk(*args)
        if not written.is_set():
            written.set()
            resume.wait(30)
        return keys

    monkeypatch.setattr(pipeline, "_write_chunk", write_then_pause)
    monkeypatch.setattr(pipeline, "CHUNK", 5)
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(db.with_connection(import_tasks, project_id, items))
        except BaseException as exc:  # reported by the test
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert written.wait(10), outcome
        yield outcome
    finally:
        resume.set()
        thread.join(30)
    assert not thread.is_alive()


def project_id_of(client: TestClient) -> int:
    return int(client.app.state.project_id)  # type: ignore[attr-defined]


def test_completions_and_deletions_are_stored_while_an_import_runs(
    client: TestClient, existing: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    project_id = project_id_of(client)
    # Every change folds at once: the saves write block rows while the import is paused.
    monkeypatch.setattr(rank_blocks, "FOLD_EVERY", 1)
    unlabeled = [task_id for n, task_id in enumerate(existing) if n % 3]
    with import_paused(project_id, new_items(23), monkeypatch) as outcome:
        for task_id in unlabeled[:4]:
            answer = client.post(f"/api/tasks/{task_id}/completions", json={"result": RESULT})
            assert answer.status_code == 201, answer.text
        answer = client.delete(f"/api/tasks/{unlabeled[4]}")
        assert answer.status_code == 204, answer.text
        listed = client.get("/api/tasks?page_size=100").json()
        assert listed["total"] == len(listed["tasks"]) == 11  # none of the import's yet
        assert outcome == []  # the import is still paused
    [result] = outcome
    assert isinstance(result, ImportResult), result
    assert len(result.task_ids) == 23

    def counted() -> tuple[int, int]:
        _check_exact(project_id)  # every page of every order, sizes and pending changes
        return (
            Task.select().where(Task.project == project_id).count(),
            Completion.select().where(Completion.project == project_id).count(),
        )

    tasks, completions = db.with_connection(counted)
    assert tasks == 12 - 1 + 23
    assert completions == 4 + 4 + 11
    summary = client.get("/api/project").json()
    assert summary["task_count"] == tasks
    assert summary["completion_count"] == 4 + 4 + 11  # (Label Studio: the labeled tasks)


def test_bulk_writers_and_a_second_import_wait_for_an_import(
    client: TestClient, existing: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    project_id = project_id_of(client)
    with import_paused(project_id, new_items(8), monkeypatch) as outcome:
        refused = client.delete("/api/tasks")
        assert refused.status_code == 503, refused.text
        again = client.post("/api/project/import", json=[{"text": "second"}])
        assert again.status_code == 503, again.text
        assert again.headers["Retry-After"] == "5"
    assert isinstance(outcome[0], ImportResult), outcome
    assert client.get("/api/project").json()["task_count"] == 12 + 8
    again = client.post("/api/project/import", json=[{"text": "second"}])
    assert again.status_code == 201, again.text
    assert client.get("/api/project").json()["task_count"] == 12 + 8 + 1
    db.with_connection(_check_exact, project_id)
