"""A small labeled project for the data-manager tests (GraphQL and REST)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

CONFIG = (Path(__file__).parent / "fixtures" / "configs" / "sentiment.xml").read_text()


def choice(label: str) -> list[dict[str, Any]]:
    return [
        {
            "from_name": "sentiment",
            "to_name": "text",
            "type": "choices",
            "value": {"choices": [label]},
        }
    ]


TEXTS = [
    "please refund my order",
    "great product",
    "Refund requested twice",
    "shipping was slow",
    "the refund never arrived, order lost",
    "five stars",
]


@pytest.fixture
def dm_project(client: TestClient) -> TestClient:
    client.post("/api/project/config", data={"label_config": CONFIG})
    tasks: list[dict[str, Any]] = [{"data": {"text": t, "n": i}} for i, t in enumerate(TEXTS)]
    tasks[0]["completions"] = [{"result": choice("Negative"), "created_at": 2000}]
    tasks[2]["completions"] = [{"result": choice("Negative"), "created_at": 1000}]
    tasks[1]["completions"] = [{"result": choice("Positive"), "created_at": 3000}]
    tasks[3]["predictions"] = [{"result": [], "score": 0.2, "model_version": "m1"}]
    tasks[5]["predictions"] = [{"result": [], "score": 0.9, "model_version": "m2"}]
    assert client.post("/api/project/import", json=tasks).status_code == 201
    return client
