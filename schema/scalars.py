"""Shared scalar helpers."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Strawberry declares JSON as ``NewType("JSON", object)``, so every resolver returning a
    # decoded JSON document would need a cast; to the type checker a JSON value is any value.
    JSON = Any
else:
    from strawberry.scalars import JSON

__all__ = ["JSON", "from_seconds"]


def from_seconds(seconds: int | None) -> dt.datetime | None:
    return None if seconds is None else dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
