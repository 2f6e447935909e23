"""Full-text search over the string values of a task's data, by the database's own engine.

* SQLite: an FTS5 table ``task_fts`` (rowid = task id) holding every string value of the
  task data. New tasks are indexed by :func:`index_new` in the import's transaction (one
  ``executemany`` with the text computed from the data already parsed: a per-row trigger
  walking the JSON tripled the import time); triggers on ``task`` follow updates of ``data``
  and deletions in the writing transaction.
* PostgreSQL: a GIN expression index on ``json_to_tsvector('simple', data, '["string"]')``;
  the index is maintained by PostgreSQL itself.

Both tokenize on word boundaries and fold case, without stemming; every word of the search
must occur (prefix matching is not offered).
"""

from __future__ import annotations

import re
from typing import Any

import peewee

from server.db import database, is_sqlite
from server.models import Task

# The string values of a task's data, as one text (SQLite).
_TEXT_OF = "(SELECT group_concat(value, ' ') FROM json_tree({row}.data) WHERE type = 'text')"
_PG_VECTOR = "json_to_tsvector('simple'::regconfig, {data}, '[\"string\"]'::jsonb)"
_WORD = re.compile(r"\w+", re.UNICODE)
MAX_WORDS = 32

SQLITE_DDL = [
    # Own content (so a deleted row is removed by rowid), no positions (no phrase queries).
    "CREATE VIRTUAL TABLE IF NOT EXISTS task_fts USING fts5(body, detail=none, "
    "tokenize='unicode61')",
    "CREATE TRIGGER IF NOT EXISTS task_fts_delete AFTER DELETE ON task BEGIN "
    "DELETE FROM task_fts WHERE rowid = old.id; END",
    "CREATE TRIGGER IF NOT EXISTS task_fts_update AFTER UPDATE OF data ON task "
    "WHEN old.data IS NOT new.data BEGIN "
    "DELETE FROM task_fts WHERE rowid = old.id; "
    f"INSERT INTO task_fts(rowid, body) VALUES (new.id, {_TEXT_OF.format(row='new')}); END",
]
POSTGRES_DDL = [
    f"CREATE INDEX IF NOT EXISTS task_fts ON task USING GIN ({_PG_VECTOR.format(data='data')})"
]


def create() -> None:
    """The search structures, filled from the existing tasks (the migration)."""
    if is_sqlite():
        for statement in SQLITE_DDL:
            database.execute_sql(statement)
        database.execute_sql("DELETE FROM task_fts")
        database.execute_sql(
            f"INSERT INTO task_fts(rowid, body) SELECT id, {_TEXT_OF.format(row='task')} FROM task"
        )
    else:
        for statement in POSTGRES_DDL:
            database.execute_sql(statement)


def _strings(value: Any, into: list[str]) -> None:
    if isinstance(value, str):
        into.append(value)
    elif isinstance(value, dict):
        for item in value.values():
            _strings(item, into)
    elif isinstance(value, list):
        for item in value:
            _strings(item, into)


def text_of(data: Any) -> str:
    """Every string value of task data (nested ones too), as one text."""
    if type(data) is dict:
        values = data.values()
        if all(type(value) is str for value in values):  # flat text data: most tasks
            return " ".join(values)
    found: list[str] = []
    _strings(data, found)
    return " ".join(found)


_FTS_INSERT = "INSERT INTO task_fts(rowid, body) VALUES "
_FTS_ROWS = 250  # rows per multi-row INSERT (see server/db_rows.py)


def index_new(rows: list[tuple[int, Any]]) -> None:
    """Index new tasks given as (id, data) (SQLite; PostgreSQL's index follows by itself)."""
    if rows and is_sqlite():
        cursor = database.cursor()
        texts = [(task_id, text_of(data)) for task_id, data in rows]
        per = _FTS_ROWS
        full = len(texts) - len(texts) % per
        statement = _FTS_INSERT + ", ".join(["(?, ?)"] * per)
        for start in range(0, full, per):
            cursor.execute(statement, [v for row in texts[start : start + per] for v in row])
        rest = texts[full:]
        if rest:
            cursor.execute(
                _FTS_INSERT + ", ".join(["(?, ?)"] * len(rest)), [v for row in rest for v in row]
            )


def words(text: str) -> list[str]:
    return _WORD.findall(text)[:MAX_WORDS]


def matches(text: str) -> peewee.ColumnBase | None:
    """A condition on ``Task`` true for the tasks whose text holds every word of ``text``
    (None when ``text`` has no word: no condition)."""
    found = words(text)
    if not found:
        return None
    if is_sqlite():
        query = " AND ".join('"' + word.replace('"', '""') + '"' for word in found)
        hits = peewee.SQL("(SELECT rowid FROM task_fts WHERE task_fts MATCH ?)", [query])
        return Task.id.in_(hits)
    vector = peewee.fn.json_to_tsvector(
        peewee.SQL("'simple'::regconfig"), Task.data, peewee.SQL("'[\"string\"]'::jsonb")
    )
    # \w+ words hold no quote or tsquery operator: each is one quoted lexeme.
    query = " & ".join("'" + word + "'" for word in found)
    return peewee.NodeList((vector, peewee.SQL("@@ to_tsquery('simple'::regconfig, %s)", [query])))
