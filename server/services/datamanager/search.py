"""Full-text search over the string values of a task's data, by the database's own engine.

* SQLite: a contentless FTS5 table ``task_fts`` (rowid = task id) holding every string
  value of the task data; triggers on ``task`` keep it in step inside the writing
  transaction (imports, updates, deletes alike).
* PostgreSQL: a GIN expression index on ``json_to_tsvector('simple', data, '["string"]')``;
  the index is maintained by PostgreSQL itself.

Both tokenize on word boundaries and fold case, without stemming; every word of the search
must occur (prefix matching is not offered).
"""

from __future__ import annotations

import re

import peewee

from server.db import database, is_sqlite
from server.models import Task

# The string values of a task's data, as one text (SQLite).
_TEXT_OF = "(SELECT group_concat(value, ' ') FROM json_tree({row}.data) WHERE type = 'text')"
_PG_VECTOR = "json_to_tsvector('simple'::regconfig, {data}, '[\"string\"]'::jsonb)"
_WORD = re.compile(r"\w+", re.UNICODE)
MAX_WORDS = 32

SQLITE_DDL = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS task_fts USING fts5(body, content='', "
    "tokenize='unicode61')",
    "CREATE TRIGGER IF NOT EXISTS task_fts_insert AFTER INSERT ON task BEGIN "
    f"INSERT INTO task_fts(rowid, body) VALUES (new.id, {_TEXT_OF.format(row='new')}); END",
    "CREATE TRIGGER IF NOT EXISTS task_fts_delete AFTER DELETE ON task BEGIN "
    "INSERT INTO task_fts(task_fts, rowid, body) "
    f"VALUES ('delete', old.id, {_TEXT_OF.format(row='old')}); END",
    "CREATE TRIGGER IF NOT EXISTS task_fts_update AFTER UPDATE OF data ON task "
    "WHEN old.data IS NOT new.data BEGIN "
    "INSERT INTO task_fts(task_fts, rowid, body) "
    f"VALUES ('delete', old.id, {_TEXT_OF.format(row='old')}); "
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
        database.execute_sql("INSERT INTO task_fts(task_fts) VALUES ('delete-all')")
        database.execute_sql(
            f"INSERT INTO task_fts(rowid, body) SELECT id, {_TEXT_OF.format(row='task')} FROM task"
        )
    else:
        for statement in POSTGRES_DDL:
            database.execute_sql(statement)


def words(text: str) -> list[str]:
    return _WORD.findall(text)[:MAX_WORDS]


def matches(text: str) -> peewee.Node | None:
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
