"""A completion POST learns whether its project has a target storage inside its write
transaction (after the project's lock, which a storage's save takes exclusively), not with a
lookup after the commit: one round trip less on PostgreSQL, where it is part of the writes'
statement, and no read transaction of its own on SQLite."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from server import db
from server.services.storage import config as storage_config
from server.services.storage.config import CleanStorage
from tests.conftest import TEST_DATABASE_URL
from tests.query_log import count_queries

POSTGRES = bool(TEST_DATABASE_URL)
RESULT = [
    {
        "from_name": "sentiment",
        "to_name": "text",
        "type": "choices",
        "value": {"choices": ["Positive"]},
    }
]


def test_the_target_storage_is_looked_up_in_the_transaction(
    sentiment_project: TestClient, project_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = sentiment_project
    runtime: Any = client.app.state.storage  # type: ignore[attr-defined]
    noted: list[tuple[int, list[int] | None]] = []
    monkeypatch.setattr(
        runtime, "write_completions", lambda pid, ids=None: noted.append((pid, ids))
    )
    in_transaction: list[bool] = []
    real = storage_config.has_target

    def has_target(pid: int) -> bool:
        in_transaction.append(db.database.in_transaction())
        return real(pid)

    monkeypatch.setattr(storage_config, "has_target", has_target)
    answer = client.post("/api/project/import", json=[{"text": "one"}, {"text": "two"}])
    first, second = answer.json()["new_task_ids"]

    with count_queries() as counter:
        created = client.post(f"/api/tasks/{first}/completions", json={"result": RESULT})
    assert created.status_code == 201, created.text
    assert noted == []  # no target storage: nothing to write
    # SQLite: one indexed lookup before the commit; PostgreSQL: within the writes' statement
    assert in_transaction == ([] if POSTGRES else [True])
    queries = [q.msg[0] for q in counter.get_queries()]
    assert not any(q.startswith('SELECT 1 FROM "storage"') for q in queries[:-1])
    target_reads = [q for q in queries if '"storage"' in q]
    assert len(target_reads) == 1
    if POSTGRES:
        assert target_reads[0].startswith("WITH ")

    row = db.with_connection(
        storage_config.save, project_id, CleanStorage("target", "completions-dir", None, {})
    )
    assert row is not None
    created = client.post(f"/api/tasks/{second}/completions", json={"result": RESULT})
    assert created.status_code == 201, created.text
    assert noted == [(project_id, [second])]
    # A body naming an existing completion merges into it: the target is told as well.
    merged = client.post(
        f"/api/tasks/{second}/completions",
        json={"id": created.json()["id"], "result": [], "lead_time": 2.5},
    )
    assert merged.status_code == 201, merged.text
    assert merged.json()["id"] == created.json()["id"]
    assert noted == [(project_id, [second]), (project_id, [second])]
    assert all(in_transaction)
    assert len(in_transaction) == (1 if POSTGRES else 3)  # the merge reads it on both
