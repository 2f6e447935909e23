"""GraphQL imports: importTasks with JSON tasks and with uploads (multipart request spec, CSRF
guard), staged imports."""

from __future__ import annotations

import json
from typing import Any

from starlette.testclient import TestClient

from tests.conftest import FIXTURES, GraphQL, fixture_text

IMPORTS = FIXTURES / "imports"
REPORT = (
    "taskCount completionCount predictionCount newTaskIds taskPreview foundFormats "
    "selectedFormats selectedObjects filesAsTasksList showFilesAsTasksList"
)
UPLOAD = f"""mutation Upload($files: [Upload!]!) {{
  importTasks(files: $files) {{ {REPORT} }}
}}"""


def multipart(names: list[str]) -> dict[str, Any]:
    """The GraphQL multipart request spec's form for UPLOAD with these fixture files."""
    operations = {"query": UPLOAD, "variables": {"files": [None] * len(names)}}
    mapping = {str(i): [f"variables.files.{i}"] for i in range(len(names))}
    return {
        "data": {"operations": json.dumps(operations), "map": json.dumps(mapping)},
        "files": {str(i): (name, (IMPORTS / name).read_bytes()) for i, name in enumerate(names)},
    }


def test_import_json_tasks(gql: GraphQL) -> None:
    gql(
        "mutation($c: String!) { setLabelConfig(labelConfig: $c) { id } }",
        {"c": fixture_text("configs/sentiment.xml")},
    )
    data = gql(
        f"mutation($t: JSON!) {{ importTasks(tasks: $t) {{ {REPORT} }} }}",
        {"t": [{"text": "a"}, {"data": {"text": "b"}, "predictions": [{"result": []}]}]},
    )["importTasks"]
    assert data["taskCount"] == 2 and data["predictionCount"] == 1
    assert data["taskPreview"] == [{"text": "a"}, {"text": "b", "predictions": [{"result": []}]}]
    assert data["foundFormats"] == {} and data["selectedFormats"] is None
    assert data["filesAsTasksList"] is True and data["showFilesAsTasksList"] is None


def test_upload_through_multipart_with_preflight_header(client: TestClient, gql: GraphQL) -> None:
    gql(
        "mutation($c: String!) { setLabelConfig(labelConfig: $c) { id } }",
        {"c": fixture_text("configs/sentiment.xml")},
    )
    response = client.post(
        "/graphql",
        headers={"apollo-require-preflight": "true"},
        **multipart(["lines.txt", "red.png"]),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    report = body["data"]["importTasks"]
    assert report["taskCount"] == 5
    assert report["foundFormats"] == {".txt": 1, ".png": 1}
    assert report["selectedFormats"] == [".png", ".txt"]
    assert report["selectedObjects"] == ["Image", None]
    assert report["taskPreview"][4] == {"text": "/data/upload/7b8a70-red.png"}
    served = client.get("/data/upload/7b8a70-red.png")
    assert served.content == (IMPORTS / "red.png").read_bytes()


def test_multipart_without_preflight_header_is_refused(client: TestClient) -> None:
    response = client.post("/graphql", **multipart(["lines.txt"]))
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "CSRF"
    assert "Cross-Site Request Forgery" in error["message"]
    assert client.get("/api/tasks").json()["total"] == 0
    # Form-encoded and plain-text POSTs are refused the same way; JSON needs no header.
    response = client.post("/graphql", data={"query": "{ version }"})
    assert response.status_code == 400
    response = client.post("/graphql", json={"query": "{ project { taskCount } }"})
    assert response.status_code == 200


def test_invalid_file_has_label_studio_messages(client: TestClient, gql: GraphQL) -> None:
    gql(
        "mutation($c: String!) { setLabelConfig(labelConfig: $c) { id } }",
        {"c": fixture_text("configs/image_bbox.xml")},
    )
    response = client.post(
        "/graphql", headers={"x-apollo-operation-name": "Upload"}, **multipart(["reviews.tsv"])
    )
    assert response.status_code == 200
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "INVALID_TASKS"
    assert error["extensions"]["errors"] == [
        f'Error   at item {i}: "image" key is expected in task data [assume: item["data"] = '
        f"task root with values] :: {{'data': {{'text': '{text} tab line', 'score': {i + 1}}}}}"
        for i, text in enumerate(("first", "second"))
    ]
    assert client.get("/api/tasks").json()["total"] == 0


def test_staged_import(gql: GraphQL) -> None:
    staged = gql(
        "mutation($t: JSON!) { prepareImport(tasks: $t) { id expiresAt report { taskCount "
        "newTaskIds lsJson } } }",
        {"t": [{"text": "x"}, {"text": "y"}]},
    )["prepareImport"]
    assert staged["report"]["taskCount"] == 2 and staged["report"]["newTaskIds"] == []
    assert staged["report"]["lsJson"]["id"] == staged["id"]
    assert staged["expiresAt"].endswith("+00:00")
    again = gql(
        "query($id: Int!) { stagedImport(id: $id) { report { taskCount } } }", {"id": staged["id"]}
    )
    assert again["stagedImport"]["report"]["taskCount"] == 2
    applied = gql(
        "mutation($id: Int!) { applyStagedImport(id: $id) { taskCount newTaskIds } }",
        {"id": staged["id"]},
    )["applyStagedImport"]
    assert applied["taskCount"] == 2 and len(applied["newTaskIds"]) == 2
    error = gql.error("query($id: Int!) { stagedImport(id: $id) { id } }", {"id": staged["id"]})
    assert error["code"] == "NOT_FOUND"


def test_exactly_one_source(gql: GraphQL) -> None:
    error = gql.error("mutation { importTasks { taskCount } }")
    assert error["code"] == "INVALID"
    assert error["message"] == "Give exactly one of tasks, files or url to import"
