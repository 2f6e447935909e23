"""The staged import routes Label Studio's UI uses: prepare, GET/PATCH, apply (§6.6)."""

from __future__ import annotations

from starlette.testclient import TestClient

from server.settings import Settings
from tests.conftest import FIXTURES, fixture_text

IMPORTS = FIXTURES / "imports"


def files(*names: str) -> list[tuple[str, tuple[str, bytes]]]:
    return [("FileUpload", (name, (IMPORTS / name).read_bytes())) for name in names]


def test_prepare_review_change_apply(client: TestClient, settings: Settings) -> None:
    client.post("/api/project/config", data={"label_config": fixture_text("configs/sentiment.xml")})
    response = client.post("/api/project/import/prepare", files=files("lines.txt", "page.html"))
    assert response.status_code == 201, response.text
    import_id = response.json()["id"]
    assert response.json() == {"id": import_id}
    assert client.get("/api/tasks").json()["total"] == 0

    report = client.get(f"/api/project/import/{import_id}").json()
    assert report["id"] == import_id
    assert report["total_tasks"] == report["task_count"] == 5
    assert report["found_formats"] == {".txt": 1, ".html": 1}
    assert report["selected_formats"] == [".html", ".txt"]
    assert report["selected_objects"] == ["HyperText", None]
    assert report["show_files_as_tasks_list"] is True
    assert report["files_as_tasks_list"] == {"type": None, "selected": True}
    assert [t["text"] for t in report["task_preview"][:4]] == [
        "line one",
        "line two",
        "",
        "line four",
    ]
    assert report["task_preview"][4]["text"].startswith("<html><body>")
    assert "new_task_ids" not in report and "duration" not in report

    response = client.patch(
        f"/api/project/import/{import_id}",
        json={"files_as_tasks_list": {"type": None, "selected": False}},
    )
    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed["total_tasks"] == 2
    assert changed["selected_objects"] == ["HyperText", "Text"]
    assert changed["files_as_tasks_list"]["selected"] is False

    response = client.patch(f"/api/project/import/{import_id}", json={"selected_formats": [".txt"]})
    assert response.json()["total_tasks"] == 1
    assert response.json()["task_preview"] == [{"text": "/data/upload/1b8e73-lines.txt"}]

    response = client.post(f"/api/project/import/{import_id}/apply")
    assert response.status_code == 201, response.text
    new_ids = response.json()["new_task_ids"]
    assert response.json() == {"new_task_ids": new_ids} and len(new_ids) == 1
    assert client.get(f"/api/tasks/{new_ids[0]}").json()["data"] == {
        "text": "/data/upload/1b8e73-lines.txt"
    }
    assert client.get(f"/api/project/import/{import_id}").status_code == 404
    assert client.post(f"/api/project/import/{import_id}/apply").status_code == 404
    assert list(settings.import_tmp_dir.iterdir()) == []


def test_prepare_json_and_errors(client: TestClient) -> None:
    client.post("/api/project/config", data={"label_config": fixture_text("configs/sentiment.xml")})
    response = client.post("/api/project/import/prepare", json=[{"other": 1}])
    assert response.status_code == 400
    assert response.json()[0].startswith('Error   at item 0: "text" key is expected')
    response = client.post("/api/project/import/prepare", json={"text": "one"})
    import_id = response.json()["id"]
    report = client.get(f"/api/project/import/{import_id}").json()
    assert report["task_preview"] == [{"text": "one"}]
    assert report["found_formats"] == {} and report["selected_formats"] is None
    response = client.patch(f"/api/project/import/{import_id}", json={"selected_formats": 5})
    assert response.status_code == 400
    assert response.json() == ["selected_formats must be a list of strings"]
    assert client.get("/api/project/import/nope").status_code == 404
    assert client.get("/api/project/import/999999").json() == {
        "status": 404,
        "detail": "Import 999999 not found",
    }
    response = client.post(f"/api/project/import/{import_id}/apply")
    assert response.status_code == 201
    assert client.get("/api/tasks").json()["tasks"][0]["data"] == {"text": "one"}


def test_apply_validates_against_the_current_config(client: TestClient) -> None:
    response = client.post("/api/project/import/prepare", json=[{"other": 1}])
    import_id = response.json()["id"]
    client.post("/api/project/config", data={"label_config": fixture_text("configs/sentiment.xml")})
    response = client.post(f"/api/project/import/{import_id}/apply")
    assert response.status_code == 422
    assert response.json()[0].startswith('Error   at item 0: "text" key is expected')
    assert client.get("/api/tasks").json()["total"] == 0


def test_prepare_reports_an_auto_config_conflict(client: TestClient, settings: Settings) -> None:
    response = client.post(
        "/api/project/import/prepare",
        files=[*files("red.png"), ("FileUpload", ("a.mp3", b"ID3"))],
    )
    assert response.status_code == 400
    assert response.json() == [
        "More than one data type is presented: Audio, Image. Set a labeling config first, "
        "or import one type of file at a time"
    ]
    assert list(settings.import_tmp_dir.iterdir()) == []
    assert list(settings.upload_dir.iterdir()) == []
