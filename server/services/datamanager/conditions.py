"""Task filters as data: parse a JSON-shaped filter into checked conditions and groups.

Two spellings are accepted, and may be mixed in one tree:

* Label Studio's (rest-api.md Appendix A): ``{"conjunction": "and", "items": [{"filter":
  "filters:tasks:<field>", "operator": ..., "value": ..., "type": ...}, ...]}``;
* GraphQL's ``TaskFilter``: ``{"and": [...]}``, ``{"or": [...]}`` or one condition
  ``{"field": ..., "operator": ..., "value": ..., "type": ...}``.

Every value is checked and normalised here (datetimes become Unix seconds), so compiling to
SQL (:mod:`.compile`) and the brute-force reference of the tests start from the same values.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from server.services.datamanager.fields import (
    OPERATORS,
    Field,
    Operator,
    ValueType,
    bad_filter,
    data_value_type,
    find_field,
)

MAX_DEPTH = 6
MAX_CONDITIONS = 100
LS_PREFIX = "filters:tasks:"


@dataclass(frozen=True)
class Condition:
    field: Field
    operator: Operator
    type: ValueType
    # Normalised: a number, str or bool; (low, high) for in/not_in; bool for empty.
    value: Any


@dataclass(frozen=True)
class Group:
    conjunction: str  # "and" | "or"
    items: tuple[Condition | Group, ...]


Filter = Condition | Group


# A condition no task meets (an empty id range).
NOTHING = Condition(find_field("id"), Operator.IN, ValueType.NUMBER, (1, 0))


def parse_filter(spec: Any) -> Filter | None:
    """The checked filter of ``spec`` (None or an empty group: no filter)."""
    if spec is None:
        return None
    counter = [0]
    parsed = _parse(spec, 0, counter)
    if isinstance(parsed, Group) and not parsed.items:
        return None
    return parsed


def _parse(spec: Any, depth: int, counter: list[int]) -> Filter:
    if not isinstance(spec, dict):
        raise bad_filter("A filter must be an object")
    if depth > MAX_DEPTH:
        raise bad_filter(f"Filters nest at most {MAX_DEPTH} levels")
    groups = [key for key in ("and", "or", "items") if spec.get(key) is not None]
    if len(groups) > 1 or (groups and ("field" in spec or "filter" in spec)):
        raise bad_filter("A filter is either a group (and/or/items) or one condition, not both")
    if groups:
        key = groups[0]
        conjunction = key if key != "items" else str(spec.get("conjunction") or "and").lower()
        if conjunction not in ("and", "or"):
            raise bad_filter(f"Unknown conjunction {spec.get('conjunction')!r}; use and, or")
        items = spec[key]
        if not isinstance(items, list):
            raise bad_filter(f"{key!r} must be a list of filters")
        return Group(conjunction, tuple(_parse(item, depth + 1, counter) for item in items))
    counter[0] += 1
    if counter[0] > MAX_CONDITIONS:
        raise bad_filter(f"A filter has at most {MAX_CONDITIONS} conditions")
    return parse_condition(spec)


def parse_condition(spec: dict[str, Any]) -> Condition:
    name = spec.get("field", spec.get("filter"))
    if not isinstance(name, str):
        raise bad_filter("A condition needs a field name")
    if name.startswith(LS_PREFIX):
        name = name[len(LS_PREFIX) :]
    field = find_field(name)
    raw_operator = spec.get("operator")
    try:
        operator = Operator(str(raw_operator).lower())
    except ValueError:
        known = ", ".join(op.value for op in Operator)
        raise bad_filter(f"Unknown operator {raw_operator!r}; use one of: {known}", name) from None
    raw = spec.get("value")
    if raw is None and operator is not Operator.EMPTY and "filter" in spec:
        # Label Studio's UI saves a condition before its value is typed; Label Studio
        # matches no task with it (functions.operator: a None value is false).
        return NOTHING
    declared = spec.get("type")
    if declared is not None and not isinstance(declared, str):
        raise bad_filter("A condition's type must be a string", name)
    value_type = field.type
    if field.data_key is not None:
        value_type = data_value_type(declared, raw)
    if operator not in OPERATORS[value_type]:
        raise bad_filter(
            f"Operator {operator.value!r} does not apply to {field.name} ({value_type.value})", name
        )
    return Condition(field, operator, value_type, _value(operator, value_type, raw, name))


def _value(operator: Operator, value_type: ValueType, raw: Any, name: str) -> Any:
    if operator is Operator.EMPTY:
        flag = True if raw is None else _boolean(raw, name)
        return flag
    if raw is None:
        raise bad_filter(f"Operator {operator.value!r} needs a value", name)
    if operator in (Operator.IN, Operator.NOT_IN):
        if not isinstance(raw, dict) or "min" not in raw or "max" not in raw:
            raise bad_filter(f"{operator.value!r} takes {{min, max}}", name)
        return (_scalar(value_type, raw["min"], name), _scalar(value_type, raw["max"], name))
    return _scalar(value_type, raw, name)


def _scalar(value_type: ValueType, raw: Any, name: str) -> Any:
    if value_type is ValueType.NUMBER:
        return _number(raw, name)
    if value_type is ValueType.DATETIME:
        return _datetime(raw, name)
    if value_type is ValueType.BOOLEAN:
        return _boolean(raw, name)
    if isinstance(raw, str):
        return raw
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return str(raw)
    raise bad_filter(f"{name} compares with a string, not {raw!r}", name)


def _number(raw: Any, name: str) -> int | float:
    if isinstance(raw, str):
        try:
            raw = float(raw) if any(c in raw for c in ".eE") else int(raw)
        except ValueError:
            raise bad_filter(f"{name} compares with a number, not {raw!r}", name) from None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise bad_filter(f"{name} compares with a number, not {raw!r}", name)
    if isinstance(raw, float) and not math.isfinite(raw):
        raise bad_filter(f"{name} compares with a finite number", name)
    if isinstance(raw, int) and abs(raw) >= 2**63:
        raise bad_filter(f"{name}: number out of range", name)
    return raw


def _boolean(raw: Any, name: str) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in ("true", "false", "1", "0"):
        return raw.lower() in ("true", "1")
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    raise bad_filter(f"{name} compares with true or false, not {raw!r}", name)


def _datetime(raw: Any, name: str) -> float:
    """Unix seconds of an ISO-8601 datetime (Label Studio's ``YYYY-MM-DDTHH:MM:SS.ffffffZ``
    included; no zone means UTC) or of a number of seconds."""
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return float(_number(raw, name))
    if isinstance(raw, str):
        try:
            moment = dt.datetime.fromisoformat(raw.strip())
        except ValueError:
            moment = None
        if moment is not None:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
            return moment.timestamp()
    raise bad_filter(f"{name} compares with a datetime (ISO 8601), not {raw!r}", name)
