"""GraphQL errors: DomainErrors get a stable ``extensions.code``; anything else is logged
and masked, so no internal detail reaches a client."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import Any

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import ExecutionResult

from server.db import database_busy, is_busy
from server.errors import DomainError

log = logging.getLogger(__name__)

INTERNAL = "INTERNAL_SERVER_ERROR"
GRAPHQL_INVALID = "GRAPHQL_VALIDATION_FAILED"
GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"


def error_code(error: GraphQLError) -> str:
    return str((error.extensions or {}).get("code", INTERNAL))


def process_error(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    coded = _coded(error, original)
    # The tracebacks' frames hold the executor, which holds the errors: a cycle that would keep
    # the request's state until a garbage collection. Nothing reads them after this (an
    # unexpected error is logged with its traceback first; a GraphQLError copies its original's).
    for done in (error, original, coded):
        if done is not None:
            done.__traceback__ = None
    return coded


def _coded(error: GraphQLError, original: Exception | None) -> GraphQLError:
    if original is not None and not isinstance(original, DomainError) and is_busy(original):
        # A lock not granted within the write wait (SQLite's busy timeout, PostgreSQL's
        # lock_timeout, a deadlock): another writer's doing, worth a retry; not a bug.
        original = database_busy(f"{error.path}: {original}")
    if isinstance(original, DomainError):
        extensions = {**original.details, "code": original.code.upper()}
        return GraphQLError(
            original.message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            original_error=original,
            extensions=extensions,
        )
    if original is None or isinstance(original, GraphQLError):
        # Syntax, validation and variable coercion errors: the client's query is wrong.
        code = GRAPHQL_PARSE_FAILED if isinstance(error, GraphQLSyntaxError) else GRAPHQL_INVALID
        extensions = {"code": code, **(error.extensions or {})}
        error.extensions = extensions
        return error
    log.error("unexpected error in %s", error.path, exc_info=original)
    return GraphQLError(
        "Unexpected error.",
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions={"code": INTERNAL},
    )


class DomainErrors(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if isinstance(result, GraphQLExecutionResult | ExecutionResult) and result.errors:
            result.errors = [process_error(e) for e in result.errors]


async def with_error_codes(results: AsyncIterator[Any]) -> AsyncGenerator[Any, None]:
    """A subscription's results with their errors processed as :class:`DomainErrors` does
    for a query (the extension sees only a subscription's start)."""
    try:
        async for result in results:
            if isinstance(result, GraphQLExecutionResult | ExecutionResult) and result.errors:
                result.errors = [process_error(e) for e in result.errors]
            yield result
    finally:
        closing = getattr(results, "aclose", None)
        if closing is not None:
            await closing()
