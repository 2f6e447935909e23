"""GET /api/project/export (+ /api/export) and GET /api/project/export/formats."""

from __future__ import annotations

import csv
import io
import re
import zipfile

from starlette.testclient import TestClient

from rest_compat._http import OPERATION_HEADER
from tests.conftest import fixture_text


def test_export_answers_the_zip_with_label_studio_headers(sentiment_project: TestClient) -> None:
    client = sentiment_project
    response = client.get("/api/project/export", params={"format": "CSV"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    name = response.headers["filename"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-CSV\.zip", name)
    assert response.headers["content-disposition"] == f"attachment; filename={name}"
    assert response.headers[OPERATION_HEADER] == "RestExport"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert archive.namelist() == ["result.csv"]
        rows = list(csv.reader(io.StringIO(archive.read("result.csv").decode())))
    assert rows[0][:2] == ["text", "id"] and len(rows) == 2
    # The REST export is deleted once sent.
    export_dir = client.app.state.settings.export_dir  # type: ignore[attr-defined]
    assert [p for p in export_dir.iterdir() if p.suffix == ".zip"] == []


def test_tsv_is_still_named_result_csv(sentiment_project: TestClient) -> None:
    response = sentiment_project.get("/api/export?format=TSV")
    assert response.status_code == 200
    assert response.headers["filename"].endswith("-TSV.zip")
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert archive.namelist() == ["result.csv"]
        assert archive.read("result.csv").decode().startswith("text\tid\t")


def test_bad_formats_are_400_listing_the_valid_names(sentiment_project: TestClient) -> None:
    client = sentiment_project
    valid = ["JSON", "JSON_MIN", "CSV", "TSV"]
    for query, detail in (
        ("?format=FOO", "Unknown export format 'FOO': use one of JSON, JSON_MIN, CSV, TSV"),
        ("?format=VOC", "Format VOC is not supported for this project: use one of JSON, "),
        ("", "No export format given: use one of JSON, JSON_MIN, CSV, TSV"),
        ("?format=", "No export format given"),
    ):
        response = client.get("/api/project/export" + query)
        assert response.status_code == 400, query
        body = response.json()
        assert body["status"] == 400 and body["detail"].startswith(detail)
        assert body["formats"] == valid
        assert response.headers["content-type"] == "application/json"


def test_export_of_data_a_format_cannot_hold_is_409(client: TestClient) -> None:
    client.post(
        "/api/project/config", data={"label_config": fixture_text("configs/image_bbox.xml")}
    )
    task = {
        "data": {"image": "http://example.invalid/a.jpg"},
        "completions": [
            {
                "result": [
                    {
                        "from_name": "label",
                        "to_name": "image",
                        "type": "rectanglelabels",
                        "value": {
                            "x": 1,
                            "y": 1,
                            "width": 1,
                            "height": 1,
                            "rectanglelabels": ["A"],
                        },
                    }
                ]
            }
        ],
    }
    assert client.post("/api/project/import", json=[task]).status_code == 201
    formats = client.get("/api/project/export/formats").json()
    assert "COCO" in [f["name"] for f in formats if f["available"]]
    response = client.get("/api/project/export?format=COCO")
    assert response.status_code == 409
    body = response.json()
    assert body["status"] == 409
    assert body["detail"].startswith("Cannot export task 1 as COCO")
    assert "original_width" in body["detail"]


def test_formats_route_lists_every_format(sentiment_project: TestClient) -> None:
    response = sentiment_project.get("/api/project/export/formats")
    assert response.status_code == 200
    formats = response.json()
    assert formats[0] == {
        "name": "JSON",
        "title": "JSON",
        "description": formats[0]["description"],
        "available": True,
    }
    assert [f["name"] for f in formats][-1] == "YOLO"
    assert [f["name"] for f in formats if f["available"]] == ["JSON", "JSON_MIN", "CSV", "TSV"]
