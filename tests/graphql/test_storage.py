"""GraphQL: Project.sourceStorage/targetStorage/storageSettings, setStorage, syncStorage."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.conftest import GraphQL

STORAGES = (
    "{ project { sourceStorage { role type description configured path readablePath params "
    "syncing syncedAt lastError } targetStorage { type configured readablePath } } }"
)
SET = (
    "mutation($role: StorageRole!, $type: String, $values: JSON!) "
    "{ setStorage(role: $role, type: $type, values: $values) { role type configured params "
    "readablePath } }"
)


def test_default_storages(client: TestClient, gql: GraphQL) -> None:
    project = gql(STORAGES)["project"]
    assert project["sourceStorage"] == {
        "role": "SOURCE",
        "type": "tasks-json",
        "description": 'Local [loading tasks from "tasks.json" file]',
        "configured": False,
        "path": None,
        "readablePath": "tasks.json",
        "params": {},
        "syncing": False,
        "syncedAt": None,
        "lastError": None,
    }
    assert project["targetStorage"] == {
        "type": "completions-dir",
        "configured": False,
        "readablePath": "completions",
    }
    document = gql("{ project { storageSettings } }")["project"]["storageSettings"]
    assert document == client.get("/api/project/storage-settings").json()


def test_set_storage_errors(client: TestClient, gql: GraphQL) -> None:
    error = gql.error(SET, {"role": "SOURCE", "type": "s3", "values": {"regex": "(["}})
    assert error["code"] == "INVALID"
    assert error["fields"] == {
        "path": ["This field is required."],
        "regex": ["([ is not a valid regular expression"],
    }
    error = gql.error(SET, {"role": "TARGET", "type": "gcs", "values": {}})
    assert error["code"] == "INVALID"
    assert error["supported"] == [
        "completions-dir",
        "s3-completions",
        "gcs-completions",
        "azure-blob-completions",
        "redis-completions",
    ]
    values = {"path": "p", "host": "127.0.0.1", "port": "1"}
    error = gql.error(SET, {"role": "SOURCE", "type": "redis", "values": values})
    assert error["code"] == "STORAGE"  # by default a storage must be on a public address
    assert error["message"] == (
        "Redis host not allowed: 127.0.0.1 resolves to the non-public address 127.0.0.1 (an "
        "operator can allow such addresses with LABELGRAPH_STORAGE_ALLOW_PRIVATE)"
    )
    assert gql(STORAGES)["project"]["sourceStorage"]["type"] == "tasks-json"


def test_set_and_reset_storages(client: TestClient, gql: GraphQL) -> None:
    target = gql(SET, {"role": "TARGET", "type": "completions-dir", "values": {}})["setStorage"]
    assert target == {
        "role": "TARGET",
        "type": "completions-dir",
        "configured": True,
        "params": {},
        "readablePath": "completions",
    }
    # Without a type the current type's form is used.
    again = gql(SET, {"role": "TARGET", "values": {"unknown": 1}})["setStorage"]
    assert again["type"] == "completions-dir" and again["params"] == {}
    source = gql(SET, {"role": "SOURCE", "type": "tasks-json", "values": {}})["setStorage"]
    assert source["configured"] is False
    synced = gql("mutation { syncStorage(role: TARGET) { type syncing } }")["syncStorage"]
    assert synced["type"] == "completions-dir"
    assert client.app.state.storage.wait_idle(10)  # type: ignore[attr-defined]
    state = gql("{ project { targetStorage { syncedAt lastError } } }")["project"]
    assert state["targetStorage"]["syncedAt"] is not None
    assert state["targetStorage"]["lastError"] is None
