"""SQL expressions for one key of the task data, typed, on SQLite (JSON1) and PostgreSQL.

A typed expression is the value when the key holds a JSON value of that type and NULL
otherwise (missing key, JSON null, another type): a ``Number`` condition never matches a
string ``"5"``. Strings compare by code point on both engines (``COLLATE "C"`` on PostgreSQL,
SQLite's binary collation), as Python compares them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import peewee

from server.db import is_sqlite
from server.models import Task
from server.services.datamanager.fields import ValueType


def _path(key: str) -> str:
    return f'$."{key}"'


def _pg_json(key: str) -> peewee.ColumnBase:
    return peewee.NodeList((Task.data, peewee.SQL("->"), peewee.Value(key)), parens=True)


def _pg_text(key: str) -> peewee.ColumnBase:
    return peewee.NodeList((Task.data, peewee.SQL("->>"), peewee.Value(key)), parens=True)


def text(key: str) -> peewee.ColumnBase:
    """The key's value (PostgreSQL: as text, ``->>``); NULL when missing or JSON null."""
    if is_sqlite():
        value: peewee.ColumnBase = peewee.fn.json_extract(Task.data, _path(key))
        return value
    return _pg_text(key)


def json_type(key: str) -> peewee.ColumnBase:
    """The key's JSON type name ('null' when missing), one spelling on both engines:
    number, string, boolean, null, object, array."""
    if is_sqlite():
        kind = peewee.fn.json_type(Task.data, _path(key))
        return peewee.Case(
            kind,
            [
                ("integer", "number"),
                ("real", "number"),
                ("text", "string"),
                ("true", "boolean"),
                ("false", "boolean"),
            ],
            peewee.fn.COALESCE(kind, "null"),
        )
    return peewee.fn.COALESCE(peewee.fn.json_typeof(_pg_json(key)), "null")


def typed(key: str, value_type: ValueType) -> peewee.ColumnBase:
    """The key's value when it is of ``value_type``, else NULL."""
    if is_sqlite():
        kind = peewee.fn.json_type(Task.data, _path(key))
        value = peewee.fn.json_extract(Task.data, _path(key))
        if value_type is ValueType.NUMBER:
            return peewee.Case(None, [(kind.in_(["integer", "real"]), value)], None)
        if value_type is ValueType.BOOLEAN:
            return peewee.Case(None, [(kind.in_(["true", "false"]), value)], None)
        return peewee.Case(None, [(kind == "text", value)], None)
    kind = peewee.fn.json_typeof(_pg_json(key))
    text = _pg_text(key)
    if value_type is ValueType.NUMBER:
        number = peewee.NodeList((text, peewee.SQL("::numeric")))
        return peewee.Case(None, [(kind == "number", number)], None)
    if value_type is ValueType.BOOLEAN:
        flag = peewee.NodeList((text, peewee.SQL("::boolean")))
        return peewee.Case(None, [(kind == "boolean", flag)], None)
    string = peewee.Case(None, [(kind == "string", text)], None)
    return peewee.NodeList((string, peewee.SQL('COLLATE "C"')), parens=True)


def is_empty(key: str) -> peewee.ColumnBase:
    """Missing, JSON null or the empty string."""
    kind = json_type(key)
    # Both sides are true or false, never NULL, so NOT(empty) is exact.
    blank = (kind == "string") & (peewee.fn.COALESCE(typed(key, ValueType.STRING), "-") == "")
    return (kind == "null") | blank


def parameter(value: Any, value_type: ValueType) -> Any:
    """A comparison value as the engine compares it: exact decimals against PostgreSQL's
    numeric, 1/0 for SQLite's JSON booleans."""
    if value_type is ValueType.NUMBER and not is_sqlite():
        return Decimal(str(value))
    if value_type is ValueType.BOOLEAN and is_sqlite():
        return int(bool(value))
    return value
