"""Large JSON bodies are spooled to a file and imported incrementally, with the same answers
as small ones."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from rest_compat import imports as import_routes
from tests.conftest import fixture_json, fixture_text


@pytest.fixture
def spooling(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    """Every JSON body larger than 64 bytes takes the spooled path."""
    monkeypatch.setattr(import_routes, "SPOOL_JSON_BYTES", 64)
    config = fixture_text("configs/sentiment.xml")
    assert client.post("/api/project/config", data={"label_config": config}).status_code == 201
    return client


def post(client: TestClient, body: bytes) -> tuple[int, object]:
    response = client.post(
        "/api/project/import", content=body, headers={"content-type": "application/json"}
    )
    return response.status_code, response.json()


def test_spooled_body_imports_like_an_in_memory_one(spooling: TestClient) -> None:
    status, report = post(spooling, json.dumps(fixture_json("tasks/sentiment_mixed.json")).encode())
    assert status == 201
    assert report["task_count"] == 5 and report["completion_count"] == 1  # type: ignore[index]
    assert report["found_formats"] == {}  # type: ignore[index]
    tasks = spooling.get("/api/tasks").json()["tasks"]
    assert [t["data"]["text"] for t in tasks][:2] == [
        "A bare task: the item is the data",
        "A wrapped task with meta",
    ]
    assert tasks[1]["meta"] == {"source": "crawl-7"}
    assert not list((spooling.app.state.settings.import_tmp_dir).glob("body-*"))  # type: ignore[attr-defined]


def test_spooled_single_object(spooling: TestClient) -> None:
    status, _ = post(spooling, json.dumps({"text": "one object, padded " + "x" * 80}).encode())
    assert status == 201
    assert spooling.get("/api/tasks").json()["total"] == 1


def test_spooled_errors_match_in_memory_answers(spooling: TestClient) -> None:
    padding = " " * 100
    assert post(spooling, b"[]" + padding.encode()) == (400, ["data is empty"])
    assert post(spooling, b'"text"' + padding.encode()) == (
        422,
        ["Incorrect input data type, it must be JSON dict or list"],
    )
    status, body = post(spooling, b'[{"text": "a"}, {"text": ' + padding.encode())
    assert status == 400 and body[0].startswith("Malformed JSON body")  # type: ignore[index]
    invalid = json.dumps(fixture_json("tasks/sentiment_invalid.json")).encode()
    assert post(spooling, invalid) == (422, fixture_json("tasks/sentiment_invalid.expected.json"))
    assert spooling.get("/api/tasks").json()["total"] == 0
