"""Task data checked against the parsed config's data types (labeling-config.md §4.2)."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from server.errors import DomainError
from server.services.config.label_config import parse_uncached
from server.services.imports.validation import validate_tasks

CASES: list[tuple[str, list[Any], list[Any]]] = [
    # tag, accepted values, refused values
    ("Text", ["s", 1, 1.5, True], [None, [], {}]),
    ("Header", ["s", 2, 2.5], [[], {}]),
    ("HyperText", ["<b>x</b>"], [1, [], {}]),
    ("Image", ["a.jpg", ["a.jpg", "b.jpg"]], [1, {}]),
    ("Paragraphs", [[{"author": "a", "text": "t"}]], ["s", {}]),
    ("Table", [{"a": 1}], ["s", []]),
    ("TimeSeries", [{"t": [1]}, [1, 2], "a.csv"], [1, None]),
    ("Audio", ["a.wav"], [1, [], {}]),
    ("AudioPlus", ["a.wav"], [[]]),
]


def _config(tag: str) -> str:
    if tag == "Header":
        return '<View><Header value="$x"/></View>'
    return f'<View><{tag} name="o" value="$x"/></View>'


@pytest.mark.parametrize(("tag", "accepted", "refused"), CASES)
def test_types_by_tag(tag: str, accepted: list[Any], refused: list[Any]) -> None:
    config = parse_uncached(_config(tag))
    assert [t.data["x"] for t in validate_tasks([{"x": v} for v in accepted], config)] == accepted
    for value in refused:
        with pytest.raises(DomainError) as raised:
            validate_tasks([{"data": {"x": value}}], config)
        assert f'data["x"]={value} is a "{type(value).__name__}" type, but expect' in (
            raised.value.message
        )


def test_missing_key_message() -> None:
    config = parse_uncached(_config("Image"))
    with pytest.raises(DomainError) as raised:
        validate_tasks([{"y": "a.jpg"}], config)
    assert '"x" key is expected in task data' in raised.value.message


def test_patch_uses_the_same_rules(client: TestClient) -> None:
    config = '<View><Image name="i" value="$image"/><Table name="t" value="$meta"/></View>'
    assert client.post("/api/project/config", data={"label_config": config}).status_code == 201
    task = {"image": ["a.jpg"], "meta": {"k": 1}}
    assert client.post("/api/project/import", json=[task]).status_code == 201
    response = client.patch("/api/tasks/1", json={"data": {"image": "b.jpg", "meta": "no"}})
    assert response.status_code == 400
    assert 'data["meta"]=no is a "str" type, but expect "dict"' in response.json()[0]
    ok = client.patch("/api/tasks/1", json={"data": {"image": "b.jpg", "meta": {}}})
    assert ok.status_code == 200
