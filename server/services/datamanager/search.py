"""Full-text search over the string values of a task's data, by the database's own engine.

* SQLite: an FTS5 table ``task_fts`` (rowid = task id) indexing every string value of the
  task data. New tasks are indexed by :func:`index_new` in the import's transaction
  (multi-row INSERTs with the text computed from the data already parsed: a per-row trigger
  walking the JSON tripled the import time); triggers on ``task`` follow updates of ``data``
  and deletions in the writing transaction. The table is contentless (``content=''``) and
  keeps no column sizes (``columnsize=0``; nothing ranks by them): it stores only the index,
  not a second copy of every text (18 % of a database of tasks with completions) with a size
  row per task, so an import writes two rows fewer per task. A contentless table forgets a
  row only through FTS5's ``'delete'`` command given the text it indexed: the triggers
  recompute it from the old ``data`` with ``json_tree`` — the same string values, so the
  same tokens, as :func:`text_of` (only the tokens matter: ``detail=none``).
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
from server.db_rows import SQLITE_MAX_PARAMETERS
from server.models import Task

# The string values of a task's data, as one text (SQLite).
_TEXT_OF = "(SELECT group_concat(value, ' ') FROM json_tree({row}.data) WHERE type = 'text')"
_PG_VECTOR = "json_to_tsvector('simple'::regconfig, {data}, '[\"string\"]'::jsonb)"
# A word: letters and digits, as both engines' tokenizers cut them (FTS5's unicode61 and
# PostgreSQL's parser split at "_" and punctuation). A search word holding a separator would be
# a phrase to FTS5, which this table (detail=none) cannot answer.
_WORD = re.compile(r"[^\W_]+")
MAX_WORDS = 32

_FORGET_OLD = (
    "INSERT INTO task_fts(task_fts, rowid, body) "
    f"VALUES ('delete', old.id, {_TEXT_OF.format(row='old')});"
)
SQLITE_DDL = [
    # Contentless, no column sizes, no positions (no phrase queries): see the module's notes.
    "CREATE VIRTUAL TABLE IF NOT EXISTS task_fts USING fts5(body, content='', "
    "columnsize=0, detail=none, tokenize='unicode61')",
    f"CREATE TRIGGER IF NOT EXISTS task_fts_delete AFTER DELETE ON task BEGIN {_FORGET_OLD} END",
    "CREATE TRIGGER IF NOT EXISTS task_fts_update AFTER UPDATE OF data ON task "
    f"WHEN old.data IS NOT new.data BEGIN {_FORGET_OLD} "
    f"INSERT INTO task_fts(rowid, body) VALUES (new.id, {_TEXT_OF.format(row='new')}); END",
]
_SQLITE_OBJECTS = (
    ("TRIGGER", "task_fts_delete"),
    ("TRIGGER", "task_fts_update"),
    ("TABLE", "task_fts"),
)
POSTGRES_DDL = [
    f"CREATE INDEX IF NOT EXISTS task_fts ON task USING GIN ({_PG_VECTOR.format(data='data')})"
]


def create() -> None:
    """The search structures, filled from the existing tasks (the migration)."""
    if is_sqlite():
        for statement in SQLITE_DDL:
            database.execute_sql(statement)
        database.execute_sql("INSERT INTO task_fts(task_fts) VALUES ('delete-all')")
        database.execute_sql(
            f"INSERT INTO task_fts(rowid, body) SELECT id, {_TEXT_OF.format(row='task')} FROM task"
        )
    else:
        for statement in POSTGRES_DDL:
            database.execute_sql(statement)


def recreate_contentless() -> None:
    """Rebuild SQLite's search table as a contentless one (the migration from the table that
    kept its own copy of every text); a table that is already contentless is kept."""
    if not is_sqlite():
        return
    row = database.execute_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'task_fts'"
    ).fetchone()
    if row is not None and "content=''" in row[0]:
        return
    for kind, name in _SQLITE_OBJECTS:
        database.execute_sql(f"DROP {kind} IF EXISTS {name}")
    create()


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
        index_texts(database.cursor(), [(task_id, text_of(data)) for task_id, data in rows])


def index_texts(cursor: Any, texts: list[tuple[int, str]], per: int = _FTS_ROWS) -> None:
    """SQLite: index new tasks given as (id, :func:`text_of` their data) through ``cursor``
    (the import's writer thread computes no text: its caller did), ``per`` rows a statement
    (capped at 16,383: two bound parameters a row)."""
    if not texts:
        return
    per = max(1, min(per, SQLITE_MAX_PARAMETERS // 2))
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
    # Words hold no quote or tsquery operator: each is one quoted lexeme.
    query = " & ".join("'" + word + "'" for word in found)
    return peewee.NodeList((vector, peewee.SQL("@@ to_tsquery('simple'::regconfig, %s)", [query])))
