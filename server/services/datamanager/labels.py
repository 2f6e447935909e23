"""The labels chosen in completions, one ``task_label`` row per (task, control, label).

Every writer of completions calls in here inside its own transaction: a new completion adds
its labels, any other change recomputes the task's rows from its remaining completions.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from server.db import database, is_sqlite
from server.db_rows import insert_rows
from server.models import Completion, TaskLabel

COLUMNS = ["project_id", "task_id", "from_name", "label"]


def labels_of(payload: Any) -> set[tuple[str, str]]:
    """(control name, label) pairs of a completion: every string in a result value's
    ``choices`` or ``*labels`` list (nested lists, as taxonomy's, flattened)."""
    found: set[tuple[str, str]] = set()
    result = payload.get("result") if isinstance(payload, dict) else None
    if not isinstance(result, list):
        return found
    for item in result:
        if not isinstance(item, dict):
            continue
        value = item.get("value")
        control = item.get("from_name")
        if not isinstance(value, dict) or not isinstance(control, str):
            continue
        for key, chosen in value.items():
            if key == "choices" or key.endswith("labels") or key == "taxonomy":
                _strings(chosen, control, found)
    return found


def _strings(value: Any, control: str, into: set[tuple[str, str]]) -> None:
    if isinstance(value, str):
        into.add((control, value))
    elif isinstance(value, list):
        for item in value:
            _strings(item, control, into)


def add(project_id: int, task_id: int, payloads: Iterable[Any]) -> None:
    """Record the labels of new completions of a task: one INSERT that skips the rows the
    task already has."""
    statement = add_statement(project_id, task_id, payloads)
    if statement is not None:
        database.execute_sql(*statement)


def add_statement(
    project_id: int, task_id: int, payloads: Iterable[Any]
) -> tuple[str, list[Any]] | None:
    """:func:`add`'s statement and parameters (None: no labels), for a writer that sends it
    within a statement of its own."""
    pairs: set[tuple[str, str]] = set()
    for payload in payloads:
        pairs |= labels_of(payload)
    if not pairs:
        return None
    params = [value for c, label in sorted(pairs) for value in (project_id, task_id, c, label)]
    return _insert_ignoring_sql(database.param, is_sqlite(), len(pairs)), params


@lru_cache(maxsize=64)
def _insert_ignoring_sql(p: str, sqlite: bool, count: int) -> str:
    """INSERT of ``count`` rows that skips the ones present, written once per backend and
    row count (peewee would build it anew on every completion)."""
    values = ", ".join([f"({p}, {p}, {p}, {p})"] * count)
    columns = ", ".join(f'"{c}"' for c in COLUMNS)
    if sqlite:
        return f'INSERT OR IGNORE INTO "task_label" ({columns}) VALUES {values}'
    return f'INSERT INTO "task_label" ({columns}) VALUES {values} ON CONFLICT DO NOTHING'


def add_many(project_id: int, rows: Iterable[tuple[int, Any]]) -> None:
    """Labels of new tasks' completions, given as (task id, payload) (imports: no rows exist
    for these tasks yet)."""
    per_task: dict[int, set[tuple[str, str]]] = {}
    for task_id, payload in rows:
        pairs = labels_of(payload)
        if pairs:
            per_task.setdefault(task_id, set()).update(pairs)
    inserts = [
        (project_id, task_id, control, label)
        for task_id, pairs in per_task.items()
        for control, label in sorted(pairs)
    ]
    insert_rows(TaskLabel, COLUMNS, inserts)


def refresh(project_id: int, task_ids: list[int]) -> None:
    """Recompute the rows of some tasks from their completions (after an update or delete)."""
    if not task_ids:
        return
    TaskLabel.delete().where(TaskLabel.task.in_(task_ids)).execute()
    payloads = Completion.select(Completion.task, Completion.payload).where(
        Completion.task.in_(task_ids)
    )
    add_many(project_id, ((c.task_id, c.payload) for c in payloads))


def clear(project_id: int) -> None:
    TaskLabel.delete().where(TaskLabel.project == project_id).execute()


def rebuild_all(chunk: int = 1000) -> None:
    """Build every project's rows from the stored completions (the migration), a chunk of
    labeled tasks at a time."""
    TaskLabel.delete().execute()
    last = 0
    while True:
        task_ids = [
            row[0]
            for row in database.execute(
                Completion.select(Completion.task)
                .where(Completion.task > last)
                .group_by(Completion.task)
                .order_by(Completion.task)
                .limit(chunk)
            ).fetchall()
        ]
        if not task_ids:
            return
        last = task_ids[-1]
        by_project: dict[int, list[tuple[int, Any]]] = {}
        for c in Completion.select(Completion.project, Completion.task, Completion.payload).where(
            Completion.task.in_(task_ids)
        ):
            by_project.setdefault(c.project_id, []).append((c.task_id, c.payload))
        for project_id, rows in by_project.items():
            add_many(project_id, rows)
