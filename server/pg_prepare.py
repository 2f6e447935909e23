"""Server-side prepared statements for PostgreSQL, per connection.

psycopg2 sends every statement as text with its parameters inlined, so PostgreSQL parses,
analyses and plans it anew each time: on the annotator's requests that planning cost more than
running the statements (``bench/load/request_cpu.py --statements``: ``next`` ~500 µs planning
for ~100 µs execution, a completion ~1.7 ms for ~0.7 ms). psycopg2 has no automatic
preparation; :class:`Statements` gives each connection one.

* A statement is prepared on the second time it **ran successfully** on the connection
  (``PREPARE lg_<n> AS …`` with psycopg2's ``%s`` rewritten as ``$1…``), in one extra round
  trip that also reads the parameter types PostgreSQL inferred; from the third time it is sent
  as ``EXECUTE lg_<n> (…)``. PostgreSQL then plans it once (a generic plan, once its
  ``plan_cache_mode=auto`` finds it no worse than the custom ones) or at least skips parsing.
* Only plain ``SELECT``/``INSERT``/``UPDATE``/``DELETE``/``WITH`` statements with positional
  parameters and no ``$`` are prepared (a text of up to 4 of them, split at ``;`` when it holds
  no quote or comment, as a prepared statement each, executed in one round trip), of at most
  :data:`MAX_SQL` characters and :data:`MAX_PARAMS` parameters (DDL, ``COPY``, ``SET`` and
  bulk inserts are sent as they are).
* An ``int`` after ``LIMIT`` is written into the prepared text (:func:`dollar_parameters`), so
  that PostgreSQL can keep one generic plan for it (``.first()``, ``LIMIT 1`` seeks).
* Same answers as unprepared: psycopg2 inlines a string or ``NULL`` as an untyped literal,
  which PostgreSQL types from its context exactly as it types ``$n``; other values (numbers,
  booleans, bytes, dates, JSON, lists) carry a type of their own. So a call runs the prepared
  statement only when each value is a string, ``None`` or of a Python type that the inferred
  parameter type takes as psycopg2 would (an ``int`` for an integer parameter…); otherwise
  (``SELECT %s`` with an int: PostgreSQL inferred ``text``) the statement is sent unprepared.
* A ``PREPARE`` that fails (a parameter whose type PostgreSQL cannot infer, ``$1 IS NULL``)
  never breaks the caller's transaction: inside one it runs under a savepoint, rolled back on
  failure; the statement is then never prepared on that connection. ``PREPARE`` is not undone
  by a rollback, so a statement prepared in a transaction that fails later stays valid.
* At most ``size`` statements per connection (least recently used evicted, ``DEALLOCATE`` sent
  with the next ``PREPARE``). A connection that runs DDL (``CREATE``/``ALTER``/``DROP``…, the
  migrations) drops its statements (``DEALLOCATE ALL``); a closed connection takes its
  statements with it (they live on the connection object). PostgreSQL replans a prepared
  statement itself when a table it reads changes; should a column it returns change type on
  another connection (``cached plan must not change result type``), the statement is dropped
  and, outside a transaction, run again unprepared.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import uuid
from collections.abc import Sequence
from typing import Any

import psycopg2.extensions
from psycopg2.extras import Json

MAX_SQL = 8000  # characters: longer statements (bulk inserts) are not prepared
MAX_PARAMS = 100
_PREPARABLE = ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH ", "(SELE")
_DDL = ("CREATE", "ALTER ", "DROP ", "TRUNCA", "COMMEN", "GRANT ", "REVOKE")
_SEEN_MAX = 512  # statements remembered as run once, per connection
_REFUSED_MAX = 256  # statements remembered as not preparable, per connection

_ALWAYS: frozenset[type] = frozenset({type(None), str})
_INTEGERS = frozenset({"smallint", "integer", "bigint"})
_NUMBERS = frozenset({"numeric", "real", "double precision"})


def accepted_types(parameter_type: str) -> frozenset[type]:
    """The Python types whose values psycopg2 inlines as a literal that PostgreSQL turns into
    ``parameter_type`` as it would turn ``$n`` (strings and None: always, being untyped)."""
    if parameter_type in _INTEGERS:
        return _ALWAYS | {int}
    if parameter_type in _NUMBERS:
        return _ALWAYS | {int, float, decimal.Decimal}
    if parameter_type == "boolean":
        return _ALWAYS | {bool}
    if parameter_type == "bytea":
        return _ALWAYS | {bytes, bytearray, memoryview}
    if parameter_type.startswith("timestamp"):
        return _ALWAYS | {datetime.datetime}
    if parameter_type == "date":
        return _ALWAYS | {datetime.date}
    if parameter_type in ("json", "jsonb"):
        return _ALWAYS | {Json}
    if parameter_type == "uuid":
        return _ALWAYS | {uuid.UUID}
    if parameter_type.endswith("[]"):
        return _ALWAYS | {list}
    return _ALWAYS


def dollar_parameters(
    sql: str, params: Sequence[Any]
) -> tuple[list[str], list[int], list[int]] | None:
    """``sql`` split into its statements (at ``;``), each with psycopg2's ``%s`` as ``$1``,
    ``$2``… and ``%%`` as ``%`` (psycopg2 reads them so wherever they are, quotes or not); the
    number of ``$n`` of each; and the indexes of the parameters written into the text instead:
    an ``int`` right after ``LIMIT`` (a plan for ``LIMIT $1`` assumes a tenth of the rows, so
    PostgreSQL would plan such a statement anew each time; the value is part of the prepared
    statement, and calls with another value run it unprepared). None unless the text holds
    exactly ``len(params)`` placeholders and no other ``%`` sequence."""
    parts = sql.split("%")
    made = [parts[0]]
    counts = [0] * (parts[0].count(";") + 1)
    used = 0
    fixed: list[int] = []
    index = 1
    while index < len(parts):
        part = parts[index]
        if part.startswith("s"):
            if used >= len(params):
                return None
            value = params[used]
            if value.__class__ is int and made[-1].endswith("LIMIT "):
                made.append(str(value))
                fixed.append(used)
            else:
                counts[-1] += 1
                made.append(f"${counts[-1]}")
            used += 1
            text = part[1:]
            index += 1
        elif part == "" and index + 1 < len(parts):  # "%%"
            text = "%" + parts[index + 1]
            index += 2
        else:
            return None
        made.append(text)
        counts.extend([0] * text.count(";"))
    if used != len(params):
        return None
    return [piece.strip() for piece in "".join(made).split(";")], counts, fixed


class Prepared:
    """A prepared statement (or the few of a multi-statement text): their names, the text that
    executes them, the types accepted for each parameter, the parameters fixed in the text."""

    __slots__ = ("accepted", "execute", "fixed", "keep", "names")

    def __init__(
        self,
        names: list[str],
        params: Sequence[Any],
        counts: list[int],
        fixed: list[int],
        parameter_types: list[str],
    ) -> None:
        self.names = names
        self.fixed = tuple((index, params[index]) for index in fixed)
        self.keep = tuple(i for i in range(len(params)) if i not in fixed) if fixed else None
        executes = []
        for name, count in zip(names, counts, strict=True):
            marks = ", ".join(["%s"] * count)
            executes.append(f"EXECUTE {name} ({marks})" if count else f"EXECUTE {name}")
        self.execute = "; ".join(executes)
        self.accepted = tuple(accepted_types(t) for t in parameter_types)

    def arguments(self, params: Any) -> Any:
        """The values to send with :attr:`execute` for ``params``, or None when the prepared
        statement would not give the answer the text gives (see :func:`accepted_types`)."""
        if self.keep is None:
            for value, accepted in zip(params, self.accepted, strict=True):
                if value.__class__ not in accepted:
                    return None
            return params
        for index, value in self.fixed:
            if params[index] != value or params[index].__class__ is not int:
                return None
        kept = [params[index] for index in self.keep]
        for value, accepted in zip(kept, self.accepted, strict=True):
            if value.__class__ not in accepted:
                return None
        return kept


class Statements:
    """A connection's prepared statements (LRU, at most ``size``) and what it knows about the
    statements it has not prepared (run once; not preparable)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.prepared: collections.OrderedDict[str, Prepared] = collections.OrderedDict()
        self.seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self.refused: collections.OrderedDict[str, None] = collections.OrderedDict()
        self.evicted: list[str] = []  # names to DEALLOCATE with the next PREPARE
        self.numbers = 0
        self.prepares = 0  # PREPAREs sent (for tests and benchmarks)

    def clear(self) -> None:
        """Forget every statement (after ``DEALLOCATE ALL``)."""
        self.prepared.clear()
        self.seen.clear()
        self.refused.clear()
        self.evicted.clear()

    def refuse(self, sql: str) -> None:
        self.refused[sql] = None
        if len(self.refused) > _REFUSED_MAX:
            self.refused.popitem(last=False)

    def ready(self, sql: str, params: Any) -> bool:
        """After ``sql`` ran successfully: True when it should be prepared now (its second
        successful run); remembers the first run or that it is not preparable."""
        if sql in self.refused or len(sql) > MAX_SQL:
            return False
        if sql in self.seen:
            del self.seen[sql]
            return True
        if (
            not isinstance(params, (list, tuple))
            or len(params) > MAX_PARAMS
            or "$" in sql
            or not all(
                piece.lstrip()[:6].upper().startswith(_PREPARABLE) for piece in sql.split(";")
            )
            or (";" in sql and ("'" in sql or "--" in sql or sql.count(";") > 3))
        ):
            self.refuse(sql)
            return False
        self.seen[sql] = None
        if len(self.seen) > _SEEN_MAX:
            self.seen.popitem(last=False)
        return False

    def next_name(self) -> str:
        self.numbers += 1
        return f"lg_{self.numbers}"

    def add(self, sql: str, prepared: Prepared) -> None:
        self.prepared[sql] = prepared
        while len(self.prepared) > self.size:
            _, old = self.prepared.popitem(last=False)
            self.evicted.extend(old.names)


def is_ddl(sql: str) -> bool:
    """Whether ``sql`` changes the schema (a connection drops its statements after it)."""
    return sql.lstrip()[:6].upper().startswith(_DDL)


class PreparingConnection(psycopg2.extensions.connection):
    """A psycopg2 connection carrying its :class:`Statements` (created empty with the
    connection; gone with it)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lg_statements: Statements | None = None
