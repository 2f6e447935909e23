"""The server's own stored operations (the REST facade): parsed and validated once per document.

A REST request runs one stored operation. Through ``Schema.execute_sync`` each run would set up
Strawberry's execution context and extension hooks, look the document up in the parse and
validation caches (hashing its whole syntax tree for the latter) and measure nothing it needs:
about half the time of a small operation. Here the document is parsed and validated the first
time it runs and kept with what the schema's extensions would derive from it; each run then
calls graphql-core's executor on the same schema, resolvers and scalars, and does per request
only what the extensions do per request:

* :class:`schema.context.SessionWrites`: ``context.writes`` is set for a mutation;
* :class:`schema.errors.DomainErrors`: errors get their ``extensions.code`` (unexpected ones
  are logged and masked);
* :class:`schema.limits.GuardedDocuments`: nothing; stored operations are trusted (a test keeps
  them within the default limits all the same).

A test pins the schema's extension list, so an extension added later has to be given its
stored-operation counterpart here too.

:class:`OperationThreads` runs them off the event loop: ``loop.run_in_executor`` on a pool the
application's lifespan owns, about 25 µs of CPU cheaper per request than
``anyio.to_thread.run_sync`` (no capacity limiter, no cancel scope, no per-call thread-local
bookkeeping); the pool's size bounds the number of concurrent operations as anyio's default
limiter did.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    execute,
    parse,
    validate,
)
from strawberry.execution import optimized_is_awaitable
from strawberry.types.execution import ExecutionResult

from schema.context import Context
from schema.errors import process_error
from server.db import with_connection

P = ParamSpec("P")
T = TypeVar("T")

# As many operations at once as anyio's default thread limiter allowed.
OPERATION_THREADS = 40


@dataclass(frozen=True)
class PreparedOperation:
    """A stored document after parsing and validation (``errors`` when it is not valid)."""

    document: DocumentNode | None
    errors: tuple[GraphQLError, ...]
    is_mutation: bool


def prepare(schema: GraphQLSchema, source: str, operation_name: str) -> PreparedOperation:
    try:
        document = parse(source)
    except GraphQLError as error:
        return PreparedOperation(None, (process_error(error),), False)
    errors = validate(schema, document)
    if errors:
        return PreparedOperation(None, tuple(process_error(e) for e in errors), False)
    is_mutation = any(
        isinstance(node, OperationDefinitionNode)
        and node.name is not None
        and node.name.value == operation_name
        and node.operation is OperationType.MUTATION
        for node in document.definitions
    )
    return PreparedOperation(document, (), is_mutation)


class StoredOperations:
    """Prepared stored documents by (source, operation name); a source is prepared once."""

    def __init__(self, schema: GraphQLSchema) -> None:
        self._schema = schema
        self._prepared: dict[tuple[str, str], PreparedOperation] = {}
        self._lock = threading.Lock()

    def prepared(self, source: str, operation_name: str) -> PreparedOperation:
        key = (source, operation_name)
        found = self._prepared.get(key)
        if found is None:
            with self._lock:
                found = self._prepared.get(key)
                if found is None:
                    found = prepare(self._schema, source, operation_name)
                    self._prepared[key] = found
        return found

    def execute(
        self, source: str, variables: dict[str, Any], context: Any, operation_name: str
    ) -> ExecutionResult:
        """Run a stored operation synchronously (on the caller's thread)."""
        prepared = self.prepared(source, operation_name)
        if prepared.document is None:
            return ExecutionResult(data=None, errors=list(prepared.errors))
        if isinstance(context, Context):
            context.writes = prepared.is_mutation
        try:
            result = execute(
                self._schema,
                prepared.document,
                variable_values=variables,
                context_value=context,
                operation_name=operation_name,
                is_awaitable=optimized_is_awaitable,  # type: ignore[arg-type]
            )
            if inspect.isawaitable(result):
                raise RuntimeError(f"{operation_name} did not complete synchronously")
        except Exception as exc:  # as Strawberry's execute_sync: an error answer, logged
            error = GraphQLError(str(exc), original_error=exc)
            return ExecutionResult(data=None, errors=[process_error(error)])
        errors = [process_error(e) for e in result.errors] if result.errors else None
        return ExecutionResult(data=result.data, errors=errors)


class OperationThreads:
    """The worker threads stored operations run on, each call holding a pooled database
    connection (as :func:`server.db.run_db`). Made and closed by the application's lifespan."""

    def __init__(self, size: int = OPERATION_THREADS) -> None:
        self._pool = ThreadPoolExecutor(size, thread_name_prefix="labelgraph-operation")

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        call = functools.partial(with_connection, fn, *args, **kwargs)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, contextvars.copy_context().run, call)

    def close(self) -> None:
        """Wait for running operations, then stop the threads."""
        self._pool.shutdown(wait=True)
