"""The task fields a filter or an ordering can name, their value types and operators.

Names are accepted in three spellings: snake_case (``completed_at``, Label Studio's), camelCase
(``completedAt``, GraphQL's) and ``data.<key>`` for a key of the task data. Label Studio's
``completions_results`` names the labels chosen in completions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from server.errors import DomainError


class ValueType(Enum):
    NUMBER = "Number"
    STRING = "String"
    DATETIME = "Datetime"
    BOOLEAN = "Boolean"
    LIST = "List"  # a set of strings per task: labels, model versions


class Operator(Enum):
    EQUAL = "equal"
    NOT_EQUAL = "not_equal"
    CONTAINS = "contains"
    NOT_CONTAINS = "not_contains"
    LESS = "less"
    GREATER = "greater"
    LESS_OR_EQUAL = "less_or_equal"
    GREATER_OR_EQUAL = "greater_or_equal"
    IN = "in"
    NOT_IN = "not_in"
    EMPTY = "empty"


COMPARISONS = frozenset(
    {
        Operator.LESS,
        Operator.GREATER,
        Operator.LESS_OR_EQUAL,
        Operator.GREATER_OR_EQUAL,
        Operator.IN,
        Operator.NOT_IN,
    }
)
_ALL = frozenset(Operator)
OPERATORS: dict[ValueType, frozenset[Operator]] = {
    ValueType.NUMBER: _ALL - {Operator.CONTAINS, Operator.NOT_CONTAINS},
    ValueType.DATETIME: _ALL - {Operator.CONTAINS, Operator.NOT_CONTAINS},
    ValueType.BOOLEAN: frozenset({Operator.EQUAL, Operator.NOT_EQUAL, Operator.EMPTY}),
    ValueType.STRING: _ALL,
    ValueType.LIST: frozenset(
        {
            Operator.EQUAL,
            Operator.NOT_EQUAL,
            Operator.CONTAINS,
            Operator.NOT_CONTAINS,
            Operator.EMPTY,
        }
    ),
}


@dataclass(frozen=True)
class Field:
    """A filterable field. ``name`` is the canonical snake_case name; ``data_key`` is set for
    ``data.<key>`` fields (whose type comes from the condition, not from here)."""

    name: str
    type: ValueType
    nullable: bool = False
    data_key: str | None = None

    @property
    def camel(self) -> str:
        if self.data_key is not None:
            return self.name
        head, *rest = self.name.split("_")
        return head + "".join(part.title() for part in rest)


TASK_FIELDS: dict[str, Field] = {
    f.name: f
    for f in (
        Field("id", ValueType.NUMBER),
        Field("created_at", ValueType.DATETIME),
        Field("updated_at", ValueType.DATETIME),
        Field("completed_at", ValueType.DATETIME, nullable=True),
        Field("is_labeled", ValueType.BOOLEAN),
        Field("total_completions", ValueType.NUMBER),
        Field("cancelled_completions", ValueType.NUMBER),
        Field("total_predictions", ValueType.NUMBER),
        Field("predictions_score", ValueType.NUMBER, nullable=True),
        Field("labels", ValueType.LIST),
        Field("model_version", ValueType.LIST),
    )
}
_ALIASES = {f.camel: f.name for f in TASK_FIELDS.values()} | {
    "completions_results": "labels",
    "isLabeled": "is_labeled",
    "modelVersion": "model_version",
    "prediction_model_version": "model_version",
}
# Data keys a JSON path can name on both engines without quoting tricks.
_DATA_KEY = re.compile(r'^[^"\\\x00-\x1f]{1,200}$')


def bad_filter(message: str, field: str | None = None) -> DomainError:
    return DomainError("bad_filter", message, {"field": field} if field else None)


def data_field(key: str) -> Field:
    if not _DATA_KEY.match(key):
        raise bad_filter(f"Invalid data key {key!r}", f"data.{key}")
    return Field(f"data.{key}", ValueType.STRING, nullable=True, data_key=key)


def find_field(name: str) -> Field:
    """The field a filter or ordering names; ``bad_filter`` for an unknown one."""
    if name.startswith("data."):
        return data_field(name[len("data.") :])
    canonical = _ALIASES.get(name, name)
    found = TASK_FIELDS.get(canonical)
    if found is None:
        known = ", ".join([*sorted(TASK_FIELDS), "data.<key>"])
        raise bad_filter(f"Unknown task field {name!r}; use one of: {known}", name)
    return found


def data_value_type(declared: str | None, value: object) -> ValueType:
    """The type a ``data.<key>`` condition compares as: the declared one (Label Studio sends
    column types such as ``Number``, ``String``, ``Text``, ``Image``: all but Number and
    Boolean compare as strings), else inferred from the value."""
    if declared:
        lowered = declared.lower()
        if lowered == "number":
            return ValueType.NUMBER
        if lowered == "boolean":
            return ValueType.BOOLEAN
        return ValueType.STRING
    probe = value.get("min") if isinstance(value, dict) else value
    if isinstance(probe, bool):
        return ValueType.BOOLEAN
    if isinstance(probe, int | float):
        return ValueType.NUMBER
    return ValueType.STRING
