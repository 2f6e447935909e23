"""Long and multibyte upload names, from every way a name arrives: multipart uploads (REST
import and prepare, GraphQL), archive members, URL paths; and GET /data/upload/<name> with a
name longer than the file system's NAME_MAX (a 500 before)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from server.app import create_app
from server.services.imports.staging_dir import safe_name
from server.settings import Settings
from tests.http_fixtures import serve_directory
from tests.rest.test_import_files import set_config, stored_name, tasks, upload, zip_bytes

NAME_MAX = 255
LONG_NAMES = [
    "a" * 300 + ".txt",  # ASCII
    "é" * 300 + ".txt",  # 2-byte UTF-8, decomposes to "e"
    "名" * 300 + ".txt",  # 3-byte UTF-8: 900 bytes, all dropped
    "b" * 250 + "€" * 50 + ".txt",
]


def stored_files(settings: Settings) -> list[Path]:
    return [p for p in settings.upload_dir.rglob("*") if p.is_file()]


def assert_bounded(settings: Settings) -> None:
    for path in stored_files(settings):
        relative = path.relative_to(settings.upload_dir)
        assert all(len(part.encode()) <= NAME_MAX for part in relative.parts), relative
        assert path.suffix == ".txt", relative  # the extension survives: read as a text file


@pytest.fixture
def text_client(client: TestClient) -> TestClient:
    set_config(client, "configs/text_classification.xml")
    return client


@pytest.mark.parametrize("name", LONG_NAMES, ids=["ascii", "2-byte", "3-byte", "mixed"])
def test_long_names_upload_with_their_extension(
    text_client: TestClient, settings: Settings, name: str
) -> None:
    response = text_client.post("/api/project/import", files=[upload(name, content=b"hello\n")])
    assert response.status_code == 201, response.text
    assert response.json()["found_formats"] == {".txt": 1}
    assert tasks(text_client) == [{"text": "hello"}]
    response = text_client.post("/api/project/import/prepare", files=[upload(name, content=b"x\n")])
    assert response.status_code == 201, response.text
    assert_bounded(settings)


def test_long_names_differing_in_their_tails_stay_apart(
    text_client: TestClient, settings: Settings
) -> None:
    names = ["a" * 300 + "-one.txt", "a" * 300 + "-two.txt"]
    files = [upload(name, f"f{i}", b"same\n") for i, name in enumerate(names)]
    response = text_client.post("/api/project/import", files=files)
    assert response.status_code == 201, response.text
    assert len(stored_files(settings)) == 2
    assert_bounded(settings)


def test_graphql_upload_with_a_long_name(text_client: TestClient, settings: Settings) -> None:
    query = "mutation($f: [Upload!]!) { importTasks(files: $f) { taskCount } }"
    operations = {"query": query, "variables": {"f": [None]}}
    response = text_client.post(
        "/graphql",
        headers={"apollo-require-preflight": "true"},
        data={"operations": json.dumps(operations), "map": json.dumps({"0": ["variables.f.0"]})},
        files={"0": ("名" * 300 + ".txt", b"hello\n")},
    )
    assert response.json() == {"data": {"importTasks": {"taskCount": 1}}}
    assert [p.name for p in stored_files(settings)] == [stored_name("file.txt", b"hello\n")]


def test_archive_members_with_long_names(text_client: TestClient, settings: Settings) -> None:
    archive = zip_bytes({"名" * 200 + "/" + name: b"member\n" for name in LONG_NAMES})
    response = text_client.post("/api/project/import", files=[upload("a.zip", content=archive)])
    assert response.status_code == 201, response.text
    assert response.json()["total_tasks"] == len(LONG_NAMES)
    stored = [p for p in stored_files(settings) if p.suffix == ".txt"]
    assert len(stored) == len(LONG_NAMES)  # four names, four files
    assert {p.parent.name for p in stored} == {"file"}


def test_an_overlong_member_path_is_refused(text_client: TestClient, settings: Settings) -> None:
    deep = "/".join(["d" * 200] * 6) + "/a.txt"
    archive = zip_bytes({deep: b"x\n"})
    response = text_client.post("/api/project/import", files=[upload("a.zip", content=archive)])
    assert response.status_code == 422
    assert "is longer than 1024 bytes" in response.json()[0]
    assert tasks(text_client) == []
    assert stored_files(settings) == []


@pytest.fixture
def long_url_file(tmp_path: Path) -> Iterator[tuple[str, str]]:
    root = tmp_path / "web"
    root.mkdir()
    name = "c" * 240 + ".txt"
    (root / name).write_bytes(b"from the web\n")
    with serve_directory(root) as base:
        yield base, name


def test_url_import_of_a_long_path(settings: Settings, long_url_file: tuple[str, str]) -> None:
    base, name = long_url_file
    allowed = dataclasses.replace(settings, url_import_allow_private=True)
    with TestClient(create_app(allowed)) as client:
        set_config(client, "configs/text_classification.xml")
        response = client.post("/api/project/import", data={"url": f"{base}/{name}"})
        assert response.status_code == 201, response.text
        assert tasks(client) == [{"text": "from the web"}]
    assert_bounded(allowed)


@pytest.mark.parametrize(
    "name", ["a" * 300, "a" * 300 + "/b.txt", "d/" + "é" * 200, "/".join(["d" * 200] * 30)]
)
def test_serving_a_name_too_long_for_the_file_system_is_404(client: TestClient, name: str) -> None:
    response = client.get(f"/data/upload/{name}")
    assert (response.status_code, response.json()) == (
        404,
        {"status": 404, "detail": f"File upload/{name} not found"},
    )


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("名前.txt", "file.txt"),
        ("名前.tar.gz", "tar.gz"),
        ("a" * 300 + ".TXT", "a" * 187 + "-" + "{hash}" + ".TXT"),
    ],
)
def test_safe_names_keep_their_extension(raw: str, safe: str) -> None:
    result = safe_name(raw)
    if "{hash}" in safe:
        start, end = safe.split("{hash}")
        assert result.startswith(start) and result.endswith(end)
        assert len(result) == 200
    else:
        assert result == safe
