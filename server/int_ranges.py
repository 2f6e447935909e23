"""The integer ranges the stores accept, for values that arrive inside JSON documents.

GraphQL's ``Int`` arguments are 32-bit already; integers inside ``JSON`` values are not bounded
at all, and a database parameter beyond 64 bits fails in the driver (SQLite: OverflowError),
an INTEGER column beyond 32 bits on PostgreSQL ("integer out of range").
"""

from __future__ import annotations

from typing import TypeGuard

INT32_MAX = 2**31 - 1  # PostgreSQL INTEGER: ids (SERIAL) and Unix-second timestamps
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # a query parameter on both backends


def is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def fits_query(value: object) -> TypeGuard[int]:
    """An integer both databases accept as a parameter (e.g. an id to look up)."""
    return is_int(value) and INT64_MIN <= value <= INT64_MAX


def is_timestamp(value: object) -> TypeGuard[int]:
    """Unix seconds an INTEGER column stores on both backends (up to 2038-01-19)."""
    return is_int(value) and 0 <= value <= INT32_MAX
