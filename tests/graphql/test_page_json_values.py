"""JSON columns read back as the client wrote them, on SQLite and PostgreSQL: a GraphQL page,
REST's page and a task GET serve the same values (types, key order, big and long numbers,
unicode, nested objects, nulls) as ``json.loads`` of what was imported. On PostgreSQL the
pool's connections decode ``json`` values with :func:`server.json_text.load_json` rather than
psycopg2's ``json.loads``; these values are the ones whose readings could differ."""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.testclient import TestClient

from server import db
from server.json_text import load_json
from server.models import Task

LABEL_CONFIG = (
    '<View><Text name="text" value="$text"/>'
    '<Choices name="sentiment" toName="text"><Choice value="Positive"/>'
    '<Choice value="Negative"/></Choices></View>'
)
TASKS_JSON = """[
 {"data": {"text": "caf\\u00e9 \\ud83d\\ude00 \\u65e5\\u672c", "z": 1, "a": 2,
   "m": {"y": [1, {"x": null}], "b": true}},
  "predictions": [{"result": [{"value": {"choices": ["Positive"]}, "from_name": "sentiment",
   "to_name": "text", "type": "choices"}], "score": 0.25, "model_version": "v\\u00e9"}]},
 {"data": {"text": "numbers", "big": 123456789012345678901234567890, "i64": 9223372036854775807,
   "neg19": -1234567890123456789, "f": 0.1, "tiny": 1e-7, "huge": 1.5e300, "negzero": -0.0,
   "exp": 1E5, "int_float": 2.0}},
 {"data": {"text": "nulls", "missing": null, "empty": {}, "list": [], "s": "",
   "escapes": "tab\\tquote\\"backslash\\\\ nl\\n ctl\\u0001"}}
]"""
COMPLETION = {
    "result": [
        {
            "from_name": "sentiment",
            "to_name": "text",
            "type": "choices",
            "value": {"choices": ["Negative"]},
            "meta": {"note": "\u00fcber", "n": 12345678901234567890123, "r": 0.3},
        }
    ],
    "lead_time": 2.5,
}
PAGE = (
    "query { project { tasks(first: 10) { nodes { id data completions { id result } "
    "predictions { score result } } } } }"
)


def _typed(value: Any) -> str:
    """``repr`` tells ints from floats, -0.0 from 0.0 and keeps key order."""
    return repr(value)


def _setup(client: TestClient) -> list[int]:
    response = client.post("/api/project/config", data={"label_config": LABEL_CONFIG})
    assert response.status_code == 201, response.text
    response = client.post(
        "/api/project/import",
        content=TASKS_JSON.encode(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text
    ids: list[int] = response.json()["new_task_ids"]
    response = client.post(
        f"/api/tasks/{ids[1]}/completions",
        content=json.dumps(COMPLETION),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text
    return ids


def test_graphql_page_serves_json_columns_as_written(client: TestClient) -> None:
    ids = _setup(client)
    sent = json.loads(TASKS_JSON)
    response = client.post("/graphql", json={"query": PAGE})
    assert response.status_code == 200
    nodes = json.loads(response.content)["data"]["project"]["tasks"]["nodes"]
    assert [n["id"] for n in nodes] == ids
    for node, task in zip(nodes, sent, strict=True):
        assert _typed(node["data"]) == _typed(task["data"])
        assert list(node["data"]) == list(task["data"])  # key order as sent
    assert _typed(nodes[0]["predictions"][0]["result"]) == _typed(
        sent[0]["predictions"][0]["result"]
    )
    assert nodes[0]["predictions"][0]["score"] == 0.25
    assert _typed(nodes[1]["completions"][0]["result"]) == _typed(COMPLETION["result"])
    assert nodes[2]["completions"] == [] and nodes[2]["predictions"] == []
    # The answer's bytes: integers beyond 64 bits are written by the standard library
    # (ASCII escapes); otherwise orjson's compact UTF-8, the data's text as stored.
    assert b"123456789012345678901234567890" in response.content
    assert "café 😀 日本".encode() not in response.content  # the whole answer is ASCII-escaped
    only_64_bits = client.post(
        "/graphql",
        json={"query": "query($id: Int!) { task(id: $id) { data } }", "variables": {"id": ids[0]}},
    )
    expected = {"data": {"task": {"data": sent[0]["data"]}}}
    assert only_64_bits.content == orjson.dumps(expected)


def test_rest_pages_and_task_get_serve_json_columns_as_written(client: TestClient) -> None:
    ids = _setup(client)
    sent = json.loads(TASKS_JSON)
    page = json.loads(client.get("/api/tasks?page=1&page_size=10").content)
    tasks = page["tasks"] if isinstance(page, dict) else page
    assert [t["id"] for t in tasks] == ids
    for task, expected in zip(tasks, sent, strict=True):
        assert _typed(task["data"]) == _typed(expected["data"])
    one = json.loads(client.get(f"/api/tasks/{ids[1]}").content)
    assert _typed(one["data"]) == _typed(sent[1]["data"])
    assert _typed(one["completions"][0]["result"]) == _typed(COMPLETION["result"])


def test_stored_json_reads_back_as_json_loads_reads_it(client: TestClient) -> None:
    """The database connection itself (psycopg2's typecaster on PostgreSQL, the JSONField
    on SQLite) gives the values ``json.loads`` gives, Python types included."""
    ids = _setup(client)
    sent = json.loads(TASKS_JSON)

    def read() -> list[Any]:
        return [t.data for t in Task.select().where(Task.id.in_(ids)).order_by(Task.id)]

    stored = db.with_connection(read)
    assert [_typed(v) for v in stored] == [_typed(t["data"]) for t in sent]
    assert _typed(load_json(json.dumps(sent[1]["data"]))) == _typed(sent[1]["data"])
