"""GET|POST /api/project/storage-settings (rest-api.md §9.2), the local completions mirror and
the sync state in GET /api/project."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from server.services.storage import source_sync
from server.settings import Settings
from tests.conftest import fixture_text
from tests.storage_fixtures import Bucket

FIELD_KEYS = {
    "name",
    "id",
    "short_name",
    "type",
    "data",
    "default",
    "description",
    "raw_data",
    "object_data",
    "render_kw",
    "do_not_call_in_templates",
}


def post(client: TestClient, role: str, type_name: str | None, body: Any) -> Any:
    params = {"storage_for": role}
    if type_name is not None:
        params["type"] = type_name
    return client.post("/api/project/storage-settings", params=params, json=body)


def test_forms_of_the_supported_types(client: TestClient) -> None:
    response = client.get("/api/project/storage-settings")
    assert response.status_code == 200
    body = response.json()
    assert list(body["source"]) == ["tasks-json", "s3", "gcs", "azure-blob", "redis"]
    assert list(body["target"]) == [
        "completions-dir",
        "s3-completions",
        "gcs-completions",
        "azure-blob-completions",
        "redis-completions",
    ]
    assert body["source"]["tasks-json"] == {
        "type": "tasks-json",
        "current": True,
        "description": 'Local [loading tasks from "tasks.json" file]',
        "path": "tasks.json",
        "fields": [],
    }
    s3 = body["source"]["s3"]
    assert s3["current"] is False and s3["description"] == "Amazon S3"
    assert s3["path"] == "tasks.json"  # the readable path of the current source
    assert [f["name"] for f in s3["fields"]] == [
        "path",
        "prefix",
        "regex",
        "use_blob_urls",
        "region",
    ]
    path, _, _, blob, region = s3["fields"]
    assert set(path) == FIELD_KEYS
    assert path == {
        "name": "path",
        "id": "path",
        "short_name": "path",
        "type": "StringField",
        "data": None,
        "default": None,
        "description": "Storage path (e.g. bucket/container name)",
        "raw_data": None,
        "object_data": None,
        "render_kw": None,
        "do_not_call_in_templates": True,
    }
    assert blob["type"] == "BooleanField" and blob["data"] is True and blob["default"] is True
    assert region["data"] == "us-east-1"
    redis = body["target"]["redis-completions"]
    assert [f["name"] for f in redis["fields"]] == ["path", "host", "port", "password", "db"]
    assert redis["fields"][4]["type"] == "IntegerField" and redis["fields"][4]["default"] == 2
    assert body["source"]["redis"]["fields"][4]["default"] == 1
    completions = body["target"]["s3-completions"]
    assert [f["name"] for f in completions["fields"]] == ["path", "prefix", "create_local_copy"]
    # GCS and Azure (rest-api.md §9.2): the cloud form without region; targets alike.
    for name, description in (
        ("gcs", "Google Cloud Storage"),
        ("azure-blob", "Azure Blob Storage"),
    ):
        source = body["source"][name]
        assert source["description"] == description and source["current"] is False
        assert source["fields"] == s3["fields"][:4]
        target = body["target"][f"{name}-completions"]
        assert target["description"] == description
        assert [f["name"] for f in target["fields"]] == ["path", "prefix", "create_local_copy"]
        assert [f["default"] for f in target["fields"]] == [None, None, True]
    assert body["target"]["gcs-completions"]["fields"][1]["description"] == "GCS Bucket prefix"
    assert body["target"]["azure-blob-completions"]["fields"][1]["description"] == (
        "Azure Blob prefix"
    )
    assert body["target"]["completions-dir"]["current"] is True
    assert body["target"]["completions-dir"]["path"] == "completions"
    project = client.get("/api/project").json()
    assert [t for t, _ in project["available_storages"]] == [
        "s3",
        "s3-completions",
        "azure-blob",
        "azure-blob-completions",
        "gcs",
        "gcs-completions",
        "completions-dir",
        "tasks-json",
        "redis-completions",
        "redis",
    ]


@pytest.mark.parametrize(
    ("role", "type_name", "body", "errors"),
    [
        ("source", "s3", {"type": "s3"}, {"path": ["This field is required."]}),
        (
            "source",
            "s3",
            {"type": "s3", "path": "b", "regex": "(["},
            {"regex": ["([ is not a valid regular expression"]},
        ),
        (
            "source",
            "s3",
            {"type": "s3", "path": "b", "use_blob_urls": "maybe"},
            {"use_blob_urls": ["Not a valid boolean value"]},
        ),
        (
            "target",
            "redis-completions",
            {"type": "redis-completions", "db": "two"},
            {"db": ["Not a valid integer value"]},
        ),
        ("target", "s3-completions", {"path": ""}, {"path": ["This field is required."]}),
        (
            "source",
            "gcs",
            {"regex": "(["},
            {
                "path": ["This field is required."],
                "regex": ["([ is not a valid regular expression"],
            },
        ),
        (
            "target",
            "gcs-completions",
            {"path": "b", "google_application_credentials": '{"type": "user"}'},
            {
                "google_application_credentials": [
                    "Not a service account key (JSON with type, client_email and private_key)"
                ]
            },
        ),
        (
            "source",
            "azure-blob",
            {"path": "c", "use_blob_urls": "x"},
            {"use_blob_urls": ["Not a valid boolean value"]},
        ),
        ("target", "azure-blob-completions", {}, {"path": ["This field is required."]}),
    ],
)
def test_field_errors(
    client: TestClient, role: str, type_name: str, body: dict[str, Any], errors: Any
) -> None:
    response = post(client, role, type_name, body)
    assert response.status_code == 400
    assert response.json() == {"errors": errors}


def test_unknown_types(client: TestClient) -> None:
    response = post(client, "target", "gcs", {"path": "b"})
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "Unknown target storage type 'gcs'; use one of: completions-dir, s3-completions, "
        "gcs-completions, azure-blob-completions, redis-completions"
    )
    response = post(client, "source", "azure-blob", {"path": "c", "account_name": "Bad.Name"})
    assert response.status_code == 400  # no endpoint_url: the account names the host
    assert response.json()["detail"] == (
        "Error while storage update: Azure account name 'Bad.Name' is not valid (3-24 "
        "lowercase letters and digits)"
    )
    assert post(client, "source", "s3-completions", {"path": "b"}).status_code == 400
    assert post(client, "source", "ftp", {}).json()["detail"].startswith("Unknown source storage")
    response = post(client, "both", "s3", {})
    assert response.status_code == 400 and "storage_for" in response.json()["detail"]
    response = post(client, "source", "s3", {"type": "redis"})
    assert response.status_code == 400 and "differs" in response.json()["detail"]
    response = client.post(
        "/api/project/storage-settings?storage_for=source",
        content=b"[1]",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400


def test_local_completions_mirror(client: TestClient, settings: Settings) -> None:
    client.post("/api/project/config", data={"label_config": fixture_text("configs/sentiment.xml")})
    client.post("/api/project/import", json=[{"text": "x"}, {"text": "y"}])
    first, second = [t["id"] for t in client.get("/api/tasks").json()["tasks"]]
    completion = client.post(f"/api/tasks/{first}/completions", json={"result": []}).json()
    mirror = Path(settings.project_dir) / "completions"
    assert not mirror.exists()  # completions only in the database by default

    response = post(client, "target", None, {"type": "completions-dir"})
    assert response.status_code == 201 and response.json() == {"result": "ok"}
    assert client.app.state.storage.wait_idle(10)  # type: ignore[attr-defined]
    document = json.loads((mirror / f"{first}.json").read_text())
    assert document["id"] == first and document["data"] == {"text": "x"}
    assert document["completions"][0]["id"] == completion["id"]
    client.post(f"/api/tasks/{second}/completions", json={"result": []})
    assert client.app.state.storage.wait_idle(10)  # type: ignore[attr-defined]
    assert sorted(p.name for p in mirror.iterdir()) == sorted([f"{first}.json", f"{second}.json"])
    client.delete(f"/api/tasks/{first}/completions")
    assert client.app.state.storage.wait_idle(10)  # type: ignore[attr-defined]
    assert sorted(p.name for p in mirror.iterdir()) == [f"{second}.json"]
    settings_doc = client.get("/api/project/storage-settings").json()
    assert settings_doc["target"]["completions-dir"]["current"] is True
    project = client.get("/api/project").json()
    assert project["config"]["target"] == {
        "name": "target",
        "type": "completions-dir",
        "path": None,
        "params": {},
    }


def test_sync_runs_in_the_background_and_reports_its_state(
    client: TestClient, s3_bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3_bucket.put("a.json", json.dumps({"text": "synced"}))
    release = threading.Event()
    listing = source_sync._listing

    def slow_listing(*args: Any) -> Any:
        release.wait(20)
        return listing(*args)

    monkeypatch.setattr(source_sync, "_listing", slow_listing)
    body = {"type": "s3", **s3_bucket.settings(regex=".*", use_blob_urls=False)}
    started = time.monotonic()
    assert post(client, "source", "s3", body).status_code == 201
    try:
        deadline = time.monotonic() + 10
        while not client.get("/api/project").json()["source_syncing"]:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        project = client.get("/api/project").json()
        assert project["task_count"] == 0 and project["target_syncing"] is False
        assert client.get("/api/tasks").json()["total"] == 0
        assert time.monotonic() - started < 5  # nothing waited for the sync
    finally:
        release.set()
    assert client.app.state.storage.wait_idle(20)  # type: ignore[attr-defined]
    project = client.get("/api/project").json()
    assert project["source_syncing"] is False and project["task_count"] == 1
