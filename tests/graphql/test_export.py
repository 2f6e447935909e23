"""GraphQL: exportFormats and the exportProject mutation (a download URL served by a file route)."""

from __future__ import annotations

import io
import json
import zipfile

from starlette.testclient import TestClient

from tests.conftest import GraphQL, fixture_json, fixture_text

FORMATS = "query { exportFormats { name title description available } }"
EXPORT = """
mutation Export($format: String!, $onlyCompleted: Boolean! = true) {
  exportProject(format: $format, onlyCompleted: $onlyCompleted) {
    format url fileName downloadName size taskCount createdAt expiresAt
  }
}
"""


def test_export_formats_follow_the_config(client: TestClient, gql: GraphQL) -> None:
    formats = gql(FORMATS)["exportFormats"]
    assert [f["name"] for f in formats] == [
        "JSON",
        "JSON_MIN",
        "CSV",
        "TSV",
        "CONLL2003",
        "COCO",
        "VOC",
        "BRUSH_TO_NUMPY",
        "BRUSH_TO_PNG",
        "ASR_MANIFEST",
        "YOLO",
    ]
    assert [f["name"] for f in formats if f["available"]] == ["JSON", "JSON_MIN", "CSV", "TSV"]
    assert {f["name"]: f["title"] for f in formats}["VOC"] == "Pascal VOC XML"
    gql(
        "mutation($c: String!) { setLabelConfig(labelConfig: $c) { id } }",
        {"c": fixture_text("configs/image_bbox.xml")},
    )
    available = [f["name"] for f in gql(FORMATS)["exportFormats"] if f["available"]]
    assert available == ["JSON", "JSON_MIN", "CSV", "TSV", "COCO", "VOC", "YOLO"]


def test_export_project_returns_a_download_url(sentiment_project: TestClient, gql: GraphQL) -> None:
    client = sentiment_project
    export = gql(EXPORT, {"format": "JSON"})["exportProject"]
    assert export["format"] == "JSON" and export["taskCount"] == 1
    assert export["url"] == "/data/export/" + export["fileName"]
    assert export["downloadName"].endswith("-JSON.zip")
    response = client.get(export["url"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["filename"] == export["downloadName"]
    assert response.headers["content-disposition"] == (
        f"attachment; filename={export['downloadName']}"
    )
    assert len(response.content) == export["size"]
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        tasks = json.loads(archive.read("result.json"))
    assert [t["data"]["text"] for t in tasks] == ["Labeled on import"]
    # The file stays downloadable until it expires.
    assert client.get(export["url"]).status_code == 200


def test_only_completed_false_lists_every_task(sentiment_project: TestClient, gql: GraphQL) -> None:
    export = gql(EXPORT, {"format": "JSON_MIN", "onlyCompleted": False})["exportProject"]
    total = len(fixture_json("tasks/sentiment_mixed.json"))
    assert export["taskCount"] == total
    content = sentiment_project.get(export["url"]).content
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert len(json.loads(archive.read("result.json"))) == total


def test_export_errors_have_codes(sentiment_project: TestClient, gql: GraphQL) -> None:
    error = gql.error(EXPORT, {"format": "COCO"})
    assert error["code"] == "INVALID"
    assert error["formats"] == ["JSON", "JSON_MIN", "CSV", "TSV"]
    assert error["message"].startswith("Format COCO is not supported for this project")
    assert gql.error(EXPORT, {"format": "NOPE"})["code"] == "INVALID"


def test_download_route_refuses_unknown_names(client: TestClient) -> None:
    for path in (
        "/data/export/2026-01-01-00-00-00-JSON-0123456789abcdef.zip",
        "/data/export/..%2Flabelgraph.db",
        "/data/export/labelgraph.db",
    ):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json()["status"] == 404
