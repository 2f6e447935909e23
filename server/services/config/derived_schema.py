"""What a project's data requires of a new labeling config (labeling-config.md §7).

* The **input schema** is the intersection of the ``data`` keys of all tasks (§7.1).
* The **output schema** is the set of ``(from_name, to_name, type)`` of all stored results and,
  per ``from_name``, the labels found in ``value[type]`` (§7.2).

Both are kept in one :class:`~server.models.DerivedSchema` row per project and brought up to
date when a config is checked, never on the hot paths: tasks and completions only ever get
higher ids, so rows above the recorded watermarks are folded in by one aggregate query each
(the database does the JSON work). Code that changes or deletes existing tasks or completions
calls :func:`mark_stale`, and the next check rebuilds from scratch; as a safety net, a
snapshot whose row counts disagree with the project's counters is rebuilt too.

Call :func:`current` inside a write transaction holding the project lock
(:func:`server.services.projects.lock_project`). Writers that add rows update the project's
counters in their transaction; should a row with a lower id commit behind a watermark (a
concurrent completion on PostgreSQL), the counters disagree with the snapshot's totals on the
next call and it is rebuilt.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import orjson

from server.db import database, is_sqlite
from server.models import DerivedSchema, Project
from server.services.config.issues import (
    MISSING_DATA_KEY,
    ORPHANED_CONTROL,
    ORPHANED_LABELS,
    ORPHANED_RESULTS,
    ConfigIssue,
)
from server.services.config.model import UNDEFINED_KEY, LabelConfig

IGNORED_RESULT_TYPES = ("relation", "rating", "pairwise")
COMPLETED_PREFIX = (
    "You've already completed some tasks, but some of them couldn't be loaded with this config: "
)
PAGE = 1000

Tuple = tuple[Any, Any, Any]
_SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class DataSchema:
    task_count: int
    input_keys: frozenset[str] | None  # None while the project has no tasks
    completion_count: int
    output_tuples: frozenset[Tuple]
    output_labels: Mapping[Any, frozenset[Any]] = field(
        default_factory=lambda: MappingProxyType({})
    )


# --- queries ---------------------------------------------------------------------------------

# The count queries seek on the primary key (SQLite: "+" keeps the planner off the project
# index), so a check with nothing new costs microseconds however large the project.
_SQLITE_NEW_TASKS = (
    'SELECT COUNT(*), MAX("id") FROM "task" WHERE +"project_id" = ? AND "id" > ?',
    'SELECT j."key", COUNT(*) FROM "task" AS t, json_each(t."data") AS j '
    'WHERE t."project_id" = ? AND t."id" > ? AND t."id" <= ? AND json_type(t."data") = \'object\' '
    'GROUP BY j."key"',
)
_PG_NEW_TASKS = (
    'SELECT COUNT(*), MAX("id") FROM "task" WHERE "project_id" = %s AND "id" > %s',
    'SELECT k, COUNT(*) FROM "task" AS t CROSS JOIN LATERAL json_object_keys('
    "CASE WHEN json_typeof(t.\"data\") = 'object' THEN t.\"data\" ELSE '{}'::json END) AS k "
    'WHERE t."project_id" = %s AND t."id" > %s AND t."id" <= %s GROUP BY k',
)
_SQLITE_NEW_COMPLETIONS = (
    'SELECT COUNT(*), MAX("id") FROM "completion" WHERE +"project_id" = ? AND "id" > ?',
    # JSON text of from_name, to_name, type and value[type]; distinct, so a project with
    # 100k completions of the same few controls sends back a handful of rows.
    "SELECT DISTINCT json_quote(json_extract(r.value, '$.from_name')), "
    "json_quote(json_extract(r.value, '$.to_name')), "
    "json_quote(json_extract(r.value, '$.type')), "
    "CASE WHEN json_type(r.value, '$.type') = 'text' "
    "AND instr(json_extract(r.value, '$.type'), '\"') = 0 "
    "AND instr(json_extract(r.value, '$.type'), '\\') = 0 "
    "THEN json_quote(json_extract(r.value, '$.value.\"' || json_extract(r.value, '$.type') "
    "|| '\"')) END "
    'FROM "completion" AS c, json_each(c."payload", \'$.result\') AS r '
    'WHERE c."project_id" = ? AND c."id" > ? AND c."id" <= ? '
    "AND json_type(c.\"payload\", '$.result') = 'array' AND r.type = 'object' "
    "AND COALESCE(json_extract(r.value, '$.type'), '') NOT IN ('relation', 'rating', 'pairwise')",
)
_PG_NEW_COMPLETIONS = (
    'SELECT COUNT(*), MAX("id") FROM "completion" WHERE "project_id" = %s AND "id" > %s',
    "SELECT DISTINCT (r -> 'from_name')::text, (r -> 'to_name')::text, (r -> 'type')::text, "
    "(CASE WHEN json_typeof(r -> 'type') = 'string' "
    "THEN (r -> 'value') -> (r ->> 'type') END)::text "
    'FROM "completion" AS c CROSS JOIN LATERAL json_array_elements('
    "CASE WHEN json_typeof(c.\"payload\" -> 'result') = 'array' THEN c.\"payload\" -> 'result' "
    "ELSE '[]'::json END) AS r "
    'WHERE c."project_id" = %s AND c."id" > %s AND c."id" <= %s '
    "AND json_typeof(r) = 'object' "
    "AND COALESCE(r ->> 'type', '') NOT IN ('relation', 'rating', 'pairwise')",
)


def _rows(sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    return list(database.execute_sql(sql, params).fetchall())


def _json(text: Any) -> Any:
    return None if text is None else orjson.loads(text)


def flatten_labels(value: Any) -> Iterator[Any]:
    """Labels of ``value[type]``: a list (nested lists flattened) or one scalar (§7.2)."""
    if isinstance(value, list):
        for item in value:
            yield from flatten_labels(item)
    elif isinstance(value, str | int | float | bool):
        yield value


# --- the snapshot ----------------------------------------------------------------------------


def mark_stale(project_id: int) -> None:
    """Existing tasks or completions changed or went away: rebuild on the next check."""
    DerivedSchema.update(stale=True).where(DerivedSchema.project == project_id).execute()


def _fresh(project_id: int) -> DerivedSchema:
    return DerivedSchema(project=project_id, input_keys=None, output_tuples=[], output_labels=[])


def current(project: Project) -> DataSchema:
    """The project's input and output schema, folding in rows added since the last call."""
    row = DerivedSchema.get_or_none(DerivedSchema.project == project.id)
    exists = row is not None
    if row is None or row.stale:
        row = _fresh(project.id)
    sqlite = is_sqlite()
    task_sql = _SQLITE_NEW_TASKS if sqlite else _PG_NEW_TASKS
    completion_sql = _SQLITE_NEW_COMPLETIONS if sqlite else _PG_NEW_COMPLETIONS
    changed = _fold_tasks(row, task_sql) | _fold_completions(row, completion_sql)
    if row.task_total != project.task_count or row.completion_total != project.completion_count:
        # Something deleted rows without marking the snapshot stale: start over.
        row = _fresh(project.id)
        _fold_tasks(row, task_sql)
        _fold_completions(row, completion_sql)
        changed = True
    if changed or not exists:
        values = {
            "stale": False,
            "task_watermark": row.task_watermark,
            "task_total": row.task_total,
            "input_keys": row.input_keys,
            "completion_watermark": row.completion_watermark,
            "completion_total": row.completion_total,
            "output_tuples": row.output_tuples,
            "output_labels": row.output_labels,
        }
        if exists:
            DerivedSchema.update(values).where(DerivedSchema.project == project.id).execute()
        else:
            DerivedSchema.insert(project=project.id, **values).execute()
    return DataSchema(
        task_count=row.task_total,
        input_keys=None if row.input_keys is None else frozenset(row.input_keys),
        completion_count=row.completion_total,
        output_tuples=frozenset(tuple(t) for t in row.output_tuples),
        output_labels=MappingProxyType(
            {name: frozenset(labels) for name, labels in row.output_labels}
        ),
    )


def _fold_tasks(row: DerivedSchema, sql: tuple[str, str]) -> bool:
    project_id, watermark = row.project_id, row.task_watermark
    count, newest = _rows(sql[0], (project_id, watermark))[0]
    if not count:
        return False
    key_counts = dict(_rows(sql[1], (project_id, watermark, newest)))
    keys = {key for key, n in key_counts.items() if n == count}
    if row.input_keys is not None:
        keys &= set(row.input_keys)
    row.input_keys = sorted(keys)
    row.task_watermark = newest
    row.task_total += count
    return True


def _fold_completions(row: DerivedSchema, sql: tuple[str, str]) -> bool:
    project_id, watermark = row.project_id, row.completion_watermark
    count, newest = _rows(sql[0], (project_id, watermark))[0]
    if not count:
        return False
    tuples = {_key(t) for t in row.output_tuples}
    labels: dict[Any, dict[str, Any]] = {
        _key(name): {_key(v): v for v in values} for name, values in row.output_labels
    }
    originals: dict[Any, Any] = {_key(name): name for name, _ in row.output_labels}
    for from_j, to_j, type_j, labels_j in _rows(sql[1], (project_id, watermark, newest)):
        from_name, to_name, result_type = _json(from_j), _json(to_j), _json(type_j)
        if from_name is None or to_name is None:
            continue
        if not all(isinstance(v, _SCALARS) for v in (from_name, to_name, result_type)):
            continue  # not a result Label Studio could have written; it loads nowhere anyway
        tuples.add(_key([from_name, to_name, result_type]))
        found = list(flatten_labels(_json(labels_j)))
        if found:
            name_key = _key(from_name)
            originals[name_key] = from_name
            bucket = labels.setdefault(name_key, {})
            for label in found:
                bucket[_key(label)] = label
    row.output_tuples = [orjson.loads(t) for t in sorted(tuples)]
    row.output_labels = [
        [originals[name], [bucket[k] for k in sorted(bucket)]]
        for name, bucket in sorted(labels.items())
    ]
    row.completion_watermark = newest
    row.completion_total += count
    return True


def _key(value: Any) -> str:
    """A stable, hashable, type-preserving key for JSON values (labels may be numbers)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


# --- checks ----------------------------------------------------------------------------------


def input_issues(config: LabelConfig, schema: DataSchema) -> list[ConfigIssue]:
    """§7.1: every input a control reads must be a key that all tasks have."""
    keys = schema.input_keys
    if not keys or keys == {UNDEFINED_KEY}:
        return []
    issues = []
    columns = "\n".join(f"- {c}" for c in sorted(keys))
    for control in config.controls.values():
        for obj in control.inputs:
            if obj.value not in keys:
                issues.append(
                    ConfigIssue(
                        MISSING_DATA_KEY,
                        f'Please replace "{obj.value}" in value=${obj.value} with one of the '
                        f"following columns:\n{columns}",
                        tag=obj.tag,
                        attribute="value",
                    )
                )
    return _unique(issues)


def output_issues(config: LabelConfig, schema: DataSchema) -> list[ConfigIssue]:
    """§7.2: stored results must still load: their (name, first toName, type), their control
    and their labels."""
    issues = []
    expected = config.schema_tuples
    for from_name, to_name, result_type in sorted(schema.output_tuples, key=_key):
        if (from_name, to_name, result_type) not in expected:
            issues.append(
                ConfigIssue(
                    ORPHANED_RESULTS,
                    COMPLETED_PREFIX
                    + f"name={from_name}, toName={to_name}, type={result_type} are expected",
                    tag=_control_tag(config, from_name),
                    attribute="name",
                )
            )
    for from_name in sorted(schema.output_labels, key=_key):
        if from_name not in config.controls:
            issues.append(
                ConfigIssue(
                    ORPHANED_CONTROL,
                    COMPLETED_PREFIX + f"name={from_name} is expected",
                    attribute="name",
                )
            )
    for from_name in sorted(schema.output_labels, key=_key):
        control = config.controls.get(from_name)
        if control is None:
            continue
        missing = sorted(schema.output_labels[from_name] - set(control.labels), key=_key)
        if missing:
            issues.append(
                ConfigIssue(
                    ORPHANED_LABELS,
                    COMPLETED_PREFIX
                    + f'there are labels already created for "{from_name}":\n{missing!r}',
                    tag=control.tag,
                    attribute="value",
                )
            )
    return issues


def _control_tag(config: LabelConfig, name: Any) -> str | None:
    control = config.controls.get(name) if isinstance(name, str) else None
    return None if control is None else control.tag


def _unique(issues: Iterable[ConfigIssue]) -> list[ConfigIssue]:
    unique: dict[str, ConfigIssue] = {}
    for issue in issues:
        unique.setdefault(issue.message, issue)
    return list(unique.values())


def issues(config: LabelConfig, schema: DataSchema) -> list[ConfigIssue]:
    """All project-state issues in the spec's order; the first is Label Studio's answer."""
    return input_issues(config, schema) + output_issues(config, schema)


# --- which completions a config would break ----------------------------------------------------


@dataclass(frozen=True)
class BrokenCompletion:
    completion_id: int
    task_id: int
    reasons: tuple[str, ...]


def result_problems(config: LabelConfig, result: Any) -> list[str]:
    """Why one stored result would not load with ``config`` ([] when it would)."""
    if not isinstance(result, dict) or result.get("type") in IGNORED_RESULT_TYPES:
        return []
    if "from_name" not in result or "to_name" not in result:
        return []
    from_name, to_name, result_type = result["from_name"], result["to_name"], result.get("type")
    if from_name is None or to_name is None:
        return []
    if not all(isinstance(v, _SCALARS) for v in (from_name, to_name, result_type)):
        return []
    problems = []
    if (from_name, to_name, result_type) not in config.schema_tuples:
        problems.append(f"name={from_name}, toName={to_name}, type={result_type} are expected")
    value = result.get("value")
    labels = (
        list(flatten_labels(value.get(result_type)))
        if isinstance(value, dict) and isinstance(result_type, str)
        else []
    )
    if labels:
        control = config.controls.get(from_name) if isinstance(from_name, str) else None
        if control is None:
            problems.append(f"name={from_name} is expected")
        else:
            missing = [x for x in labels if x not in control.labels]
            if missing:
                problems.append(f'there are labels already created for "{from_name}":\n{missing!r}')
    return problems


def broken_completions(
    project_id: int, config: LabelConfig, limit: int
) -> tuple[int, list[BrokenCompletion]]:
    """How many completions would not load with ``config``, and the first ``limit`` of them
    (ascending id). Scans the project's completions page by page."""
    total = 0
    found: list[BrokenCompletion] = []
    last = 0
    mark = "?" if is_sqlite() else "%s"
    sql = (
        f'SELECT "id", "task_id", "payload" FROM "completion" WHERE "project_id" = {mark} '
        f'AND "id" > {mark} ORDER BY "id" LIMIT {PAGE}'
    )
    while True:
        page = _rows(sql, (project_id, last))
        if not page:
            return total, found
        last = page[-1][0]
        for completion_id, task_id, payload in page:
            if isinstance(payload, str | bytes):
                payload = orjson.loads(payload)  # SQLite text; psycopg2 decodes json itself
            results = payload.get("result") if isinstance(payload, dict) else None
            reasons: list[str] = []
            for result in results if isinstance(results, list) else []:
                for problem in result_problems(config, result):
                    if problem not in reasons:
                        reasons.append(problem)
            if reasons:
                total += 1
                if len(found) < limit:
                    found.append(BrokenCompletion(completion_id, task_id, tuple(reasons)))
