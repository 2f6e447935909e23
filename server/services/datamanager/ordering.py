"""Orderings by any filterable field, as index-friendly *phases*, and their keyset cursors.

An ordering splits the tasks into phases, each a condition plus the value it sorts by (or
none: by id only): e.g. completed tasks by ``completed_at`` then the others by id (nulls sort
last in both directions, as in Label Studio); a data key's numbers, then its strings, then the
tasks where it is neither. Each phase is one query ``ORDER BY value, id`` that a partial index
can serve (a counter: the tasks where it is 0 by id, then the others by count from a partial
index over them), and a cursor is (phase, value, id): rows inserted concurrently land before
or after it by their key, so no row is skipped or repeated.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import peewee

from server.errors import DomainError
from server.models import (
    CANCELLED,
    COMPLETED,
    LABELED,
    PREDICTED,
    SCORED,
    UNCANCELLED,
    UNLABELED,
    UNPREDICTED,
    Prediction,
    Task,
    TaskLabel,
)
from server.services.datamanager import data_keys
from server.services.datamanager.compile import _COLUMNS
from server.services.datamanager.fields import ValueType, bad_filter, find_field


@dataclass(frozen=True)
class Phase:
    condition: peewee.ColumnBase | None
    value: peewee.ColumnBase | None
    last: bool = False  # the "no value" phase: last in both directions


@dataclass(frozen=True)
class Sort:
    field: str  # canonical field name
    descending: bool = False

    @property
    def signature(self) -> str:
        return f"{'-' if self.descending else ''}{self.field}"


DEFAULT = Sort("id")


def parse_sort(spec: str | None) -> Sort:
    """``field``, ``-field``, Label Studio's ``tasks:field`` / ``-tasks:field``."""
    if not spec:
        return DEFAULT
    descending = spec.startswith("-")
    name = spec.lstrip("-")
    if name.startswith("tasks:"):
        name = name[len("tasks:") :]
    return Sort(find_field(name).name, descending)


def _has(model: type[peewee.Model], project_id: int, column: peewee.Field) -> peewee.ColumnBase:
    owner = model.task  # type: ignore[attr-defined]
    rows = model.select(owner).where(model.project == project_id, column.is_null(False))  # type: ignore[attr-defined]
    return Task.id.in_(rows)


def _smallest(model: type[peewee.Model], column: peewee.Field) -> peewee.ColumnBase:
    owner = model.task  # type: ignore[attr-defined]
    smallest = model.select(peewee.fn.MIN(column)).where(owner == Task.id)
    return peewee.NodeList((smallest,))  # an expression (sortable, comparable)


def phases(project_id: int, sort: Sort) -> list[Phase]:
    """The phases of an ordering, in the order they are listed."""
    name = sort.field
    if name.startswith("data."):
        key = find_field(name).data_key or ""
        kind = data_keys.json_type(key)
        valued = [
            Phase(kind == "number", data_keys.typed(key, ValueType.NUMBER)),
            Phase(kind == "string", data_keys.typed(key, ValueType.STRING)),
            Phase(kind == "boolean", data_keys.typed(key, ValueType.BOOLEAN)),
        ]
        rest = Phase(kind.not_in(["number", "string", "boolean"]), None, last=True)
    elif name == "is_labeled":
        valued = [Phase(UNLABELED, None), Phase(Task.is_labeled == True, None)]  # noqa: E712
        rest = None
    elif name == "labels":
        has = _has(TaskLabel, project_id, TaskLabel.label)
        valued = [Phase(has, _smallest(TaskLabel, TaskLabel.label))]
        rest = Phase(~peewee.NodeList((has,), parens=True), None, last=True)
    elif name == "model_version":
        has = _has(Prediction, project_id, Prediction.model_version)
        valued = [Phase(has, _smallest(Prediction, Prediction.model_version))]
        rest = Phase(~peewee.NodeList((has,), parens=True), None, last=True)
    elif name == "completed_at":
        valued = [Phase(COMPLETED, Task.completed_at)]
        rest = Phase(UNLABELED, None, last=True)
    elif name == "predictions_score":
        valued = [Phase(SCORED, Task.predictions_score)]
        rest = Phase(Task.predictions_score.is_null(), None, last=True)
    elif name == "total_completions":  # a task is labeled when it has a completion
        valued = [Phase(UNLABELED, None), Phase(LABELED, Task.total_completions)]
        rest = None
    elif name == "total_predictions":
        valued = [Phase(UNPREDICTED, None), Phase(PREDICTED, Task.total_predictions)]
        rest = None
    elif name == "cancelled_completions":
        valued = [Phase(UNCANCELLED, None), Phase(CANCELLED, Task.cancelled_completions)]
        rest = None
    elif name == "id":
        valued = [Phase(None, None)]
        rest = None
    else:
        valued = [Phase(None, _COLUMNS[name])]
        rest = None
    if sort.descending:
        valued.reverse()
    return [*valued, rest] if rest is not None else valued


# --- cursors -------------------------------------------------------------------------------


def _encode_value(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, bool):
        return ["b", value]
    if isinstance(value, int):
        return ["i", value]
    if isinstance(value, float):
        return ["f", repr(value)]
    if isinstance(value, Decimal):
        return ["d", str(value)]
    return ["s", str(value)]


def _decode_value(tagged: list[Any]) -> Any:
    if not tagged:
        return None
    tag, raw = tagged
    if tag == "b" and isinstance(raw, bool):
        return raw
    if tag == "i" and isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if tag in ("f", "d", "s") and isinstance(raw, str):
        return {"f": float, "d": Decimal, "s": str}[tag](raw)
    raise ValueError("bad cursor value")


def encode_cursor(sort: Sort, phase: int, value: Any, task_id: int) -> str:
    raw = json.dumps(
        ["v2", sort.signature, phase, _encode_value(value), task_id], separators=(",", ":")
    )
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@dataclass(frozen=True)
class Position:
    phase: int
    value: Any
    task_id: int


def decode_cursor(cursor: str, sort: Sort, phase_count: int) -> Position:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        tag, signature, phase, value, task_id = json.loads(base64.urlsafe_b64decode(padded))
        if tag != "v2" or signature != sort.signature:
            raise ValueError("cursor belongs to another order")
        if not isinstance(phase, int) or not 0 <= phase < phase_count:
            raise ValueError("bad phase")
        if not isinstance(task_id, int) or isinstance(task_id, bool):
            raise ValueError("bad id")
        return Position(phase, _decode_value(value), task_id)
    except (ValueError, binascii.Error, TypeError, ArithmeticError):
        raise DomainError(
            "invalid",
            "Invalid cursor for this order; pass an endCursor you received",
            {"field": "after"},
        ) from None


def after(phase: Phase, position: Position, descending: bool) -> peewee.ColumnBase:
    """Rows of ``phase`` strictly after ``position`` in the listing order."""
    if phase.value is None or position.value is None:
        return Task.id < position.task_id if descending else Task.id > position.task_id
    row = peewee.Tuple(phase.value, Task.id)
    bound = peewee.Tuple(position.value, position.task_id)
    compared: peewee.ColumnBase = row < bound if descending else row > bound
    return compared


def check_sortable(name: str) -> None:
    if (
        name not in _COLUMNS
        and name not in ("labels", "model_version")
        and not name.startswith("data.")
    ):
        raise bad_filter(f"Cannot order by {name!r}", name)
