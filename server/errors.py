"""The one error type services raise on purpose, and its stable codes.

GraphQL turns ``code`` into ``extensions.code``; the REST facade maps it to a status.
"""

from __future__ import annotations

from typing import Any, Literal

ErrorCode = Literal[
    "not_found",  # the thing asked for does not exist
    "invalid",  # bad argument or body
    "invalid_tasks",  # task validation failed; details["errors"] lists LS messages
    "invalid_label_config",  # details["errors"] lists LS messages
    "not_allowed",  # forbidden by a project setting
    "too_large",  # over a configured size limit
    "conflict",  # clashes with the current state
    "ml_backend",  # an ML backend failed
    "fetch_failed",  # a URL import could not be downloaded (or was refused)
    "storage",  # a storage (S3, Redis) could not be reached or refused
    "unauthenticated",  # nobody signed in, and the action needs someone (REST 401)
    "forbidden",  # the signed-in user's role or ownership does not allow it (REST 403)
    "invalid_credentials",  # a wrong user name or password at sign-in (REST 401)
    "too_many_attempts",  # too many failed sign-ins from this address (REST 429)
    "subscriber_overflow",  # a subscription fell too far behind and was closed
    "too_many_subscriptions",  # the server's subscription limit is reached
    "bad_filter",  # a task filter or ordering names an unknown field/operator or a bad value
    "database_busy",  # a write waited the write wait for its turn or a lock (REST 503)
]


class DomainError(Exception):
    def __init__(self, code: ErrorCode, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message
        self.details = details or {}

    def __repr__(self) -> str:
        return f"DomainError({self.code!r}, {self.message!r})"


def not_found(what: str, ident: object) -> DomainError:
    return DomainError("not_found", f"{what} {ident} not found", {"id": ident})
