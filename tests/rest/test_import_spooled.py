"""Large JSON bodies are spooled to a file and imported incrementally, with the same answers
as small ones."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from rest_compat import imports as import_routes
from server.app import create_app
from server.settings import Settings
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


# --------------------------------------------------------------------------- chunked bodies


def chunked(body: bytes, size: int = 10) -> Iterator[bytes]:
    """``body`` sent with ``Transfer-Encoding: chunked`` (no Content-Length)."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def post_chunked(client: TestClient, body: bytes) -> tuple[int, object]:
    response = client.post(
        "/api/project/import", content=chunked(body), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    return response.status_code, response.json()


def spool_files(client: TestClient) -> list[Path]:
    return list(client.app.state.settings.import_tmp_dir.glob("body-*"))  # type: ignore[attr-defined]


def test_chunked_body_past_the_threshold_is_spooled(spooling: TestClient) -> None:
    body = json.dumps(fixture_json("tasks/sentiment_mixed.json")).encode()
    status, report = post_chunked(spooling, body)
    assert status == 201
    assert report["task_count"] == 5  # type: ignore[index]
    # The incremental parser (yajl) answered, not json.loads: the body went to the spool file.
    truncated = b'[{"text": "a"}, {"text": ' + b" " * 100
    assert post_chunked(spooling, truncated) == (
        400,
        ["Malformed JSON body: parse error: premature EOF"],
    )
    # Under the threshold, a chunked body stays in memory.
    status, body_errors = post_chunked(spooling, b'[{"text": ')
    assert status == 400
    assert body_errors == ["Malformed JSON body: Expecting value: line 1 column 11 (char 10)"]
    assert spooling.get("/api/tasks").json()["total"] == 5
    assert spool_files(spooling) == []


def test_chunked_body_over_the_size_limit_is_refused_while_spooling(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(import_routes, "SPOOL_JSON_BYTES", 64)
    small = dataclasses.replace(settings, max_body_size=2000)
    with TestClient(create_app(small)) as client:
        body = json.dumps([{"text": "x" * 50} for _ in range(100)]).encode()
        status, answer = post_chunked(client, body)
        assert (status, answer) == (
            413,
            {"status": 413, "detail": "Request body is larger than the limit of 2000 bytes"},
        )
        assert client.get("/api/tasks").json()["total"] == 0
        assert spool_files(client) == []


def test_spooled_body_with_an_infinite_number_is_refused(spooling: TestClient) -> None:
    """``1e999`` would be infinity, which the database would keep as null: the incremental
    parser refuses the overflow."""
    body = b'[{"text": "fine"}, {"text": "x", "score": 1e999}]' + b" " * 100
    status, answer = post(spooling, body)
    assert status == 400
    assert "overflow" in answer[0]  # type: ignore[index]
    assert spooling.get("/api/tasks").json()["total"] == 0


def test_uploaded_file_with_an_infinite_number_is_refused(spooling: TestClient) -> None:
    upload = {"file": ("tasks.json", b'[{"text": "x", "score": 2e+400}]', "application/json")}
    response = spooling.post("/api/project/import", files=upload)
    assert response.status_code == 422
    assert "tasks.json" in response.json()[0] and "overflow" in response.json()[0]
    assert spooling.get("/api/tasks").json()["total"] == 0


def test_big_finite_numbers_and_lookalike_strings_are_stored(spooling: TestClient) -> None:
    body = b'[{"text": "3e456 1e999", "score": 1.5e+308}]' + b" " * 100
    assert post(spooling, body)[0] == 201
    task = spooling.get("/api/tasks").json()["tasks"][0]
    assert task["data"] == {"text": "3e456 1e999", "score": 1.5e308}
