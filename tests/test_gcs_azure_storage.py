"""GCS and Azure storages against their emulators (gcp-storage-emulator, Azurite; processes on
127.0.0.1): the S3 scenarios for each: blob URLs synced in and served signed, JSON tasks,
completions written out, a bucket/container that disappears, unreachable ones, secrets."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from server.logs import configure_logging, redact_text
from server.services import net_guard
from server.services.storage.backends import StorageFailure, StorageSpec
from server.services.storage.gcs import GCSStore
from server.settings import Settings
from tests.cloud_emulators import AzureContainer, GcsBucket
from tests.test_s3_storage import RESULT, configure, idle, set_config
from tests.test_storage_security import listener

Cloud = GcsBucket | AzureContainer


@pytest.fixture(params=["gcs", "azure"])
def cloud_store(request: pytest.FixtureRequest) -> Cloud:
    name = "gcs_bucket" if request.param == "gcs" else "azure_container"
    store: Cloud = request.getfixturevalue(name)
    return store


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


def secret_of(store: Cloud) -> str:
    return str(store.settings()[store.secret])


def test_source_sync_of_blob_urls_served_signed(client: TestClient, cloud_store: Cloud) -> None:
    set_config(client, "configs/image_bbox.xml")
    cloud_store.put("images/1.jpg", b"first image")
    cloud_store.put("images/deeper/2.jpg", b"second image")  # listed at every depth
    cloud_store.put("images/notes.txt", b"not matched by the regex")
    cloud_store.put("other/4.jpg", b"outside the prefix")
    cloud_store.put("images-old/5.jpg", b"another prefix that starts alike")
    body = cloud_store.settings(prefix="images", regex=r".*\.jpg$", use_blob_urls=True)
    response = configure(client, "source", cloud_store.source_type, body)
    assert response.status_code == 201, response.text
    assert response.json() == {"result": "ok"}
    idle(client)

    page = client.get("/api/tasks").json()
    assert page["total"] == 2
    urls = [task["data"]["image"] for task in page["tasks"]]
    for url, content in zip(urls, (b"first image", b"second image"), strict=True):
        assert url.startswith(f"{cloud_store.endpoint}/{cloud_store.name}/images/")
        assert cloud_store.signature in url
        assert httpx.get(url).content == content
    one = client.get(f"/api/tasks/{page['tasks'][0]['id']}").json()
    assert cloud_store.signature in one["data"]["image"]
    query = "{ project { tasks(first: 5) { nodes { data } } sourceStorage { lastError } } }"
    data = client.post("/graphql", json={"query": query}).json()["data"]["project"]
    prefix = f"{cloud_store.scheme}://{cloud_store.name}"
    assert [n["data"]["image"] for n in data["tasks"]["nodes"]] == [
        f"{prefix}/images/1.jpg",
        f"{prefix}/images/deeper/2.jpg",
    ]
    assert data["sourceStorage"]["lastError"] is None

    project = client.get("/api/project")
    assert secret_of(cloud_store) not in project.text
    source = project.json()["config"]["source"]
    assert source["type"] == cloud_store.source_type and source["path"] == cloud_store.name
    assert source["params"][cloud_store.secret] == "********"
    assert project.json()["source_storage"] == {"readable_path": f"{prefix}/images"}
    forms = client.get("/api/project/storage-settings")
    assert secret_of(cloud_store) not in forms.text
    form = forms.json()["source"][cloud_store.source_type]
    assert form["current"] is True
    assert {f["name"]: f["data"] for f in form["fields"]} == {
        "path": cloud_store.name,
        "prefix": "images",
        "regex": r".*\.jpg$",
        "use_blob_urls": True,
    }

    # A new object is synced on the next sync; known ones are not synced again.
    ids = {t["id"] for t in page["tasks"]}
    cloud_store.put("images/6.jpg", b"sixth")
    client.post("/graphql", json={"query": "mutation { syncStorage { type } }"})
    idle(client)
    again = client.get("/api/tasks").json()["tasks"]
    assert len(again) == 3 and ids <= {t["id"] for t in again}
    assert httpx.get(again[2]["data"]["image"]).content == b"sixth"


def test_only_own_objects_are_signed(client: TestClient, cloud_store: Cloud) -> None:
    set_config(client, "configs/image_bbox.xml")
    prefix = f"{cloud_store.scheme}://{cloud_store.name}"
    stored = [
        f"{prefix}/pics/a.png",
        f"{prefix}/elsewhere/b.png",
        f"{cloud_store.scheme}://another-{cloud_store.name}/pics/c.png",
    ]
    client.post("/api/project/import", json=[{"image": uri} for uri in stored])
    cloud_store.put("pics/a.png", b"png bytes")
    body = cloud_store.settings(prefix="pics", create_local_copy=False)
    assert configure(client, "target", cloud_store.target_type, body).status_code == 201
    served = [t["data"]["image"] for t in client.get("/api/tasks").json()["tasks"]]
    assert httpx.get(served[0]).content == b"png bytes"
    assert served[1:] == stored[1:]
    body["presign"] = False
    assert configure(client, "target", cloud_store.target_type, body).status_code == 201
    assert client.get("/api/tasks").json()["tasks"][0]["data"]["image"] == stored[0]


def test_source_sync_of_json_tasks_skips_invalid_objects(
    client: TestClient, cloud_store: Cloud
) -> None:
    set_config(client, "configs/sentiment.xml")
    cloud_store.put("tasks/a.json", json.dumps({"text": "bare task"}))
    cloud_store.put("tasks/b.json", json.dumps([{"data": {"text": "one-item list"}}]))
    cloud_store.put("tasks/c.json", json.dumps({"other": "no text key"}))
    cloud_store.put("tasks/d.json", "not json")
    body = cloud_store.settings(prefix="tasks/", regex=".*", use_blob_urls=False)
    assert configure(client, "source", cloud_store.source_type, body).status_code == 201
    idle(client)
    page = client.get("/api/tasks").json()
    assert [t["data"]["text"] for t in page["tasks"]] == ["bare task", "one-item list"]
    query = "{ project { sourceStorage { lastError } } }"
    error = client.post("/graphql", json={"query": query}).json()["data"]["project"]
    error = error["sourceStorage"]["lastError"]
    assert error.startswith("2 objects skipped: ")
    assert 'tasks/c.json :: "text" key is expected in task data' in error
    assert "tasks/d.json :: not a JSON task" in error


def test_an_empty_regex_syncs_nothing(client: TestClient, cloud_store: Cloud) -> None:
    cloud_store.put("x.json", json.dumps({"text": "t"}))
    body = cloud_store.settings(use_blob_urls=False)
    assert configure(client, "source", cloud_store.source_type, body).status_code == 201
    idle(client)
    assert client.get("/api/tasks").json()["total"] == 0


def test_target_writes_completions_documents(
    client: TestClient, settings: Settings, cloud_store: Cloud
) -> None:
    set_config(client, "configs/sentiment.xml")
    client.post("/api/project/import", json=[{"text": "one"}, {"text": "two"}])
    first, second = [t["id"] for t in client.get("/api/tasks").json()["tasks"]]
    client.post(f"/api/tasks/{first}/completions", json={"result": RESULT})
    body = cloud_store.settings(prefix="done")
    response = configure(client, "target", cloud_store.target_type, body)
    assert response.status_code == 201, response.text
    idle(client)  # existing completions are written when the target is set
    assert cloud_store.keys() == [f"done/{first}"]

    created = client.post(f"/api/tasks/{second}/completions", json={"result": RESULT})
    idle(client)
    assert cloud_store.keys() == sorted([f"done/{first}", f"done/{second}"])
    document = json.loads(cloud_store.read(f"done/{second}"))
    assert document == {
        "completions": [
            {
                "created_at": document["completions"][0]["created_at"],
                "id": created.json()["id"],
                "result": RESULT,
            }
        ],
        "data": {"text": "two"},
        "id": second,
    }
    local = Path(settings.project_dir) / "completions" / f"{second}.json"
    assert json.loads(local.read_bytes()) == document

    cid = created.json()["id"]
    assert client.delete(f"/api/tasks/{second}/completions/{cid}").status_code == 204
    idle(client)
    assert cloud_store.keys() == [f"done/{first}"]
    assert not local.exists()
    project = client.get("/api/project").json()
    readable = f"{cloud_store.scheme}://{cloud_store.name}/done"
    assert project["target_storage"] == {"readable_path": readable}
    assert project["config"]["target"]["params"]["create_local_copy"] is True


def test_a_bucket_that_disappears_mid_sync(client: TestClient, cloud_store: Cloud) -> None:
    client.post("/api/project/import", json=[{"text": "one"}])
    task_id = client.get("/api/tasks").json()["tasks"][0]["id"]
    body = cloud_store.settings()
    assert configure(client, "target", cloud_store.target_type, body).status_code == 201
    source = cloud_store.settings(regex=".*", use_blob_urls=False)
    assert configure(client, "source", cloud_store.source_type, source).status_code == 201
    idle(client)
    cloud_store.drop()
    response = client.post(f"/api/tasks/{task_id}/completions", json={"result": []})
    assert response.status_code == 201
    client.post("/graphql", json={"query": "mutation { syncStorage { type } }"})
    idle(client)
    query = "{ project { sourceStorage { lastError } targetStorage { lastError errorAt } } }"
    state = client.post("/graphql", json={"query": query}).json()["data"]["project"]
    gone = "404" if isinstance(cloud_store, GcsBucket) else "ContainerNotFound"
    for role in ("sourceStorage", "targetStorage"):
        assert gone in state[role]["lastError"], state
        assert secret_of(cloud_store) not in state[role]["lastError"]
    assert state["targetStorage"]["errorAt"] is not None


def test_unreachable_buckets_are_refused(client: TestClient, cloud_store: Cloud) -> None:
    body = cloud_store.settings(path="no-such-bucket")
    response = configure(client, "source", cloud_store.source_type, body)
    assert response.status_code == 400
    kind = "GCS bucket" if isinstance(cloud_store, GcsBucket) else "Azure container"
    assert response.json()["detail"].startswith(
        f"Error while storage update: {kind} no-such-bucket: "
    )
    assert secret_of(cloud_store) not in response.text
    body = cloud_store.settings(endpoint_url="http://127.0.0.1:9")  # nothing listens there
    response = configure(client, "target", cloud_store.target_type, body)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Error while storage update: ")
    forms = client.get("/api/project/storage-settings").json()
    assert forms["source"]["tasks-json"]["current"] is True
    assert forms["target"]["completions-dir"]["current"] is True


def test_a_masked_secret_is_kept_only_for_the_same_destination(
    client: TestClient, cloud_store: Cloud
) -> None:
    body = cloud_store.settings(regex=".*")
    assert configure(client, "source", cloud_store.source_type, body).status_code == 201
    masked = {**body, cloud_store.secret: "********", "prefix": "p"}
    assert configure(client, "source", cloud_store.source_type, masked).status_code == 201
    idle(client)
    query = "{ project { sourceStorage { lastError } } }"
    assert client.post("/graphql", json={"query": query}).json()["data"]["project"] == {
        "sourceStorage": {"lastError": None}
    }
    moved = {**masked, "endpoint_url": "http://127.0.0.1:9"}
    response = configure(client, "source", cloud_store.source_type, moved)
    assert response.status_code == 400
    assert response.json() == {
        "errors": {
            cloud_store.secret: [
                f"Enter the {cloud_store.secret} again: a stored secret is not sent to a "
                "changed endpoint_url"
            ]
        }
    }


def test_by_default_emulators_on_loopback_are_refused(
    app_with_settings: Any, gcs_bucket: GcsBucket, azure_container: AzureContainer
) -> None:
    client = app_with_settings(storage_allow_private=False)
    response = configure(client, "source", "gcs", gcs_bucket.settings(regex=".*"))
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "Error while storage update: GCS endpoint not allowed: 127.0.0.1 resolves to the "
        "non-public address 127.0.0.1 (an operator can allow such addresses with "
        "LABELGRAPH_STORAGE_ALLOW_PRIVATE)"
    )
    body = azure_container.settings()
    response = configure(client, "target", "azure-blob-completions", body)
    assert response.status_code == 400
    assert response.json()["detail"].startswith(
        "Error while storage update: Azure endpoint not allowed: 127.0.0.1 resolves to the "
        "non-public address 127.0.0.1"
    )


def test_setup_sync_and_signed_urls_log_no_secret(
    client: TestClient, cloud_store: Cloud, debug_log: io.StringIO
) -> None:
    set_config(client, "configs/image_bbox.xml")
    cloud_store.put("a.jpg", b"image")
    body = cloud_store.settings(regex=".*")
    assert configure(client, "source", cloud_store.source_type, body).status_code == 201
    idle(client)
    url = client.get("/api/tasks").json()["tasks"][0]["data"]["image"]
    assert httpx.get(url).content == b"image"  # httpx logs the signed URL it fetches
    text = debug_log.getvalue()
    assert 'INSERT INTO "storage"' in text and cloud_store.name in text
    signature = url.split(cloud_store.signature, 1)[1].split("&", 1)[0]
    secrets = [secret_of(cloud_store), signature]
    if isinstance(cloud_store, GcsBucket):
        secrets.append(json.loads(cloud_store.key)["private_key"].splitlines()[1])
    for secret in secrets:
        assert secret not in text


def test_new_secret_names_are_masked_in_any_text() -> None:
    line = (
        "account_key=abc google_application_credentials: 'xyz' "
        "GET http://h/b/k?X-Goog-Credential=c%2Fd&X-Goog-Signature=0123 "
        "https://h/c/k?se=1&sig=SIGNATURE&sp=r AccountName=a;AccountKey=KEY;"
    )
    assert redact_text(line) == (
        "account_key=******** google_application_credentials: '********' "
        "GET http://h/b/k?X-Goog-Credential=********&X-Goog-Signature=******** "
        "https://h/c/k?se=1&sig=********&sp=r AccountName=a;AccountKey=********;"
    )


def test_gcs_connections_go_to_the_vetted_address(
    settings: Settings, gcs_bucket: GcsBucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding, as for S3: the endpoint's name is checked when the client is made and
    again for each connection of its requests session (the one the Azure client gets too),
    which goes to the address that was checked. Later answers point at 127.0.0.2."""
    port = int(gcs_bucket.endpoint.rsplit(":", 1)[1])
    lookups: list[str] = []
    real = socket.getaddrinfo
    with listener("127.0.0.2") as (internal_port, received):

        def fake(host: str, *args: Any, **kwargs: Any) -> Any:
            if host == "gcs.example":
                first = len(lookups) < 2  # the check, then the first connection
                lookups.append("127.0.0.1" if first else "127.0.0.2")
                sockaddr = ("127.0.0.1", port) if first else ("127.0.0.2", internal_port)
                return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", sockaddr)]
            return real(host, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", fake)
        monkeypatch.setattr(net_guard, "is_public", lambda address: address == "127.0.0.1")
        guarded = dataclasses.replace(settings, storage_allow_private=False)
        params = {"endpoint_url": f"http://gcs.example:{port}"}
        store = GCSStore(StorageSpec("gcs", gcs_bucket.name, params, "/p"), guarded)
        store.check()
        assert lookups == ["127.0.0.1", "127.0.0.1"]
        store.client._http.close()  # the next call needs a new connection
        with pytest.raises(StorageFailure):
            store.check()
        assert "127.0.0.2" in lookups  # the new answer was looked at, and refused
        assert received == []  # nothing reached the other address
