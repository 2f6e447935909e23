"""Filters compiled to SQL conditions on ``Task`` (peewee expressions, one query, no Python
loop over tasks).

Meaning of each operator (the tests' brute-force reference implements the same):

* scalar fields: ``v`` is the task's value (None when null / missing / of another type);
  ``equal``/``less``/… and ``in`` (min <= v <= max) are false when ``v`` is None;
  ``not_equal``, ``not_in`` and ``not_contains`` are their negations, so they are true then;
  ``contains`` is a case-insensitive substring test; ``empty: true`` means None (or "" for
  data keys), ``empty: false`` the opposite.
* list fields (labels, prediction model versions): ``equal`` = some item equals the value,
  ``contains`` = some item contains it (case-insensitive), ``not_*`` = no such item,
  ``empty`` = the task has no item.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import peewee

from server.db import is_sqlite
from server.models import UNLABELED, Prediction, Task, TaskLabel
from server.services.datamanager import data_keys
from server.services.datamanager.conditions import Condition, Filter, Group
from server.services.datamanager.fields import Operator, ValueType

TRUE = peewee.SQL("1 = 1")
FALSE = peewee.SQL("1 = 0")

_COLUMNS: dict[str, peewee.Field] = {
    "id": Task.id,
    "created_at": Task.created_at,
    "updated_at": Task.updated_at,
    "completed_at": Task.completed_at,
    "is_labeled": Task.is_labeled,
    "total_completions": Task.total_completions,
    "cancelled_completions": Task.cancelled_completions,
    "total_predictions": Task.total_predictions,
    "predictions_score": Task.predictions_score,
}


def compile_filter(project_id: int, node: Filter, *, paged: bool = False) -> peewee.ColumnBase:
    """``paged``: the condition of a keyset page (a walk in listing order that stops when the
    page is full), rather than of a count or a whole set; see :func:`_exists`."""
    if isinstance(node, Group):
        parts = [compile_filter(project_id, item, paged=paged) for item in node.items]
        if not parts:
            return TRUE
        combined = parts[0]
        for part in parts[1:]:
            combined = (combined & part) if node.conjunction == "and" else (combined | part)
        return peewee.NodeList((combined,), parens=True)
    return compile_condition(project_id, node, paged=paged)


def compile_condition(
    project_id: int, condition: Condition, *, paged: bool = False
) -> peewee.ColumnBase:
    field = condition.field
    if field.data_key is not None:
        if _is_text_equality(condition):
            return _text_equal(field.data_key, condition)
        return _scalar(
            condition,
            data_keys.typed(field.data_key, condition.type),
            nullable=True,
            empty=data_keys.is_empty(field.data_key),
            parameter=lambda v: data_keys.parameter(v, condition.type),
        )
    if field.name == "labels":
        return _listed(project_id, condition, TaskLabel, TaskLabel.label, paged)
    if field.name == "model_version":
        return _listed(project_id, condition, Prediction, Prediction.model_version, paged)
    if field.name == "is_labeled":
        return _labeled(condition)
    column = _COLUMNS[field.name]
    if field.name != "predictions_score":
        condition = _on_integers(condition)
    return _scalar(condition, column, nullable=field.nullable, empty=column.is_null())


def _on_integers(condition: Condition) -> Condition:
    """The same condition with integer bounds, for an integer column (ids, counts, Unix
    seconds): ``x < 2.5`` is ``x < 3``. A float parameter would make PostgreSQL compare the
    column as numeric, which no index serves."""
    op, value = condition.operator, condition.value
    if op in (Operator.IN, Operator.NOT_IN):
        low, high = value
        return dataclasses.replace(condition, value=(math.ceil(low), math.floor(high)))
    if not isinstance(value, float):
        return condition
    if op in (Operator.EQUAL, Operator.NOT_EQUAL):
        return dataclasses.replace(condition, value=int(value)) if value.is_integer() else condition
    rounded = {
        Operator.LESS: math.ceil,
        Operator.GREATER_OR_EQUAL: math.ceil,
        Operator.GREATER: math.floor,
        Operator.LESS_OR_EQUAL: math.floor,
    }[op]
    return dataclasses.replace(condition, value=rounded(value))


def _is_text_equality(condition: Condition) -> bool:
    return condition.type is ValueType.STRING and condition.operator in (
        Operator.EQUAL,
        Operator.NOT_EQUAL,
    )


def _text_equal(key: str, condition: Condition) -> peewee.ColumnBase:
    """``data.<key>`` equal to a string: the value compared first, the JSON type only for the
    rows whose value matches (a data-key scan parses most tasks' JSON once instead of
    twice)."""
    text = data_keys.text(key)
    matches = text == peewee.Value(condition.value, converter=False)
    is_string = data_keys.json_type(key) == "string"
    same: peewee.ColumnBase = matches & is_string
    if not is_sqlite():
        # One opaque expression: as two AND-ed clauses PostgreSQL's estimate of their
        # selectivity multiplies to a few rows and it plans a full scan and sort for the
        # first page instead of walking ids until the page is full.
        same = peewee.Case(None, [(matches, is_string)], False)
    if condition.operator is Operator.EQUAL:
        return same
    negated: peewee.ColumnBase = ~peewee.NodeList((same,), parens=True) | text.is_null()
    return negated


def _labeled(condition: Condition) -> peewee.ColumnBase:
    """``is_labeled = FALSE`` spelled as the partial index ``task_unlabeled`` is."""
    if condition.operator is Operator.EMPTY:
        return FALSE if condition.value else TRUE
    wanted = bool(condition.value) == (condition.operator is Operator.EQUAL)
    return Task.is_labeled == True if wanted else UNLABELED  # noqa: E712


def _scalar(
    condition: Condition,
    value: peewee.ColumnBase,
    *,
    nullable: bool,
    empty: peewee.ColumnBase,
    parameter: Any = None,
) -> peewee.ColumnBase:
    op = condition.operator

    def convert(raw: Any) -> peewee.Value:
        # As given: a column's own conversion would turn 2.5 into 2 for an integer column.
        return peewee.Value(parameter(raw) if parameter else raw, converter=False)

    if op is Operator.EMPTY:
        if not nullable:
            return FALSE if condition.value else TRUE
        return empty if condition.value else ~peewee.NodeList((empty,), parens=True)
    if op in (Operator.IN, Operator.NOT_IN):
        low, high = condition.value
        inside = (value >= convert(low)) & (value <= convert(high))
        return inside if op is Operator.IN else _negate(inside, value, nullable)
    if op in (Operator.CONTAINS, Operator.NOT_CONTAINS):
        found = _contains(value, condition.value)
        return found if op is Operator.CONTAINS else _negate(found, value, nullable)
    argument = convert(condition.value)
    if op is Operator.EQUAL:
        return value == argument
    if op is Operator.NOT_EQUAL:
        return _negate(value == argument, value, nullable)
    comparisons = {
        Operator.LESS: value < argument,
        Operator.GREATER: value > argument,
        Operator.LESS_OR_EQUAL: value <= argument,
        Operator.GREATER_OR_EQUAL: value >= argument,
    }
    return comparisons[op]


def _negate(
    positive: peewee.ColumnBase, value: peewee.ColumnBase, nullable: bool
) -> peewee.ColumnBase:
    """NOT positive, counting a NULL value as "not" (SQL's NOT would leave it unknown)."""
    negated: peewee.ColumnBase = ~peewee.NodeList((positive,), parens=True)
    if not nullable:
        return negated
    either: peewee.ColumnBase = negated | value.is_null()
    return either


def _contains(value: peewee.ColumnBase, needle: str) -> peewee.ColumnBase:
    find = peewee.fn.instr if is_sqlite() else peewee.fn.strpos
    return find(peewee.fn.lower(value), needle.lower()) > 0


# Below this many tasks with a value, "has value X" lists them (``id IN (...)``, cost in
# proportion to the matches); above it, probing each task in listing order (``EXISTS``) fills a
# page sooner. Counting up to the bound is one bounded index range.
LIST_BOUND = 5000


def _exists(
    model: type[peewee.Model], match: peewee.ColumnBase, paged: bool = False
) -> peewee.ColumnBase:
    """A probe by task. In a keyset page on PostgreSQL it says ``OFFSET 0``, which keeps the
    planner from turning it into a semi-join: a merge semi-join reads the probed index from
    its first entry, not from the cursor (O(depth): 45-70 ms for the middle and late pages of
    "has label Car" at 1M tasks), while a probe per task in listing order costs in proportion
    to the page (and to how rare the value is). Counts keep the join, which beats a probe per
    task over a whole set."""
    owner = model.task  # type: ignore[attr-defined]
    probe = model.select(peewee.SQL("1")).where(owner == Task.id, match)
    if paged and not is_sqlite():
        probe = probe.offset(0)
    found: peewee.ColumnBase = peewee.fn.EXISTS(probe)
    return found


def _few(model: type[peewee.Model], where: peewee.ColumnBase) -> bool:
    rows = model.select(peewee.SQL("1")).where(where).limit(LIST_BOUND)
    counted = peewee.Select([rows], [peewee.fn.COUNT(peewee.SQL("*"))])
    return int(counted.bind(model._meta.database).scalar() or 0) < LIST_BOUND


def _listed(
    project_id: int,
    condition: Condition,
    model: type[peewee.Model],
    column: peewee.Field,
    paged: bool = False,
) -> peewee.ColumnBase:
    """Conditions on a set of strings per task (label rows, predictions): an ``EXISTS``
    probe by task (index on task), or for a value few tasks have, ``id IN (...)`` over the
    index on (project, value, task)."""
    op = condition.operator
    task_column = model.task  # type: ignore[attr-defined]
    project_column = model.project  # type: ignore[attr-defined]
    if op is Operator.EMPTY:
        has_any = _exists(model, column.is_null(False), paged)
        return ~has_any if condition.value else has_any
    if op in (Operator.EQUAL, Operator.NOT_EQUAL):
        match = column == condition.value
    else:
        match = _contains(column, condition.value)
    if op is Operator.EQUAL:
        where = (project_column == project_id) & match
        if _few(model, where):
            return Task.id.in_(model.select(task_column).where(where))
    found = _exists(model, match, paged)
    return found if op in (Operator.EQUAL, Operator.CONTAINS) else ~found
