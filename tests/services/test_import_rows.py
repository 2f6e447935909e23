"""Rows written by the bulk import (server/db_rows.py: multi-row INSERTs on SQLite, COPY's
text format on PostgreSQL) come back exactly as given: escapes, NULLs, booleans, floats."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from server import db
from server.models import Completion, Prediction, Task, TaskLabel
from server.services import projects
from server.services.imports.json_import import import_tasks
from tests.conftest import fixture_text

AWKWARD = 'back\\slash \\N tab\there new\nline cr\rend \\\\t quote\' "dq" ünï €'


def _choice(label: str) -> list[dict[str, Any]]:
    return [
        {
            "from_name": "sentiment",
            "to_name": "text",
            "type": "choices",
            "value": {"choices": [label]},
        }
    ]


def test_awkward_values_round_trip(client: TestClient, project_id: int) -> None:
    items = [
        {
            "data": {"text": AWKWARD, "nested": {"list": [AWKWARD, 1.5, None, True]}},
            "meta": {"note": AWKWARD},
            "completions": [{"result": _choice(AWKWARD), "was_cancelled": False, "lead_time": 0.1}],
            "predictions": [{"result": _choice("Positive"), "score": 0.125}],
        },
        {"text": "\\"},
        {"data": {"text": "x"}, "completions": [{"result": [], "was_cancelled": True}]},
    ]

    def run() -> list[Any]:
        projects.set_label_config(project_id, fixture_text("configs/sentiment.xml"))
        ids = import_tasks(project_id, items).task_ids
        tasks = {t.id: t for t in Task.select().where(Task.id.in_(ids))}
        completions = list(Completion.select().order_by(Completion.id))
        return [
            [tasks[i].data for i in ids],
            [tasks[i].meta for i in ids],
            [
                (tasks[i].is_labeled, tasks[i].total_completions, tasks[i].cancelled_completions)
                for i in ids
            ],
            [
                (c.task_id == ids[n], c.was_cancelled, c.payload["result"])
                for n, c in zip((0, 2), completions, strict=True)
            ],
            [(p.score, p.payload["score"]) for p in Prediction.select()],
            sorted((r.from_name, r.label) for r in TaskLabel.select()),
            tasks[ids[0]].predictions_score,
        ]

    data, meta, counters, completions, predictions, labels, score = db.with_connection(run)
    assert data == [
        {"text": AWKWARD, "nested": {"list": [AWKWARD, 1.5, None, True]}},
        {"text": "\\"},
        {"text": "x"},
    ]
    assert meta == [{"note": AWKWARD}, None, None]
    assert counters == [(True, 1, 0), (False, 0, 0), (True, 1, 1)]
    assert completions == [(True, False, _choice(AWKWARD)), (True, True, [])]
    assert predictions == [(0.125, 0.125)]
    assert labels == [("sentiment", AWKWARD)]
    assert score == 0.125
