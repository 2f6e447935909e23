"""Deeply nested JSON is refused before it is parsed, from every source, with nothing stored
(a 2 KB zip of ``[[[…]]]`` once drove the server to 23.5 GB; 3,000 levels in a body ended in
a RecursionError and a plain-text 500)."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from rest_compat import imports as import_routes

TOO_DEEP = "JSON nesting is deeper than the limit of 100 levels (LABELGRAPH_MAX_JSON_DEPTH)"
IMPORT_MUTATION = "mutation($t: JSON) { importTasks(tasks: $t) { taskCount } }"


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


def post_json(client: TestClient, path: str, body: str) -> tuple[int, object]:
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    return response.status_code, response.json()


def assert_nothing_stored(client: TestClient) -> None:
    assert client.get("/api/tasks").json()["total"] == 0
    settings = client.app.state.settings  # type: ignore[attr-defined]
    upload_dir: Path = settings.upload_dir
    assert not upload_dir.exists() or not any(upload_dir.iterdir())
    assert not list(settings.import_tmp_dir.glob("*/files/*"))
    assert not list(settings.import_tmp_dir.glob("body-*"))


@pytest.mark.parametrize("path", ["/api/project/import", "/api/project/import/prepare"])
def test_deep_import_body_is_a_400_with_the_import_message_shape(
    client: TestClient, path: str
) -> None:
    assert post_json(client, path, '{"result": ' + nested(3000) + "}") == (400, [TOO_DEEP])
    assert_nothing_stored(client)


def test_deep_body_on_other_routes_is_label_studios_error_envelope(client: TestClient) -> None:
    status, body = post_json(client, "/api/tasks/1/completions", '{"result": ' + nested(3000) + "}")
    assert (status, body) == (400, {"status": 400, "detail": TOO_DEEP})
    response = client.patch(
        "/api/project", content=nested(200), headers={"content-type": "application/json"}
    )
    status, body = response.status_code, response.json()
    assert (status, body) == (400, {"status": 400, "detail": TOO_DEEP})


def test_deep_spooled_body_is_refused(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(import_routes, "SPOOL_JSON_BYTES", 64)
    assert post_json(client, "/api/project/import", nested(25_000)) == (400, [TOO_DEEP])
    assert_nothing_stored(client)


def test_depth_at_the_limit_is_imported(client: TestClient) -> None:
    # The body's list is level 1, the task level 2: 98 more levels of data reach 100.
    body = json.dumps([{"text": "deep", "tree": json.loads(nested(98))}])
    status, _ = post_json(client, "/api/project/import", body)
    assert status == 201
    [task] = client.get("/api/tasks").json()["tasks"]
    assert task["data"]["tree"] == json.loads(nested(98))
    assert post_json(client, "/api/project/import", "[" + body + "]")[0] == 400


def test_deep_uploaded_json_file_is_refused(client: TestClient) -> None:
    response = client.post(
        "/api/project/import", files={"file": ("deep.json", nested(25_000).encode())}
    )
    assert response.status_code == 422
    [message] = response.json()
    assert message.startswith("Failed to parse input file ") and message.endswith(TOO_DEEP)
    assert "-deep.json" in message
    assert_nothing_stored(client)


def test_deep_json_archive_member_is_refused(client: TestClient) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr("tasks/deep.json", nested(1_000_000))
    assert len(archive.getvalue()) < 4096  # the 2 KB bomb of the report
    member_name = hashlib.md5(nested(1_000_000).encode()).hexdigest()[:6]
    response = client.post("/api/project/import", files={"file": ("bomb.zip", archive.getvalue())})
    assert (response.status_code, response.json()) == (
        422,
        [f"Failed to parse input file tasks/{member_name}-deep.json: {TOO_DEEP}"],
    )
    assert_nothing_stored(client)


def graphql_error(response: object) -> tuple[int, dict[str, object]]:
    assert hasattr(response, "json") and hasattr(response, "status_code")
    body = response.json()
    assert "data" not in body
    [error] = body["errors"]
    return response.status_code, error


def test_deep_graphql_variables_are_refused_with_a_code(client: TestClient) -> None:
    body = (
        '{"query": "' + IMPORT_MUTATION + '", "variables": {"t": {"result": ' + nested(3000) + "}}}"
    )
    status, error = graphql_error(
        client.post("/graphql", content=body, headers={"content-type": "application/json"})
    )
    assert status == 400
    assert error == {"message": TOO_DEEP, "extensions": {"code": "INVALID"}}
    assert_nothing_stored(client)


def test_deep_graphql_get_variables_and_multipart_operations_are_refused(
    client: TestClient,
) -> None:
    response = client.get(
        "/graphql", params={"query": "{ __typename }", "variables": '{"v": ' + nested(500) + "}"}
    )
    assert graphql_error(response)[1]["extensions"] == {"code": "INVALID"}
    operations = '{"query": "' + IMPORT_MUTATION + '", "variables": {"t": ' + nested(500) + "}}"
    response = client.post(
        "/graphql",
        data={"operations": operations, "map": "{}"},
        files={"unused": ("a.txt", b"a")},
        headers={"apollo-require-preflight": "true"},
    )
    assert graphql_error(response) == (
        400,
        {"message": TOO_DEEP, "extensions": {"code": "INVALID"}},
    )
    assert_nothing_stored(client)


def test_the_limit_is_a_setting(app_with_settings: Callable[..., TestClient]) -> None:
    client = app_with_settings(max_json_depth=3)
    assert post_json(client, "/api/project/import", '[{"text": "a", "x": [1]}]')[0] == 201
    status, body = post_json(client, "/api/project/import", '[{"text": "a", "x": [[1]]}]')
    assert (status, body) == (
        400,
        ["JSON nesting is deeper than the limit of 3 levels (LABELGRAPH_MAX_JSON_DEPTH)"],
    )
    assert client.get("/api/tasks").json()["total"] == 1
