"""S3 storages against a real S3 server (moto's, a process on 127.0.0.1): source sync of blob
URLs and JSON tasks, target writes of completions, presigned URLs, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from starlette.testclient import TestClient

from server.settings import Settings
from tests.choices import choice_result
from tests.conftest import fixture_text
from tests.storage_fixtures import S3_CREDENTIALS, Bucket

RESULT = choice_result("Positive")


def configure(client: TestClient, role: str, type_name: str, body: dict[str, Any]) -> Any:
    return client.post(
        "/api/project/storage-settings",
        params={"storage_for": role, "type": type_name},
        json={"type": type_name, **body},
    )


def idle(client: TestClient) -> None:
    assert client.app.state.storage.wait_idle(30)  # type: ignore[attr-defined]


def set_config(client: TestClient, name: str) -> None:
    response = client.post("/api/project/config", data={"label_config": fixture_text(name)})
    assert response.status_code == 201, response.text


def test_source_sync_of_blob_urls_with_presigned_urls(
    client: TestClient, s3_bucket: Bucket
) -> None:
    set_config(client, "configs/image_bbox.xml")
    s3_bucket.put("images/1.jpg", b"first image")
    s3_bucket.put("images/2.jpg", b"second image")
    s3_bucket.put("images/notes.txt", b"not matched by the regex")
    s3_bucket.put("images/deeper/3.jpg", b"below the prefix's level")
    s3_bucket.put("other/4.jpg", b"outside the prefix")
    body = s3_bucket.settings(prefix="images", regex=r".*\.jpg$", use_blob_urls=True)
    response = configure(client, "source", "s3", body)
    assert response.status_code == 201, response.text
    assert response.json() == {"result": "ok"}
    idle(client)

    page = client.get("/api/tasks").json()
    assert page["total"] == 2
    urls = [task["data"]["image"] for task in page["tasks"]]
    for url, content in zip(urls, (b"first image", b"second image"), strict=True):
        assert url.startswith(f"{s3_bucket.endpoint}/{s3_bucket.name}/images/")
        assert "X-Amz-Signature=" in url and "X-Amz-Expires=3600" in url
        assert httpx.get(url).content == content
    next_task = client.get("/api/project/next").json()
    assert "X-Amz-Signature=" in next_task["data"]["image"]
    one = client.get(f"/api/tasks/{page['tasks'][0]['id']}").json()
    assert "X-Amz-Signature=" in one["data"]["image"]
    query = (
        "{ project { tasks(first: 5) { nodes { data } } "
        "sourceStorage { syncing syncedAt lastError } } }"
    )
    data = client.post("/graphql", json={"query": query}).json()["data"]["project"]
    assert [n["data"]["image"] for n in data["tasks"]["nodes"]] == [
        f"s3://{s3_bucket.name}/images/1.jpg",
        f"s3://{s3_bucket.name}/images/2.jpg",
    ]
    assert data["sourceStorage"]["syncing"] is False
    assert data["sourceStorage"]["syncedAt"] is not None
    assert data["sourceStorage"]["lastError"] is None

    project = client.get("/api/project")
    assert S3_CREDENTIALS["aws_secret_access_key"] not in project.text
    assert S3_CREDENTIALS["aws_access_key_id"] not in project.text
    body = project.json()
    assert body["source_storage"] == {"readable_path": f"s3://{s3_bucket.name}/images"}
    assert body["source_syncing"] is False and body["can_manage_tasks"] is True
    source = body["config"]["source"]
    assert source["name"] == "source" and source["type"] == "s3"
    assert source["path"] == s3_bucket.name
    assert source["params"]["aws_secret_access_key"] == "********"
    assert source["params"]["regex"] == r".*\.jpg$"

    # A new object is synced on the next sync; known ones are not synced again.
    s3_bucket.put("images/5.jpg", b"fifth")
    ids = [task["id"] for task in page["tasks"]]
    client.post("/graphql", json={"query": "mutation { syncStorage { type } }"})
    idle(client)
    again = client.get("/api/tasks").json()["tasks"]
    assert [t["id"] for t in again][:2] == ids and len(again) == 3
    assert again[2]["data"]["image"].split("?")[0].endswith("/images/5.jpg")


def test_source_sync_of_json_tasks_skips_invalid_objects(
    client: TestClient, s3_bucket: Bucket
) -> None:
    set_config(client, "configs/sentiment.xml")
    s3_bucket.put("tasks/a.json", json.dumps({"text": "bare task"}))
    s3_bucket.put(
        "tasks/b.json", json.dumps([{"data": {"text": "one-item list"}, "meta": {"m": 1}}])
    )
    s3_bucket.put(
        "tasks/c.json",
        json.dumps({"data": {"text": "labeled"}, "completions": [{"result": RESULT}]}),
    )
    s3_bucket.put("tasks/d.json", json.dumps({"other": "no text key"}))
    s3_bucket.put("tasks/e.json", "not json")
    s3_bucket.put("tasks/f.json", '{"text": "big", "n": 123456789012345678901234}')
    s3_bucket.put("tasks/g.json", '{"text": "nan", "n": NaN}')
    body = s3_bucket.settings(prefix="tasks/", regex=".*", use_blob_urls=False)
    assert configure(client, "source", "s3", body).status_code == 201
    idle(client)
    page = client.get("/api/tasks").json()
    texts = [t["data"]["text"] for t in page["tasks"]]
    assert texts == ["bare task", "one-item list", "labeled", "big"]
    assert page["tasks"][1]["meta"] == {"m": 1}
    big = client.get(f"/api/tasks/{page['tasks'][3]['id']}")
    assert b'"n":123456789012345678901234' in big.content.replace(b" ", b"")  # not a float
    assert page["total_completions"] == 1
    query = "{ project { sourceStorage { lastError syncedAt } } }"
    state = client.post("/graphql", json={"query": query}).json()["data"]["project"]
    error = state["sourceStorage"]["lastError"]
    assert error.startswith("3 objects skipped: ")
    assert 'tasks/d.json :: "text" key is expected in task data' in error
    assert "tasks/e.json :: not a JSON task" in error
    assert "tasks/g.json :: " in error and "NaN" in error
    assert state["sourceStorage"]["syncedAt"] is not None


def test_an_empty_regex_syncs_nothing(client: TestClient, s3_bucket: Bucket) -> None:
    s3_bucket.put("x.json", json.dumps({"text": "t"}))
    assert (
        configure(client, "source", "s3", s3_bucket.settings(use_blob_urls=False)).status_code
        == 201
    )
    idle(client)
    assert client.get("/api/tasks").json()["total"] == 0


def test_target_writes_completions_documents(
    client: TestClient, settings: Settings, s3_bucket: Bucket
) -> None:
    set_config(client, "configs/sentiment.xml")
    client.post("/api/project/import", json=[{"text": "one"}, {"text": "two"}, {"text": "three"}])
    first, second, third = [t["id"] for t in client.get("/api/tasks").json()["tasks"]]
    client.post(f"/api/tasks/{first}/completions", json={"result": RESULT, "lead_time": 2})
    body = s3_bucket.settings(prefix="done")
    response = configure(client, "target", "s3-completions", body)
    assert response.status_code == 201, response.text
    idle(client)  # existing completions are written when the target is set
    assert s3_bucket.keys() == [f"done/{first}"]

    created = client.post(f"/api/tasks/{second}/completions", json={"result": RESULT})
    assert created.status_code == 201
    idle(client)
    assert s3_bucket.keys() == sorted([f"done/{first}", f"done/{second}"])
    document = json.loads(s3_bucket.read(f"done/{second}"))
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
    client.patch(f"/api/tasks/{second}/completions/{cid}", json={"lead_time": 9})
    idle(client)
    assert json.loads(s3_bucket.read(f"done/{second}"))["completions"][0]["lead_time"] == 9

    assert client.delete(f"/api/tasks/{second}/completions/{cid}").status_code == 204
    client.delete(f"/api/tasks/{first}")
    idle(client)
    assert s3_bucket.keys() == []
    assert not local.exists()
    target = client.get("/api/project").json()
    assert target["target_storage"] == {"readable_path": f"s3://{s3_bucket.name}/done"}
    assert target["config"]["target"]["type"] == "s3-completions"
    assert target["config"]["target"]["params"]["create_local_copy"] is True
    assert target["target_syncing"] is False
    del third


def test_a_failing_target_never_fails_the_completion(client: TestClient, s3_bucket: Bucket) -> None:
    client.post("/api/project/import", json=[{"text": "one"}])
    task_id = client.get("/api/tasks").json()["tasks"][0]["id"]
    assert configure(client, "target", "s3-completions", s3_bucket.settings()).status_code == 201
    idle(client)
    s3_bucket.client.delete_bucket(Bucket=s3_bucket.name)
    response = client.post(f"/api/tasks/{task_id}/completions", json={"result": []})
    assert response.status_code == 201
    idle(client)
    query = "{ project { targetStorage { syncing lastError errorAt } } }"
    state = client.post("/graphql", json={"query": query}).json()["data"]["project"]
    assert "NoSuchBucket" in state["targetStorage"]["lastError"]
    assert state["targetStorage"]["errorAt"] is not None


def test_unreachable_buckets_are_refused(client: TestClient, s3_bucket: Bucket) -> None:
    body = s3_bucket.settings()
    body["path"] = "no-such-bucket"
    response = configure(client, "source", "s3", body)
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert detail.startswith("Error while storage update: S3 bucket no-such-bucket")
    assert S3_CREDENTIALS["aws_secret_access_key"] not in response.text
    settings = client.get("/api/project/storage-settings").json()
    assert settings["source"]["tasks-json"]["current"] is True
    assert settings["source"]["s3"]["current"] is False


def test_presigning_uses_the_target_when_the_source_is_local(
    client: TestClient, s3_bucket: Bucket
) -> None:
    set_config(client, "configs/image_bbox.xml")
    s3_bucket.put("pics/a.png", b"png bytes")
    uri = f"s3://{s3_bucket.name}/pics/a.png"
    client.post("/api/project/import", json=[{"image": uri}, {"image": "http://example.org/b.png"}])
    before = client.get("/api/tasks").json()["tasks"]
    assert before[0]["data"]["image"] == uri  # no S3 storage: served as stored
    body = s3_bucket.settings(create_local_copy=False, presign=True)
    assert configure(client, "target", "s3-completions", body).status_code == 201
    tasks = client.get("/api/tasks").json()["tasks"]
    assert httpx.get(tasks[0]["data"]["image"]).content == b"png bytes"
    assert tasks[1]["data"]["image"] == "http://example.org/b.png"
    body["presign"] = False
    assert configure(client, "target", "s3-completions", body).status_code == 201
    assert client.get("/api/tasks").json()["tasks"][0]["data"]["image"] == uri
