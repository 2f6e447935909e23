"""Storages against a hostile client: stored secrets stay with their host, storage hosts must
be public unless allowed, key regexes cannot stall a sync. Real S3 (moto) and Redis servers."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from server import db
from server.services import net_guard
from server.services.storage import config as storage_config
from server.services.storage.backends import S3Store, StorageFailure, StorageSpec
from server.settings import Settings
from tests.conftest import GraphQL
from tests.storage_fixtures import S3_CREDENTIALS, Bucket, RedisPlace

MASK = "********"
SET = """mutation($role: StorageRole!, $type: String, $values: JSON!) {
  setStorage(role: $role, type: $type, values: $values) { type params }
}"""


@contextlib.contextmanager
def listener(host: str = "127.0.0.1") -> Iterator[tuple[int, list[bytes]]]:
    """A TCP port that records whatever is sent to it (an attacker's host)."""
    received: list[bytes] = []
    server = socket.create_server((host, 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(1)
                with contextlib.suppress(OSError):
                    received.append(conn.recv(65536))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], received
    finally:
        stop.set()
        thread.join(5)
        server.close()


def post(client: TestClient, role: str, type_name: str, body: dict[str, Any]) -> Any:
    return client.post(
        "/api/project/storage-settings",
        params={"storage_for": role, "type": type_name},
        json={"type": type_name, **body},
    )


def gql_of(client: TestClient) -> GraphQL:
    state = client.app.state  # type: ignore[attr-defined]
    return GraphQL(state.settings, int(state.project_id), state.ml, state.storage)


# --- 1. a stored secret is not sent to a changed host --------------------------------------


def test_masked_s3_credentials_do_not_follow_a_changed_endpoint_bucket_or_region(
    client: TestClient, project_id: int, s3_bucket: Bucket
) -> None:
    secrets = {**S3_CREDENTIALS, "aws_session_token": "SESSION-TOKEN"}
    first = post(client, "source", "s3", {**s3_bucket.settings(regex=".*"), **secrets})
    assert first.status_code == 201, first.text
    masked = {name: MASK for name in secrets}
    with listener() as (port, received):
        attack = {"path": s3_bucket.name, "endpoint_url": f"http://127.0.0.1:{port}", **masked}
        response = post(client, "source", "s3", attack)
        assert response.status_code == 400
        errors = response.json()["errors"]
        assert set(errors) == set(secrets)
        assert errors["aws_secret_access_key"] == [
            "Enter the aws_secret_access_key again: a stored secret is not sent to a changed "
            "endpoint_url"
        ]
        error = gql_of(client).error(SET, {"role": "SOURCE", "type": "s3", "values": attack})
        assert error["code"] == "INVALID" and set(error["fields"]) == set(secrets)
        assert received == []  # nothing, not even a connection attempt with the key
    for change in ({"path": "other-bucket"}, {"region": "eu-west-1"}):
        body = {**s3_bucket.settings(), **masked, **change}
        response = post(client, "source", "s3", body)
        assert response.status_code == 400, change
        assert next(iter(change)) in response.json()["errors"]["aws_access_key_id"][0]
    # Same endpoint, bucket and region: the masked values keep the stored secrets.
    same = post(client, "source", "s3", {**s3_bucket.settings(regex=".*"), **masked})
    assert same.status_code == 201, same.text
    params = db.with_connection(lambda: storage_config.storage_rows(project_id)["source"].params)
    assert {k: params[k] for k in secrets} == secrets


def test_a_masked_redis_password_does_not_follow_a_changed_host(
    client: TestClient, project_id: int, redis_store: RedisPlace
) -> None:
    stored = storage_config.CleanStorage(
        "target",
        "redis-completions",
        redis_store.prefix,
        {"host": redis_store.host, "port": str(redis_store.port), "password": "REDIS-PASSWORD"},
    )
    db.with_connection(storage_config.save, project_id, stored)
    with listener() as (port, received):
        attack = {"path": redis_store.prefix, "host": "127.0.0.1", "port": str(port)}
        response = post(client, "target", "redis-completions", {**attack, "password": MASK})
        assert response.status_code == 400
        changed = "port" if redis_store.host == "127.0.0.1" else "host, port"
        assert response.json() == {
            "errors": {
                "password": [
                    f"Enter the password again: a stored secret is not sent to a changed {changed}"
                ]
            }
        }
        assert received == []  # the AUTH command never left


# --- 2. storage hosts must be public unless the operator allows otherwise -----------------


def test_by_default_storages_on_internal_hosts_are_refused(
    app_with_settings: Callable[..., TestClient], s3_bucket: Bucket, redis_store: RedisPlace
) -> None:
    client = app_with_settings(storage_allow_private=False)
    response = post(client, "source", "s3", s3_bucket.settings(regex=".*"))
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "Error while storage update: S3 endpoint not allowed: 127.0.0.1 resolves to the "
        "non-public address 127.0.0.1 (an operator can allow such addresses with "
        "LABELGRAPH_STORAGE_ALLOW_PRIVATE)"
    )
    response = post(client, "source", "redis", redis_store.settings())
    assert response.status_code == 400
    assert "Redis host not allowed: 127.0.0.1 resolves to the non-public" in response.text
    response = post(client, "source", "redis", {"path": "p"})  # the default host: localhost
    assert response.status_code == 400 and "Redis host not allowed: localhost" in response.text


def test_the_operators_s3_endpoint_is_trusted(
    app_with_settings: Callable[..., TestClient], s3_bucket: Bucket
) -> None:
    client = app_with_settings(storage_allow_private=False, s3_endpoint=s3_bucket.endpoint)
    body = {"path": s3_bucket.name, "regex": ".*", **S3_CREDENTIALS}
    assert post(client, "source", "s3", body).status_code == 201


def test_s3_connections_go_to_the_vetted_address(
    settings: Settings, s3_bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the endpoint's name is checked when the client is made, and again for
    each connection, which goes to the address that was checked. Here the name's later
    answers point at another loopback address (127.0.0.2, "internal" for this test)."""
    port = int(s3_bucket.endpoint.rsplit(":", 1)[1])
    lookups: list[str] = []
    real = socket.getaddrinfo
    with listener("127.0.0.2") as (internal_port, received):

        def fake(host: str, *args: Any, **kwargs: Any) -> Any:
            # (A name starting with "localhost": moto then reads the bucket from the path.)
            if host == "localhost-s3.example":
                first = len(lookups) < 2  # the check, then the first connection
                lookups.append("127.0.0.1" if first else "127.0.0.2")
                sockaddr = ("127.0.0.1", port) if first else ("127.0.0.2", internal_port)
                return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", sockaddr)]
            return real(host, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", fake)
        monkeypatch.setattr(net_guard, "is_public", lambda address: address == "127.0.0.1")
        guarded = dataclasses.replace(settings, storage_allow_private=False)
        params = {"endpoint_url": f"http://localhost-s3.example:{port}", **S3_CREDENTIALS}
        store = S3Store(StorageSpec("s3", s3_bucket.name, params, "/p"), guarded)
        store.check()
        assert lookups == ["127.0.0.1", "127.0.0.1"]
        store.client._endpoint.http_session.close()  # the next call needs a new connection
        with pytest.raises(StorageFailure):
            store.check()
        assert "127.0.0.2" in lookups  # the new answer was looked at, and refused
        assert received == []  # nothing reached the other address


# --- 3. key regexes run in linear time --------------------------------------------------------


def test_a_backtracking_regex_cannot_stall_a_sync(client: TestClient, s3_bucket: Bucket) -> None:
    s3_bucket.put("aaaa", b"{}")
    s3_bucket.put("a" * 200 + "!", b"{}")  # hours for a backtracking engine
    response = post(client, "source", "s3", s3_bucket.settings(regex="(a+)+$"))
    assert response.status_code == 201, response.text
    assert client.app.state.storage.wait_idle(60)  # type: ignore[attr-defined]
    tasks = client.get("/api/tasks").json()["tasks"]
    assert len(tasks) == 1
    (served,) = tasks[0]["data"].values()
    assert f"/{s3_bucket.name}/aaaa?" in served


def test_patterns_re2_cannot_run_are_refused(client: TestClient) -> None:
    response = post(client, "source", "s3", {"path": "b", "regex": r"(a)\1"})
    assert response.status_code == 400
    assert response.json() == {
        "errors": {
            "regex": [
                r"(a)\1 is not a valid regular expression here: invalid escape sequence: \1 "
                "(backreferences and lookaround are not supported)"
            ]
        }
    }
