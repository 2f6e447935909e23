"""A project's totals (tasks, labeled tasks, completions, predictions): the one place that
reads and writes them.

A total is the project row's column (the *base*) plus the deltas in its
:class:`~server.models.ProjectCounter` rows, one row per shard, a task's shard being its id
modulo :data:`SHARDS`:

- per-task writers (a completion added, changed or deleted, a task updated or deleted) add
  their change to their task's shard with :func:`add`. On PostgreSQL a row lock is held until
  the commit has been flushed to disk; one counter row per project held every writer of the
  project in line behind each flush, while writers of different tasks now mostly update
  different rows and their commits are flushed together;
- bulk writers (imports, bulk actions, deleting everything), which hold the project's lock
  exclusively, change the base in the project row as before; :func:`reset` zeroes totals in
  the base and every shard;
- readers get base + the sum of the shards in one statement (:func:`read`): exact at every
  read, whatever writers committed before it. ``project.task_count`` etc. read it through the
  model (:class:`server.models.CounterField`), once per loaded project, or with the row when
  it was selected with :func:`with_totals` (the request's project: no extra statement).

SQLite uses the same table (its writers are serialised anyway): one representation, one code
path on both backends.
"""

from __future__ import annotations

from functools import cache

import peewee

from server.db import database
from server.models import Project, ProjectCounter

SHARDS = 32
FIELDS = ("task_count", "labeled_task_count", "completion_count", "prediction_count")


@cache
def _add_sql(p: str) -> str:
    columns = ", ".join(f'"{f}"' for f in FIELDS)
    sums = ", ".join(f'"{f}" = "project_counter"."{f}" + excluded."{f}"' for f in FIELDS)
    return (
        f'INSERT INTO "project_counter" ("project_id", "shard", {columns}) '
        f"VALUES ({p}, {p}, {p}, {p}, {p}, {p}) "
        f'ON CONFLICT ("project_id", "shard") DO UPDATE SET {sums}'
    )


@cache
def _read_sql(p: str) -> str:
    totals = ", ".join(f'p."{f}" + COALESCE(SUM(c."{f}"), 0)' for f in FIELDS)
    return (
        f'SELECT {totals} FROM "project" AS p LEFT JOIN "project_counter" AS c '
        f'ON c."project_id" = p."id" WHERE p."id" = {p} GROUP BY p."id"'
    )


def with_totals() -> list[peewee.Node]:
    """The project's columns with the exact totals in place of the base, in one snapshot:
    ``Project.select(*with_totals())``, then :func:`selected` on the loaded row, which then
    reads its totals without another statement."""
    columns: list[peewee.Node] = []
    for field in Project._meta.sorted_fields:
        if field.name not in FIELDS:
            columns.append(field)
            continue
        shards = ProjectCounter.select(peewee.fn.SUM(getattr(ProjectCounter, field.name)))
        shards = shards.where(ProjectCounter.project == Project.id)
        columns.append((field + peewee.fn.COALESCE(shards, 0)).alias(field.column_name))
    return columns


def selected(project: Project) -> Project:
    """Mark a project read with :func:`with_totals` as holding its totals."""
    project.__dict__["_counter_totals"] = {f: int(project.__data__[f] or 0) for f in FIELDS}
    return project


def add(
    project_id: int,
    task_id: int,
    *,
    tasks: int = 0,
    labeled: int = 0,
    completions: int = 0,
    predictions: int = 0,
) -> None:
    """Shift the project's totals by a change to task ``task_id`` (inside its write
    transaction, the task locked)."""
    if not (tasks or labeled or completions or predictions):
        return
    database.execute_sql(
        _add_sql(database.param),
        (project_id, task_id % SHARDS, tasks, labeled, completions, predictions),
    )


def add_statement(
    project_id: int, task_id: int, *, labeled: int = 0, completions: int = 0
) -> tuple[str, tuple[int, ...]]:
    """:func:`add`'s statement and parameters, for a writer that sends it within a statement
    of its own (a new completion on PostgreSQL: one round trip for all its writes)."""
    return _add_sql(database.param), (project_id, task_id % SHARDS, 0, labeled, completions, 0)


def read(project_id: int) -> dict[str, int]:
    """The project's exact totals by field name (zeros for an unknown project)."""
    row = database.execute_sql(_read_sql(database.param), (project_id,)).fetchone()
    if row is None:
        return dict.fromkeys(FIELDS, 0)
    return {field: int(value) for field, value in zip(FIELDS, row, strict=True)}


def reset(project_id: int, *fields: str) -> None:
    """Set these totals to 0 (a bulk writer, holding the project's lock exclusively)."""
    Project.update({f: 0 for f in fields}).where(Project.id == project_id).execute()
    if set(fields) == set(FIELDS):
        ProjectCounter.delete().where(ProjectCounter.project == project_id).execute()
    else:
        ProjectCounter.update({f: 0 for f in fields}).where(
            ProjectCounter.project == project_id
        ).execute()
