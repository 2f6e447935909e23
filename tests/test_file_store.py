"""The S3 file store: two "hosts" (separate project directories, one database, one bucket on a
local moto server) serve each other's uploads and exports through presigned URLs."""

from __future__ import annotations

import contextlib
import io
import json
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from starlette.testclient import TestClient

from server.app import create_app
from server.services.files.store import ProjectDirectoryStore, file_store
from server.settings import Settings
from tests.conftest import FIXTURES, IN_PROCESS_HOSTS, TEST_DATABASE_URL, _reset_postgres
from tests.storage_fixtures import S3_CREDENTIALS, Bucket

JOB = "query Job($id: Int!) { job(id: $id) { state export { url } } }"


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3's usual chain reads the moto server's credentials from the environment."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_CREDENTIALS["aws_secret_access_key"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@contextlib.contextmanager
def two_hosts(tmp_path: Path, bucket: Bucket) -> Iterator[tuple[TestClient, TestClient]]:
    if TEST_DATABASE_URL:
        _reset_postgres(TEST_DATABASE_URL)
    database = TEST_DATABASE_URL or f"sqlite:///{tmp_path / 'shared.db'}"
    with contextlib.ExitStack() as stack:
        clients = []
        for host in ("host-a", "host-b"):
            settings = Settings.from_env(
                {},
                project_dir=str(tmp_path / host / "labels"),
                database_url=database,
                allowed_hosts=IN_PROCESS_HOSTS,
                file_store=f"s3://{bucket.name}/files",
                file_store_endpoint=bucket.endpoint,
            )
            clients.append(stack.enter_context(TestClient(create_app(settings))))
        yield clients[0], clients[1]


def _fetch(client: TestClient, url: str) -> httpx.Response | httpx2.Response:
    """GET a file route; a redirect to the store is followed outside the app."""
    response = client.get(url, follow_redirects=False)
    if response.status_code == 302:
        endpoint = client.app.state.settings.file_store_endpoint  # type: ignore[attr-defined]
        assert response.headers["location"].startswith(endpoint)
        return httpx.get(response.headers["location"], timeout=10)
    return response


def test_an_upload_through_one_process_is_served_by_another(
    tmp_path: Path, s3_bucket: Bucket, aws_credentials: None
) -> None:
    image = (FIXTURES / "imports" / "red.png").read_bytes()
    with two_hosts(tmp_path, s3_bucket) as (a, b):
        response = a.post("/api/project/import", files=[("file", ("red.png", image, "image/png"))])
        assert response.status_code == 201, response.text
        url = response.json()["task_preview"][0]["$undefined$"]
        name = url.removeprefix("/data/upload/")
        assert s3_bucket.keys("files/labels/upload/") == [f"files/labels/upload/{name}"]
        served = b.get(url, follow_redirects=False)
        assert served.status_code == 302
        assert _fetch(b, url).content == image
        assert a.get(url).content == image  # the importing process serves its own copy
        assert b.get("/data/upload/nothing.png").status_code == 404
        assert b.get("/data/upload/../labelgraph.db").status_code == 404


def test_an_export_made_by_one_process_is_served_by_another(
    tmp_path: Path, s3_bucket: Bucket, aws_credentials: None
) -> None:
    with two_hosts(tmp_path, s3_bucket) as (a, b):
        config = (FIXTURES / "configs/sentiment.xml").read_text(encoding="utf-8")
        assert a.post("/api/project/config", data={"label_config": config}).is_success
        tasks = json.loads((FIXTURES / "tasks/sentiment_mixed.json").read_text(encoding="utf-8"))
        assert a.post("/api/project/import", json=tasks).status_code == 201
        start = {"query": 'mutation { startExport(format: "JSON") { id } }'}
        job_id = a.post("/graphql", json=start).json()["data"]["startExport"]["id"]
        deadline = time.monotonic() + 30
        while True:
            job: dict[str, Any] = b.post(
                "/graphql", json={"query": JOB, "variables": {"id": job_id}}
            ).json()["data"]["job"]
            if job["state"] == "DONE":
                break
            assert time.monotonic() < deadline, job
            time.sleep(0.05)
        url = job["export"]["url"]
        for host in (a, b):  # one made it, the other has no copy: both answer
            response = _fetch(host, url)
            assert response.status_code == 200
            with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
                assert len(json.loads(archive.read("result.json"))) == 1
        assert (
            b.get("/data/export/2020-01-01-00-00-00-JSON-0123456789abcdef.zip").status_code == 404
        )


def test_a_media_export_by_another_process_includes_the_uploaded_image(
    tmp_path: Path, s3_bucket: Bucket, aws_credentials: None
) -> None:
    image = (FIXTURES / "imports" / "red.png").read_bytes()
    with two_hosts(tmp_path, s3_bucket) as (a, b):
        config = (FIXTURES / "configs/image_bbox.xml").read_text(encoding="utf-8")
        assert a.post("/api/project/config", data={"label_config": config}).is_success
        response = a.post("/api/project/import", files=[("file", ("red.png", image, "image/png"))])
        assert response.status_code == 201, response.text
        name = a.get("/api/tasks/1").json()["data"]["image"].removeprefix("/data/upload/")
        box = {"x": 10, "y": 10, "width": 50, "height": 50, "rotation": 0}
        result = [
            {
                "id": "r1",
                "from_name": "label",
                "to_name": "image",
                "type": "rectanglelabels",
                "original_width": 4,
                "original_height": 4,
                "value": {**box, "rectanglelabels": ["Car"]},
            }
        ]
        assert a.post("/api/tasks/1/completions", json={"result": result}).status_code == 201
        # Host b never received the upload: its export fetches it from the store.
        assert not (tmp_path / "host-b" / "labels" / "upload" / name).exists()
        response = b.get("/api/project/export?format=COCO")
        assert response.status_code == 200, response.text
        with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
            assert archive.read(f"images/{name}") == image
            coco = json.loads(archive.read("result.json"))
        assert [i["file_name"] for i in coco["images"]] == [f"images/{name}"]


def test_the_default_store_is_the_project_directory() -> None:
    assert isinstance(file_store(""), ProjectDirectoryStore)
    with pytest.raises(ValueError, match="s3://bucket"):
        Settings.from_env({}, file_store="ftp://elsewhere")


def test_an_import_prepared_by_one_process_is_applied_by_another(
    tmp_path: Path, s3_bucket: Bucket, aws_credentials: None
) -> None:
    image = (FIXTURES / "imports" / "red.png").read_bytes()
    with two_hosts(tmp_path, s3_bucket) as (a, b):
        files = [("file", ("red.png", image, "image/png"))]
        prepared = a.post("/api/project/import/prepare", files=files)
        assert prepared.status_code == 201, prepared.text
        import_id = prepared.json()["id"]
        json_prepared = a.post("/api/project/import/prepare", json=[{"image": "x.png"}])
        json_id = json_prepared.json()["id"]
        applied = b.post(f"/api/project/import/{import_id}/apply")
        assert applied.status_code == 201, applied.text
        [task_id] = applied.json()["new_task_ids"]
        url = b.get(f"/api/tasks/{task_id}").json()["data"]["image"]
        assert b.get(url).content == image  # b stored it: its own copy
        assert _fetch(a, url).content == image
        applied = b.post(f"/api/project/import/{json_id}/apply")
        assert applied.status_code == 201, applied.text
        assert b.get("/api/tasks").json()["total"] == 2


def test_the_shared_copies_of_applied_expired_and_stray_imports_and_old_exports_are_deleted(
    tmp_path: Path, s3_bucket: Bucket, aws_credentials: None
) -> None:
    from server.services.files.expiry import GRACE, sweep_shared_exports, sweep_shared_staging
    from server.services.jobs.handlers import sweep_shared_files

    image = (FIXTURES / "imports" / "red.png").read_bytes()
    with two_hosts(tmp_path, s3_bucket) as (a, b):
        project = a.get("/api/project").json()["project_name"]
        area = f"files/{project}"
        kept = a.post("/api/project/import/prepare", json=[{"image": "kept.png"}]).json()["id"]
        files = [("file", ("red.png", image, "image/png"))]
        applied = a.post("/api/project/import/prepare", files=files).json()["id"]
        staged_dirs = {k.split("/")[3] for k in s3_bucket.keys(f"{area}/import/")}
        assert len(staged_dirs) == 2
        assert b.post(f"/api/project/import/{applied}/apply").status_code == 201
        [kept_dir] = {k.split("/")[3] for k in s3_bucket.keys(f"{area}/import/")}
        s3_bucket.put(f"{area}/import/died-before-its-row/tasks.json", "[]")  # a stray
        start = {"query": 'mutation { startExport(format: "JSON") { id } }'}
        job_id = a.post("/graphql", json=start).json()["data"]["startExport"]["id"]
        deadline = time.monotonic() + 30
        while (
            b.post("/graphql", json={"query": JOB, "variables": {"id": job_id}}).json()["data"][
                "job"
            ]["state"]
            != "DONE"
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        [export_key] = s3_bucket.keys(f"{area}/export/")

        settings = a.app.state.settings  # type: ignore[attr-defined]
        sweep_shared_files(settings)  # nothing is old yet: everything stays
        assert s3_bucket.keys(f"{area}/export/") == [export_key]
        assert len(s3_bucket.keys(f"{area}/import/")) == 2

        store = file_store(settings.file_store, settings.file_store_endpoint)
        later = time.time() + GRACE + 1
        pid = a.post("/graphql", json={"query": "{ project { id } }"}).json()["data"]["project"][
            "id"
        ]
        from server.db import with_connection

        assert with_connection(sweep_shared_staging, store, project, pid, later) == 1
        assert {k.split("/")[3] for k in s3_bucket.keys(f"{area}/import/")} == {kept_dir}
        assert a.post(f"/api/project/import/{kept}/apply").status_code == 201
        assert not s3_bucket.keys(f"{area}/import/")
        assert sweep_shared_exports(store, project, settings.export_ttl, later) == 0
        expired = time.time() + settings.export_ttl + 1
        assert sweep_shared_exports(store, project, settings.export_ttl, expired) == 1
        assert not s3_bucket.keys(f"{area}/export/")
        assert s3_bucket.keys(f"{area}/upload/")  # uploads are never expired
