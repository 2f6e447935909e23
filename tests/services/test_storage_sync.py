"""Sync services without the background worker: leases, key bookkeeping, digests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from server import db
from server.models import Storage, StorageKey, Task, now_seconds
from server.services.storage import config as storage_config
from server.services.storage import sync_env
from server.services.storage.config import CleanStorage
from server.services.storage.source_sync import _store_tasks
from server.services.storage.target_sync import Written, _record, write_target
from server.settings import Settings


@pytest.fixture
def project(client: TestClient, project_id: int) -> int:
    client.app.state.storage.close(1)  # type: ignore[attr-defined]  # no background work
    client.post("/api/project/import", json=[{"text": "a"}, {"text": "b"}])
    return project_id


def target(project_id: int) -> Storage:
    row = db.with_connection(
        storage_config.save, project_id, CleanStorage("target", "completions-dir", None, {})
    )
    assert row is not None
    return row


def test_a_lease_lets_one_sync_run(project: int) -> None:
    assert db.with_connection(sync_env.claim, project, "source") == (None, False)
    row = target(project)
    taken, busy = db.with_connection(sync_env.claim, project, "target")
    assert taken is not None and taken.syncing and not busy
    assert db.with_connection(sync_env.claim, project, "target") == (None, True)
    db.with_connection(sync_env.release, taken, "boom", synced=False)
    state = db.with_connection(Storage.get_by_id, row.id)
    assert not state.syncing and state.last_error == "boom" and state.synced_at is None
    # A lease older than SYNC_LEASE is taken over (a process died while syncing).
    stale = now_seconds() - storage_config.SYNC_LEASE - 1
    db.with_connection(
        lambda: (
            Storage.update(syncing=True, sync_started_at=stale)
            .where(Storage.id == row.id)
            .execute()
        )
    )
    taken, busy = db.with_connection(sync_env.claim, project, "target")
    assert taken is not None and not busy


def test_each_source_key_becomes_one_task(project: int) -> None:
    items: list[tuple[str, dict[str, Any]]] = [
        ("s3://b/k1", {"data": {"text": "one"}}),
        ("s3://b/k2", {"data": {"text": "two"}}),
    ]
    assert db.with_connection(_store_tasks, project, items) == 2
    assert db.with_connection(_store_tasks, project, items) == 0
    keys = db.with_connection(
        lambda: sorted((k.key, k.task_id is not None) for k in StorageKey.select())
    )
    assert keys == [("s3://b/k1", True), ("s3://b/k2", True)]
    # Deleting a synced task keeps its key: the object is not synced again.
    task_id = db.with_connection(lambda: StorageKey.get(StorageKey.key == "s3://b/k1").task_id)
    db.with_connection(lambda: Task.delete().where(Task.id == task_id).execute())
    assert db.with_connection(_store_tasks, project, items[:1]) == 0


def test_target_writes_only_changed_documents(
    client: TestClient, project: int, settings: Settings
) -> None:
    first = client.get("/api/tasks").json()["tasks"][0]["id"]
    client.post(f"/api/tasks/{first}/completions", json={"result": []})
    target(project)
    env = sync_env.SyncEnv(settings)
    outcome = write_target(project, None, env)
    assert outcome.status == "done"
    path = Path(settings.project_dir) / "completions" / f"{first}.json"
    document = json.loads(path.read_text())
    assert document["id"] == first and len(document["completions"]) == 1
    path.write_text("changed by hand")
    write_target(project, [first], env)
    assert path.read_text() == "changed by hand"  # same digest: not written again
    client.post(f"/api/tasks/{first}/completions", json={"result": []})
    write_target(project, [first], env)
    assert len(json.loads(path.read_text())["completions"]) == 2
    client.delete(f"/api/tasks/{first}")
    assert write_target(project, None, env).status == "done"
    assert not path.exists()
    assert db.with_connection(lambda: StorageKey.select().count()) == 0


def test_a_changed_target_is_written_in_full(project: int, settings: Settings) -> None:
    row = target(project)
    written = Written({"1.json": (1, "digest")}, [])
    stale = (row.id, "an older version of the settings")
    db.with_connection(_record, project, written, stale)
    assert db.with_connection(lambda: StorageKey.select().count()) == 0
    current = sync_env.spec_of(row, "").version
    db.with_connection(_record, project, written, current)
    assert db.with_connection(lambda: StorageKey.select().count()) == 1
