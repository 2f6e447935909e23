"""POST /api/project/import with uploads, archives and URLs; GET /data/upload/<name>."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from server.app import create_app
from server.settings import Settings
from tests.conftest import FIXTURES, fixture_text
from tests.http_fixtures import serve_directory

IMPORTS = FIXTURES / "imports"


def upload(name: str, field: str = "FileUpload", content: bytes | None = None) -> Any:
    data = (IMPORTS / name).read_bytes() if content is None else content
    return (field, (name, data))


def stored_name(name: str, content: bytes | None = None) -> str:
    data = (IMPORTS / name).read_bytes() if content is None else content
    return hashlib.md5(data).hexdigest()[:6] + "-" + name


def set_config(client: TestClient, name: str) -> None:
    response = client.post("/api/project/config", data={"label_config": fixture_text(name)})
    assert response.status_code == 201, response.text


def tasks(client: TestClient) -> list[dict[str, Any]]:
    return [t["data"] for t in client.get("/api/tasks?page_size=1000").json()["tasks"]]


def upload_files(settings: Settings) -> list[str]:
    root = settings.upload_dir
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def zip_bytes(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16) | 0
            archive.writestr(info, target)
    return buffer.getvalue()


@pytest.fixture
def text_project(client: TestClient) -> TestClient:
    set_config(client, "configs/text_classification.xml")
    return client


# --------------------------------------------------------------------------- formats


def test_image_upload_hosts_the_file_and_configures_an_empty_project(
    client: TestClient, settings: Settings
) -> None:
    response = client.post("/api/project/import", files=[upload("red.png")])
    assert response.status_code == 201, response.text
    report = response.json()
    name = stored_name("red.png")
    assert report["task_preview"] == [{"$undefined$": f"/data/upload/{name}"}]
    assert report["found_formats"] == report["formats"] == {".png": 1}
    assert report["selected_formats"] == [".png"]
    assert report["selected_objects"] == ["Image"]
    assert report["show_files_as_tasks_list"] is False
    assert report["total_tasks"] == report["task_count"] == 1
    config = client.get("/api/project").json()["label_config_line"]
    assert config == '<View><Image name="image" value="$image"/></View>'
    assert tasks(client) == [{"image": f"/data/upload/{name}"}]
    served = client.get(f"/data/upload/{name}")
    assert served.status_code == 200
    assert served.content == (IMPORTS / "red.png").read_bytes()
    assert served.headers["content-type"] == "image/png"
    assert served.headers["content-disposition"] == f'attachment; filename="{name}"'
    assert upload_files(settings) == [name]
    assert list(settings.import_tmp_dir.iterdir()) == []


def test_missing_upload_is_a_json_404(client: TestClient) -> None:
    response = client.get("/data/upload/nothing.png")
    assert response.status_code == 404
    assert response.json() == {"status": 404, "detail": "File upload/nothing.png not found"}


def test_csv_typed_as_pandas_did(text_project: TestClient) -> None:
    response = text_project.post("/api/project/import", files=[upload("reviews.csv")])
    assert response.status_code == 201, response.text
    assert tasks(text_project) == [
        {"text": "Great product", "score": 0.9, "rank": 1},
        {"text": "Terrible, never again", "score": "", "rank": 2},
        {"text": "Okay", "score": 0.5, "rank": 3},
    ]
    report = response.json()
    assert report["selected_objects"] == [None]
    assert report["show_files_as_tasks_list"] is True


def test_tsv_txt_html_and_json_files(text_project: TestClient) -> None:
    client = text_project
    for name in ("reviews.tsv", "lines.txt", "page.html", "tasks.json"):
        response = client.post("/api/project/import", files=[upload(name)])
        assert response.status_code == 201, (name, response.text)
        client.delete("/api/tasks")
    # Each import replaced the project's tasks: check the last one, then each again.
    client.post("/api/project/import", files=[upload("reviews.tsv")])
    assert tasks(client) == [
        {"text": "first tab line", "score": 1},
        {"text": "second tab line", "score": 2},
    ]
    client.delete("/api/tasks")
    client.post("/api/project/import", files=[upload("lines.txt")])
    assert tasks(client) == [
        {"text": "line one"},
        {"text": "line two"},
        {"text": ""},
        {"text": "line four"},
    ]
    client.delete("/api/tasks")
    client.post("/api/project/import", files=[upload("page.html")])
    assert tasks(client) == [
        {"text": "<html><body><h1> Title here </h1><p>Some text</p></body></html>"}
    ]
    client.delete("/api/tasks")
    report = client.post("/api/project/import", files=[upload("tasks.json")]).json()
    assert report["total_completions"] == 1 and report["total_predictions"] == 1
    assert report["task_preview"][2]["completions"][0]["lead_time"] == 2
    assert tasks(client) == [
        {"text": "bare item"},
        {"text": "wrapped item"},
        {"text": "labeled item"},
    ]


def test_several_files_any_field_names(text_project: TestClient, settings: Settings) -> None:
    response = text_project.post(
        "/api/project/import",
        files=[upload("lines.txt", "first"), upload("more.txt", "whatever", b"x\ny\n")],
    )
    assert response.status_code == 201, response.text
    assert response.json()["found_formats"] == {".txt": 2}
    assert [t["text"] for t in tasks(text_project)] == [
        "line one",
        "line two",
        "",
        "line four",
        "x",
        "y",
    ]
    assert upload_files(settings) == sorted(
        [stored_name("lines.txt"), stored_name("more.txt", b"x\ny\n")]
    )
    response = text_project.post(
        "/api/project/import",
        files=[upload("lines.txt"), upload("other.csv", content=b"text,extra\na,b\n")],
    )
    assert response.status_code == 422
    assert response.json()[0].startswith("You're trying to import inconsistent data:\n")


def test_single_file_values_go_to_the_config_data_key(client: TestClient) -> None:
    set_config(client, "configs/image_bbox.xml")
    response = client.post("/api/project/import", files=[upload("page.html")])
    assert response.status_code == 201, response.text
    assert tasks(client)[0]["image"].startswith("<html><body>")
    client.delete("/api/tasks")
    set_config(client, "configs/sentiment.xml")
    assert client.post("/api/project/import", files=[upload("red.png")]).status_code == 201
    assert tasks(client) == [{"text": f"/data/upload/{stored_name('red.png')}"}]


def test_media_file_with_two_data_keys_is_refused(client: TestClient) -> None:
    config = (
        '<View><Image name="a" value="$a"/><Image name="b" value="$b"/>'
        '<Choices name="c" toName="a"><Choice value="x"/></Choices></View>'
    )
    assert client.post("/api/project/config", data={"label_config": config}).status_code == 201
    response = client.post("/api/project/import", files=[upload("red.png")])
    assert response.status_code == 422
    assert response.json() == [
        f"Failed to parse input file {stored_name('red.png')}: Your label config has more than "
        "one data keys, direct file upload supports only one data key. To import data with "
        "multiple data keys use JSON or CSV"
    ]


def test_columns_must_match_the_project(text_project: TestClient) -> None:
    text_project.post("/api/project/import", files=[upload("reviews.csv")])
    response = text_project.post(
        "/api/project/import", files=[upload("b.csv", content=b"text,other\nx,y\n")]
    )
    assert response.status_code == 422
    assert response.json() == [
        "Import data inconsistent with current project:\nImported column names other,text\n"
        "are inconsistent with common columns found in dataset: rank,score,text"
    ]


# --------------------------------------------------------------------------- atomicity


def test_one_bad_file_stores_nothing_and_leaves_no_upload(
    text_project: TestClient, settings: Settings
) -> None:
    bad = b"fine\n\xff\xfe\n"
    response = text_project.post(
        "/api/project/import",
        files=[upload("lines.txt"), upload("red.png"), upload("bad.txt", content=bad)],
    )
    assert response.status_code == 422
    assert response.json() == [
        f"Failed to parse input file {stored_name('bad.txt', bad)}: 'utf-8' codec can't decode "
        "byte 0xff in position 5: invalid start byte"
    ]
    broken = b'[{"text": "a"}, {"text": '
    response = text_project.post(
        "/api/project/import",
        files=[upload("good.json", content=b'[{"text": "b"}]'), upload("x.json", content=broken)],
    )
    assert response.status_code == 422
    assert response.json() == [
        f"Failed to parse input file {stored_name('x.json', broken)}: parse error: premature EOF"
    ]
    assert tasks(text_project) == []
    assert text_project.get("/api/project").json()["task_count"] == 0
    assert upload_files(settings) == []
    assert list(settings.import_tmp_dir.iterdir()) == []


def test_invalid_rows_collect_messages_and_store_nothing(text_project: TestClient) -> None:
    rows = b"text\n" + b"".join(b"row %d\n" % i for i in range(5000))
    good = text_project.post("/api/project/import", files=[upload("many.csv", content=rows)]).json()
    assert good["total_tasks"] == 5000
    bad_rows = [{"text": f"t{i}"} for i in range(4000)] + [{"other": 1}] * 150
    response = text_project.post("/api/project/import", json=bad_rows)
    assert response.status_code == 422
    messages = response.json()
    assert len(messages) == 100
    assert messages[0].startswith('Error   at item 4000: "text" key is expected in task data')
    project = text_project.get("/api/project").json()
    assert project["task_count"] == 5000


# --------------------------------------------------------------------------- archives


def test_zip_members_are_read_by_extension(client: TestClient, settings: Settings) -> None:
    set_config(client, "configs/image_bbox.xml")
    png = (IMPORTS / "red.png").read_bytes()
    archive = zip_bytes(
        {
            "images/a.png": png,
            "images/b b.png": png,
            "__MACOSX/images/._a.png": b"junk",
            "images/.hidden.png": png,
        }
    )
    response = client.post("/api/project/import", files=[upload("pics.zip", content=archive)])
    assert response.status_code == 201, response.text
    assert response.json()["found_formats"] == {".png": 2}
    # Members get the hash prefix of single uploads, in their folders.
    a_png, b_png = "images/" + stored_name("a.png", png), "images/" + stored_name("b_b.png", png)
    assert tasks(client) == [{"image": f"/data/upload/{a_png}"}, {"image": f"/data/upload/{b_png}"}]
    assert client.get(f"/data/upload/{b_png}").content == png
    assert upload_files(settings) == sorted([a_png, b_png, stored_name("pics.zip", archive)])


@pytest.mark.parametrize(
    ("members", "links", "reason"),
    [
        ({"../evil.txt": b"x"}, None, "unsafe member path '../evil.txt' leaves the archive"),
        ({"ok/../../evil.txt": b"x"}, None, "leaves the archive"),
        ({"/etc/evil.txt": b"x"}, None, "unsafe absolute member path '/etc/evil.txt'"),
        ({"a.txt": b"x"}, {"link.txt": "/etc/passwd"}, "member 'link.txt' is a link"),
    ],
)
def test_archive_traversal_and_links_are_refused(
    text_project: TestClient,
    settings: Settings,
    tmp_path: Path,
    members: dict[str, bytes],
    links: dict[str, str] | None,
    reason: str,
) -> None:
    archive = zip_bytes(members, links)
    response = text_project.post("/api/project/import", files=[upload("a.zip", content=archive)])
    assert response.status_code == 422
    assert reason in response.json()[0]
    assert upload_files(settings) == []
    assert not (settings.upload_dir.parent / "evil.txt").exists()
    assert tasks(text_project) == []


def test_archive_bombs_are_stopped(text_project: TestClient, settings: Settings) -> None:
    small = dataclasses.replace(settings, max_archive_members=3, max_archive_size=10_000)
    with TestClient(create_app(small)) as client:
        many = zip_bytes({f"{i}.txt": b"x" for i in range(4)})
        response = client.post("/api/project/import", files=[upload("m.zip", content=many)])
        assert response.status_code == 413
        assert "more than the limit of 3" in response.json()[0]
        big = zip_bytes({"big.txt": b"0" * 50_000})
        response = client.post("/api/project/import", files=[upload("b.zip", content=big)])
        assert response.status_code == 413
        assert "unpacks to more than 10000 bytes" in response.json()[0]
        assert upload_files(small) == []


def test_archive_directory_entries_count_toward_the_member_limit(settings: Settings) -> None:
    small = dataclasses.replace(settings, max_archive_members=3)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as out:
        for name in ("a/", "a/b/", "a/b/c/"):
            out.writestr(zipfile.ZipInfo(name), b"")
        out.writestr("a/b/c/one.txt", b"one\n")
    with TestClient(create_app(small)) as client:
        response = client.post(
            "/api/project/import", files=[upload("d.zip", content=archive.getvalue())]
        )
        assert (response.status_code, response.json()) == (
            413,
            [
                f"Failed to parse input file {stored_name('d.zip', archive.getvalue())}: the "
                "archive has 4 entries, more than the limit of 3"
            ],
        )
        assert upload_files(small) == []
        assert client.get("/api/tasks").json()["total"] == 0


def test_upload_names_cannot_leave_upload(text_project: TestClient, settings: Settings) -> None:
    response = text_project.post(
        "/api/project/import", files=[upload("../../escape.txt", content=b"hello\n")]
    )
    assert response.status_code == 201
    assert upload_files(settings) == [stored_name("escape.txt", b"hello\n")]
    (settings.upload_dir.parent / "secret.txt").write_text("secret")
    for path in ("../secret.txt", "..%2Fsecret.txt", "%2e%2e/secret.txt", ".hidden"):
        assert text_project.get(f"/data/upload/{path}").status_code == 404


# --------------------------------------------------------------------------- limits and errors


def test_limits_answer_413_and_400(settings: Settings) -> None:
    small = dataclasses.replace(settings, max_upload_files=2, max_import_tasks=3)
    with TestClient(create_app(small)) as client:
        files = [upload(f"{i}.txt", "f", b"x\n") for i in range(3)]
        response = client.post("/api/project/import", files=files)
        assert response.status_code == 400
        assert response.json() == [
            "Too many files: at most 2 in one request (LABELGRAPH_MAX_UPLOAD_FILES)"
        ]
        response = client.post("/api/project/import", json=[{"t": i} for i in range(4)])
        assert response.status_code == 413
        assert response.json()[0].startswith("Too many tasks: one import may create at most 3")
        response = client.post("/api/project/import", files=[upload("lines.txt")])
        assert response.status_code == 413
        assert client.get("/api/project").json()["task_count"] == 0


def test_oversized_upload_is_413_and_leaves_nothing(settings: Settings) -> None:
    small = dataclasses.replace(settings, max_body_size=2000)
    with TestClient(create_app(small)) as client:
        response = client.post(
            "/api/project/import", files=[upload("big.txt", content=b"line\n" * 1000)]
        )
        assert response.status_code == 413
        assert response.json()["detail"].startswith("Request body is larger than the limit")
        assert client.get("/api/project").json()["task_count"] == 0
        assert upload_files(small) == []


def test_archive_with_many_members(text_project: TestClient, settings: Settings) -> None:
    archive = zip_bytes({f"lines/{i}.txt": b"line %d\n" % i for i in range(1200)})
    response = text_project.post("/api/project/import", files=[upload("m.zip", content=archive)])
    assert response.status_code == 201, response.text
    assert response.json()["total_tasks"] == 1200
    assert len(upload_files(settings)) == 1201


def test_request_without_data(client: TestClient) -> None:
    response = client.post(
        "/api/project/import", content=b"x", headers={"content-type": "text/plain"}
    )
    assert response.status_code == 422
    assert response.json() == ["load_tasks: No data found in values or in files"]
    response = client.post("/api/project/import", files={"url": (None, "")})
    assert response.status_code == 422
    response = client.post("/api/project/import", data={"other": "1"})
    assert response.status_code == 422
    assert response.json() == ["No URL to import: send it in the form field url"]


def test_empty_file_is_data_is_empty(text_project: TestClient) -> None:
    response = text_project.post("/api/project/import", files=[upload("e.json", content=b"[]")])
    assert response.status_code == 400
    assert response.json() == ["data is empty"]


# --------------------------------------------------------------------------- URL imports


@pytest.fixture
def web_files(tmp_path: Path) -> Iterator[str]:
    root = tmp_path / "web"
    root.mkdir()
    (root / "tasks.csv").write_bytes(b"text\nfrom the web\nsecond\n")
    with serve_directory(root) as base:
        yield base


def test_url_import_is_refused_for_loopback_by_default(
    text_project: TestClient, web_files: str, settings: Settings
) -> None:
    response = text_project.post("/api/project/import", data={"url": f"{web_files}/tasks.csv"})
    assert response.status_code == 422
    message = response.json()[0]
    assert "not allowed" in message and "127.0.0.1" in message
    assert tasks(text_project) == []
    assert upload_files(settings) == []


def test_url_import_when_private_addresses_are_allowed(settings: Settings, web_files: str) -> None:
    allowed = dataclasses.replace(settings, url_import_allow_private=True)
    with TestClient(create_app(allowed)) as client:
        set_config(client, "configs/text_classification.xml")
        url = f"{web_files}/tasks.csv"
        response = client.post("/api/project/import", data={"url": url})
        assert response.status_code == 201, response.text
        assert tasks(client) == [{"text": "from the web"}, {"text": "second"}]
        name = url.replace("://", "_").replace(":", "").replace("/", "_")
        content = b"text\nfrom the web\nsecond\n"
        assert upload_files(allowed) == [stored_name(name, content)]
        response = client.post("/api/project/import", data={"url": f"{web_files}/missing.csv"})
        assert response.status_code == 422
        assert response.json() == ["HTTP Error 404: File not found"]
        response = client.post("/api/project/import", data={"url": "file:///etc/passwd"})
        assert response.status_code == 422
        assert "use an http or https URL" in response.json()[0]
