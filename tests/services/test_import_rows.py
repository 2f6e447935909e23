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


def test_sqlite_writes_a_chunk_in_few_large_statements(client: TestClient, project_id: int) -> None:
    """SQLite: the import's writer puts each table's rows of a chunk in as few multi-row
    INSERTs as the bound-parameter limit allows (not 250 rows a statement), and every row
    arrives: tasks, completions, labels and the search index, also past a chunk's end."""
    if not db.is_sqlite():
        return  # COPY on PostgreSQL: one per table and chunk already
    from server.services.datamanager import search
    from server.services.imports.pipeline import CHUNK

    count = CHUNK + 7
    items = [
        {"data": {"text": f"word{i} common"}, "completions": [{"result": _choice(f"L{i % 3}")}]}
        for i in range(count)
    ]

    def run() -> tuple[list[str], list[str], list[int], int, int, list[int]]:
        projects.set_label_config(project_id, fixture_text("configs/sentiment.xml"))
        statements: list[str] = []
        connection = db.database.connection()
        connection.set_trace_callback(statements.append)
        try:
            ids = import_tasks(project_id, items).task_ids
        finally:
            connection.set_trace_callback(None)
        found = [t.id for t in Task.select(Task.id).where(search.matches(f"word{count - 1}"))]
        return (
            [s.split("(", 1)[0].strip() for s in statements if s.startswith("INSERT INTO")],
            [s for s in statements if s.startswith("SELECT") and '"position" >=' in s],
            ids,
            Completion.select().count(),
            TaskLabel.select().count(),
            found,
        )

    inserts, key_reads, ids, completions, labels, found = db.with_connection(run)
    assert len(ids) == count and completions == count and labels == count
    assert ids == list(range(ids[0], ids[0] + count))
    assert key_reads == []  # the ids are given in the rows: the writer reads no keys back
    assert found == [ids[-1]]
    # (the rank blocks' rows and version are written per chunk and order, as before)
    per_table = {table: inserts.count(table) for table in set(inserts) if "task_rank" not in table}
    # 13 task columns (with the id): 2,520 rows a statement -> 2 statements for the first
    # chunk (2,520 and 2,480 rows), 1 for the second; the other tables take a chunk (5,000
    # rows) per statement.
    assert per_table == {
        'INSERT INTO "task"': 2 + 1,
        'INSERT INTO "completion"': 1 + 1,
        'INSERT INTO "task_label"': 1 + 1,
        "INSERT INTO task_fts": 1 + 1,
    }


def test_imported_ids_stay_above_every_id_the_table_held(
    client: TestClient, project_id: int
) -> None:
    """An import's tasks get ids above every task id ever used (the newest tasks deleted
    first: never reused), in the order of the items, and each completion, label and search
    entry belongs to the task it came with (SQLite: the import gives the ids itself)."""
    from server.services.datamanager import search

    def items(first: int, count: int) -> list[dict[str, Any]]:
        return [
            {"data": {"text": f"item{i}"}, "completions": [{"result": _choice(f"L{i}")}]}
            for i in range(first, first + count)
        ]

    def run() -> tuple[list[int], list[int], dict[int, str], dict[int, str], list[int]]:
        projects.set_label_config(project_id, fixture_text("configs/sentiment.xml"))
        before = import_tasks(project_id, items(0, 4)).task_ids
        Task.delete().where(Task.id.in_(before[2:])).execute()  # the two highest ids
        after = import_tasks(project_id, items(4, 3)).task_ids
        texts = {t.id: t.data["text"] for t in Task.select().where(Task.id.in_(after))}
        labels_by_task = {
            c.task_id: c.payload["result"][0]["value"]["choices"][0]
            for c in Completion.select().where(Completion.task.in_(after))
        }
        for row in TaskLabel.select().where(TaskLabel.task.in_(after)):
            assert labels_by_task[row.task_id] == row.label
        found = [t.id for t in Task.select(Task.id).where(search.matches("item5"))]
        return before, after, texts, labels_by_task, found

    before, after, texts, labels_by_task, found = db.with_connection(run)
    assert after == list(range(after[0], after[0] + 3)) and after[0] > before[-1]
    assert [texts[i] for i in after] == ["item4", "item5", "item6"]
    assert [labels_by_task[i] for i in after] == ["L4", "L5", "L6"]
    assert found == [after[1]]
