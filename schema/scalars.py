"""Shared scalar helpers."""

from __future__ import annotations

import datetime as dt

from strawberry.scalars import JSON

__all__ = ["JSON", "from_seconds"]


def from_seconds(seconds: int | None) -> dt.datetime | None:
    return None if seconds is None else dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
