"""Secrets never reach the log, at any level: the SQL log at DEBUG, storage errors, URLs."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from server import db
from server.logs import configure_logging, redact_text
from server.services.storage import config as storage_config
from tests.storage_fixtures import Bucket, RedisPlace

SECRETS = {
    "aws_access_key_id": "test-key-id",  # moto's credentials must be these (storage_fixtures)
    "aws_secret_access_key": "test-secret-key",
    "aws_session_token": "SESSION-TOKEN-0123456789",
}
REDIS_PASSWORD = "REDIS-PASSWORD-0123456789"


@pytest.fixture
def debug_log() -> Iterator[io.StringIO]:
    """The log as ``labelgraph --log-level DEBUG`` writes it."""
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging("DEBUG", stream)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_storage_setup_and_sync_log_no_secret(
    client: TestClient,
    project_id: int,
    s3_bucket: Bucket,
    redis_store: RedisPlace,
    debug_log: io.StringIO,
) -> None:
    s3_bucket.put("a.json", b'{"text": "x"}')
    body = {"type": "s3", **s3_bucket.settings(regex=".*"), **SECRETS}
    response = client.post("/api/project/storage-settings?storage_for=source", json=body)
    assert response.status_code == 201, response.text
    assert client.app.state.storage.wait_idle(30)  # type: ignore[attr-defined]
    assert client.get("/api/tasks").json()["total"] == 1  # synced, presigned URL served
    params = {"host": redis_store.host, "port": str(redis_store.port), "password": REDIS_PASSWORD}
    stored = storage_config.CleanStorage("target", "redis-completions", "p", params)
    db.with_connection(storage_config.save, project_id, stored)
    client.app.state.storage.write_completions(project_id, None)  # type: ignore[attr-defined]
    assert client.app.state.storage.wait_idle(30)  # type: ignore[attr-defined]
    text = debug_log.getvalue()
    assert 'INSERT INTO "storage"' in text  # the SQL log was on
    for secret in [*SECRETS.values(), REDIS_PASSWORD]:
        assert secret not in text
    if db.is_sqlite():  # PostgreSQL's driver logs JSON parameters as adapter objects
        assert '"aws_secret_access_key": "********"' in text


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ('{"password": "hunter2", "db": 1}', "hunter2"),
        ("{'aws_secret_access_key': 'abc/def'}", "abc/def"),
        ("redis://default:hunter2@cache.internal:6379/0", "hunter2"),
        ("GET /b/k?X-Amz-Credential=AKIDX%2F2024&X-Amz-Security-Token=TOKEN9&x=1", "TOKEN9"),
        ("GET /b/k?X-Amz-Credential=AKIDX%2F2024&X-Amz-Security-Token=TOKEN9&x=1", "AKIDX"),
        ("headers={'X-Amz-Security-Token': b'TOKEN9', 'Host': 'h'}", "TOKEN9"),
        ("connect(password=hunter2, host=h)", "hunter2"),
    ],
)
def test_secret_forms_are_masked(line: str, secret: str) -> None:
    assert secret not in redact_text(line)
