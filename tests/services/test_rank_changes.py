"""Rank blocks under concurrent writers: appends only insert pending changes (no writer waits
for another's block row on PostgreSQL), folds and cuts keep every page exact, and a database
made before the pending changes existed is upgraded (issues 14 and 17)."""

from __future__ import annotations

import itertools
import random
import threading
import time
from typing import Any

import pytest
from starlette.testclient import TestClient

from server import db, migrations
from server.models import Project, Task, TaskRankBlock, TaskRankChange, TaskRankState
from server.services import projects
from server.services.imports.json_import import import_tasks
from server.services.tasks import completions, rank_blocks
from server.services.tasks.rank_blocks import Ordering
from server.services.tasks.tasks import TaskOrder, delete_task, list_page
from tests.conftest import TEST_DATABASE_URL, fixture_text

postgres_only = pytest.mark.skipif(not TEST_DATABASE_URL, reason="PostgreSQL's row locks")


def _config() -> str:
    return fixture_text("configs/text_classification.xml")


def _items(count: int, labeled_every: int = 3) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for n in range(count):
        if n % labeled_every == 0:
            completion = {"result": [], "created_at": 1_600_000_000 + n % 7}
            items.append({"data": {"text": f"t{n}"}, "completions": [completion]})
        else:
            items.append({"text": f"t{n}"})
    return items


def _plain_page(project_id: int, order: TaskOrder, offset: int, size: int) -> list[int]:
    """The page by a plain ORDER BY … OFFSET (what the blocks must equal)."""
    p = db.database.param
    unlabeled_last = 'CASE WHEN "completed_at" IS NULL THEN 1 ELSE 0 END'
    orders = {
        TaskOrder.ID_ASC: '"id"',
        TaskOrder.ID_DESC: '"id" DESC',
        TaskOrder.COMPLETED_AT_ASC: f'{unlabeled_last}, "completed_at", "id"',
        TaskOrder.COMPLETED_AT_DESC: f'{unlabeled_last}, "completed_at" DESC, '
        'CASE WHEN "completed_at" IS NULL THEN "id" ELSE -"id" END',
    }
    sql = (
        f'SELECT "id" FROM "task" WHERE "project_id" = {p} ORDER BY {orders[order]} '
        f"LIMIT {p} OFFSET {p}"
    )
    return [int(r[0]) for r in db.database.execute_sql(sql, (project_id, size, offset))]


def _check_exact(project_id: int) -> None:
    for ordering in Ordering:
        stored = sum(
            b.size
            for b in TaskRankBlock.select().where(
                TaskRankBlock.project == project_id, TaskRankBlock.ordering == int(ordering)
            )
        )
        pending = sum(
            c.delta
            for c in TaskRankChange.select().where(
                TaskRankChange.project_id == project_id, TaskRankChange.ordering == int(ordering)
            )
        )
        members = Task.select().where(*rank_blocks.members(project_id, ordering)).count()
        assert stored + pending == members, ordering
    project = Project.get_by_id(project_id)
    total = project.task_count
    assert total == Task.select().where(Task.project == project_id).count()
    for order in TaskOrder:
        for size in (1, 4, 10):
            for page in range(1, total // size + 3):
                got = [t.id for t in list_page(project, page, size, order).tasks]
                assert got == _plain_page(project_id, order, (page - 1) * size, size), (
                    order,
                    size,
                    page,
                )


@pytest.fixture
def tiny_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of a few tasks and a fold every third change: cuts, merges and folds happen
    all the time."""
    monkeypatch.setattr(rank_blocks, "MAX_SIZE", 6)
    monkeypatch.setattr(rank_blocks, "TARGET", 3)
    monkeypatch.setattr(rank_blocks, "MIN_SIZE", 2)
    monkeypatch.setattr(rank_blocks, "FOLD_EVERY", 3)
    monkeypatch.setattr(rank_blocks, "_recorded", itertools.count(1))


@postgres_only
def test_two_completions_append_without_waiting_for_each_other(
    client: TestClient, project_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While one transaction has added a completion (its task joins the newest
    completion-order block) and not committed, a second completion of another task commits
    at once: it used to wait for the first one's lock on that block's row."""
    monkeypatch.setattr(rank_blocks, "FOLD_EVERY", 10**9)  # no fold in this test
    db.with_connection(projects.set_label_config, project_id, _config())
    ids = db.with_connection(import_tasks, project_id, _items(40)).task_ids
    unlabeled = [i for n, i in enumerate(ids) if n % 3]
    first, second = unlabeled[0], unlabeled[1]  # different counter shards (ids differ by 1)
    assert first % 32 != second % 32
    added = threading.Event()
    finish = threading.Event()
    failures: list[BaseException] = []

    def hold_a_completion() -> None:
        try:
            with db.database.connection_context(), db.write_transaction():
                completions.create_completion(first, {"result": []})
                added.set()
                finish.wait(20)
        except BaseException as exc:
            failures.append(exc)
            added.set()

    holder = threading.Thread(target=hold_a_completion)
    holder.start()
    try:
        assert added.wait(20)
        assert failures == []

        def second_completion() -> float:
            started = time.perf_counter()
            with db.write_transaction():
                db.database.execute_sql("SET LOCAL lock_timeout = '3s'")
                completions.create_completion(second, {"result": []})
            return time.perf_counter() - started

        took = db.with_connection(second_completion)
        assert took < 3
    finally:
        finish.set()
        holder.join(30)
    assert failures == []
    db.with_connection(_check_exact, project_id)
    top = db.with_connection(
        lambda: [
            t.id
            for t in list_page(
                Project.get_by_id(project_id), 1, 2, TaskOrder.COMPLETED_AT_DESC
            ).tasks
        ]
    )
    assert sorted(top) == sorted([first, second])  # the newest two, both counted


@postgres_only
def test_a_fold_of_size_changes_waits_for_no_writer(
    client: TestClient, project_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer that folds (here every change) while another writer holds the blocks' shared
    lock folds in place: a new label (sizes change) and a labeled task's newer completion
    (its two changes cancel out in its block) commit at once, the blocks folded; only a cut or
    a merge would wait for the other writer (the exclusive lock)."""
    monkeypatch.setattr(rank_blocks, "FOLD_EVERY", 1)
    db.with_connection(projects.set_label_config, project_id, _config())
    ids = db.with_connection(import_tasks, project_id, _items(40)).task_ids
    labeled, unlabeled = ids[0], ids[1]  # _items labels every third task
    holding = threading.Event()
    finish = threading.Event()
    failures: list[BaseException] = []

    def hold_the_shared_lock() -> None:
        try:
            with db.database.connection_context(), db.write_transaction():
                rank_blocks.lock(project_id, shared=True)
                holding.set()
                finish.wait(20)
        except BaseException as exc:
            failures.append(exc)
            holding.set()

    holder = threading.Thread(target=hold_the_shared_lock)
    holder.start()
    try:
        assert holding.wait(20)

        def complete(task_id: int) -> None:
            with db.write_transaction():
                db.database.execute_sql("SET LOCAL lock_timeout = '3s'")
                completions.create_completion(task_id, {"result": []})

        time.sleep(1.05)  # a later completed_at for the labeled task
        for task_id in (unlabeled, labeled):
            db.with_connection(complete, task_id)
            pending = db.with_connection(
                lambda: (
                    TaskRankChange.select().where(TaskRankChange.project_id == project_id).count()
                )
            )
            assert pending == 0  # folded
    finally:
        finish.set()
        holder.join(30)
    assert failures == []
    db.with_connection(_check_exact, project_id)


def test_pages_stay_exact_under_concurrent_writers(
    client: TestClient, project_id: int, tiny_blocks: None
) -> None:
    """Eight threads add completions, delete completions and delete tasks at once (folds,
    cuts and merges among them); every page of every order then equals a plain ORDER BY …
    OFFSET, and stored sizes plus pending changes count every task of each order."""
    db.with_connection(projects.set_label_config, project_id, _config())
    ids = db.with_connection(import_tasks, project_id, _items(90)).task_ids
    failures: list[BaseException] = []
    doomed = set(random.Random(7).sample(ids, 12))

    def writer(number: int) -> None:
        rng = random.Random(number)
        try:
            for step in range(25):
                task_id = rng.choice(ids)
                with db.database.connection_context():
                    if task_id in doomed and step % 5 == number % 5:
                        try:
                            delete_task(task_id)
                        except Exception as exc:  # deleted by another thread: not_found
                            if getattr(exc, "code", None) != "not_found":
                                raise
                    elif rng.random() < 0.8:
                        try:
                            completions.create_completion(task_id, {"result": []})
                        except Exception as exc:
                            if getattr(exc, "code", None) != "not_found":
                                raise
                    else:
                        try:
                            completions.delete_task_completions(task_id)
                        except Exception as exc:
                            if getattr(exc, "code", None) not in ("not_found", "not_allowed"):
                                raise
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert failures == []
    db.with_connection(_check_exact, project_id)
    # A fold under the exclusive lock leaves no pending change and the same pages.
    db.with_connection(lambda: _settled(project_id))
    db.with_connection(_check_exact, project_id)


def _settled(project_id: int) -> None:
    with db.write_transaction():
        rank_blocks.lock(project_id)
        rank_blocks.settle(project_id)
    assert TaskRankChange.select().where(TaskRankChange.project_id == project_id).count() == 0


def test_appends_write_no_block_row_until_a_fold(
    client: TestClient, project_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A completion inserts pending rows and changes no block; every FOLD_EVERY-th change
    folds the pending rows into the sizes (and gives the blocks a new version)."""
    monkeypatch.setattr(rank_blocks, "FOLD_EVERY", 4)
    monkeypatch.setattr(rank_blocks, "_recorded", itertools.count(1))
    db.with_connection(projects.set_label_config, project_id, _config())
    ids = db.with_connection(import_tasks, project_id, _items(30)).task_ids
    unlabeled = [i for n, i in enumerate(ids) if n % 3]

    def blocks() -> list[tuple[int, int, int, int]]:
        query = TaskRankBlock.select().where(TaskRankBlock.project == project_id)
        return sorted((b.ordering, b.start_at, b.start_id, b.size) for b in query)

    def version() -> int:
        return int(TaskRankState.get_by_id(project_id).version)

    def run() -> None:
        before, old_version = blocks(), version()
        for task_id in unlabeled[:3]:
            completions.create_completion(task_id, {"result": []})
        assert blocks() == before and version() == old_version
        pending = TaskRankChange.select().where(TaskRankChange.project_id == project_id)
        assert sorted((c.ordering, c.delta) for c in pending) == [(1, 1)] * 3 + [(2, -1)] * 3
        _check_exact(project_id)
        completions.create_completion(unlabeled[3], {"result": []})  # the 4th: a fold
        assert TaskRankChange.select().where(TaskRankChange.project_id == project_id).count() == 0
        assert version() != old_version
        sizes = {o: s for o, s in ((b[0], b[3]) for b in blocks())}
        assert sizes == {0: 30, 1: 10 + 4, 2: 20 - 4}
        _check_exact(project_id)

    db.with_connection(run)


def test_a_database_before_the_pending_changes_is_upgraded(
    sentiment_project: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database at the previous schema version gets ``task_rank_change`` and
    ``task_rank_state`` (a version for every project); its pages stay exact, then writes go
    through pending changes."""
    before = {
        order: sentiment_project.get(f"/api/tasks?page_size=100&order={order}").json()["tasks"]
        for order in ("id", "-id", "completed_at", "-completed_at")
    }
    step = migrations.MIGRATIONS.index(migrations._task_rank_changes)
    monkeypatch.setattr(rank_blocks, "FOLD_EVERY", 10**9)

    def downgrade_and_migrate() -> None:
        # The previous version: blocks (made unevenly here, one per task), no pending-change
        # or version table.
        with db.write_transaction():
            for project in Project.select(Project.id):
                rank_blocks.settle(project.id)
            db.database.execute_sql('DELETE FROM "task_rank_block"')
            db.database.execute_sql(
                'INSERT INTO "task_rank_block" (project_id, ordering, start_at, start_id, size) '
                'SELECT project_id, 0, 0, id, 1 FROM "task"'
            )
        db.database.execute_sql('DROP TABLE "task_rank_change"')
        db.database.execute_sql('DROP TABLE "task_rank_state"')
        version = migrations.SchemaVersion.version
        migrations.SchemaVersion.delete().where(version > step).execute()
        assert migrations.current_version() == step
        assert migrations.migrate() == len(migrations.MIGRATIONS)
        assert {"task_rank_change", "task_rank_state"} <= set(db.database.get_tables())
        projects_ids = [p.id for p in Project.select(Project.id)]
        states = [s.project_id for s in TaskRankState.select()]
        assert sorted(states) == sorted(projects_ids)
        # The blocks were cut again from the tasks (here: one block per non-empty order).
        sizes = db.database.execute_sql(
            'SELECT ordering, COUNT(*), SUM(size) FROM "task_rank_block" GROUP BY ordering'
        ).fetchall()
        labeled = Task.select().where(Task.is_labeled == True).count()  # noqa: E712
        assert sorted((int(o), int(c), int(s)) for o, c, s in sizes) == [
            (0, 1, 5),
            (1, 1, labeled),
            (2, 1, 5 - labeled),
        ]

    db.with_connection(downgrade_and_migrate)
    for order, tasks in before.items():
        ids = [t["id"] for t in tasks]
        for page in (1, 2, 3):
            response = sentiment_project.get(f"/api/tasks?page={page}&page_size=2&order={order}")
            assert [t["id"] for t in response.json()["tasks"]] == ids[(page - 1) * 2 : page * 2]
    labeled = {t["id"] for t in before["completed_at"] if t["total_completions"]}
    unlabeled = [t["id"] for t in before["id"] if t["id"] not in labeled]
    assert unlabeled
    response = sentiment_project.post(f"/api/tasks/{unlabeled[0]}/completions", json={"result": []})
    assert response.status_code == 201, response.text
    project_id = db.with_connection(lambda: Project.select(Project.id).scalar())
    pending = db.with_connection(
        lambda: sorted((c.ordering, c.task_id, c.delta) for c in TaskRankChange.select())
    )
    assert pending == [(1, unlabeled[0], 1), (2, unlabeled[0], -1)]
    db.with_connection(_check_exact, project_id)


def test_an_import_counts_its_tasks_once_beside_pending_cuts_and_merges(
    client: TestClient, project_id: int, tiny_blocks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pending changes that need a cut and a merge when folded (completions saved since the
    last fold) meet an import of several chunks whose completion times lie above every one
    before: the import counts each of its tasks once. (Counting chunk by chunk, the fold's cut
    of the last completion-order block recounted it from the task index, which already held
    the chunk's new tasks, and the chunk then counted them again: pages went wrong.)"""
    from server.services.imports import pipeline

    monkeypatch.setattr(pipeline, "CHUNK", 4)
    db.with_connection(projects.set_label_config, project_id, _config())
    ids = db.with_connection(import_tasks, project_id, _items(30)).task_ids
    unlabeled = [i for n, i in enumerate(ids) if n % 3]
    monkeypatch.setattr(rank_blocks, "FOLD_EVERY", 10**9)  # the changes stay pending

    def run() -> None:
        for task_id in unlabeled[:8]:  # the last completion-order block: +8 (cut), the
            completions.create_completion(task_id, {"result": []})  # unlabeled: -8 (merge)
        assert TaskRankChange.select().where(TaskRankChange.project_id == project_id).count()
        later = [
            {"data": {"text": f"n{n}"}, "completions": [{"result": [], "created_at": at}]}
            for n, at in enumerate([2_000_000_000 + n for n in range(9)] + [1_600_000_003] * 3)
        ]
        import_tasks(project_id, later + [{"text": f"u{n}"} for n in range(5)])
        _check_exact(project_id)
        _settled(project_id)
        _check_exact(project_id)

    db.with_connection(run)
