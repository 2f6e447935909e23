"""Typed forms of the few peewee calls the tests make that its stubs (peewee-stubs) leave
unannotated or type too narrowly; each does exactly what the plain call does."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import peewee


def execute_sql(database: peewee.Database, sql: str, params: Sequence[Any] | None = None) -> Any:
    """``database.execute_sql(sql, params)``: its cursor (unannotated in the stubs)."""
    run: Callable[[str, Sequence[Any] | None], Any] = database.execute_sql
    return run(sql, params)


def connection(database: peewee.Database) -> Any:
    """``database.connection()``: the driver's connection (unannotated in the stubs)."""
    get: Callable[[], Any] = database.connection
    return get()


def tuple_rows(query: peewee.BaseQuery) -> Iterable[tuple[Any, ...]]:
    """``query.tuples()``: its rows as tuples (the stubs have a model's query yield instances
    of the model whatever its row type)."""
    return query.tuples()
