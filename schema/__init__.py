"""The GraphQL schema: Query and Mutation combined from the per-domain modules.

Operations execute synchronously on a worker thread (``ThreadedSchema.execute``): the event
loop never waits on the database, each operation uses one pooled connection, and sync
execution is faster than async for this workload (STYLE.md §5).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.scalars import JSON
from strawberry.types.execution import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from schema.auth import AuthMutation, AuthQuery
from schema.completions import CompletionMutation
from schema.context import SessionWrites
from schema.datamanager import ViewMutation
from schema.datamanager_actions import TaskActionMutation, TaskActionQuery
from schema.errors import DomainErrors, process_error, with_error_codes
from schema.export import ExportMutation, ExportQuery
from schema.export_jobs import ExportJobMutation
from schema.imports import ImportMutation, ImportQuery
from schema.label_config import LabelConfigQuery
from schema.lean_execution import LeanExecution
from schema.lean_fields import install as install_lean_fields
from schema.limits import GuardedDocuments
from schema.live import Subscription
from schema.meta import MetaQuery
from schema.ml import MLMutation, MLQuery
from schema.projects import ProjectMutation, ProjectQuery
from schema.scalars import CHECKED_JSON
from schema.storage import StorageMutation
from schema.stored import OperationThreads, StoredOperations
from schema.tasks import TaskMutation, TaskQuery
from schema.webhooks import WebhookMutation, WebhookQuery
from schema.write_lane import is_short_write
from server.db import run_db
from server.errors import DomainError
from server.state_values import state_value


@strawberry.type
class Query(
    ProjectQuery,
    TaskQuery,
    MetaQuery,
    ExportQuery,
    LabelConfigQuery,
    ImportQuery,
    MLQuery,
    AuthQuery,
    WebhookQuery,
    TaskActionQuery,
):
    pass


@strawberry.type
class Mutation(
    ProjectMutation,
    TaskMutation,
    CompletionMutation,
    ImportMutation,
    ExportMutation,
    ExportJobMutation,
    MLMutation,
    StorageMutation,
    AuthMutation,
    WebhookMutation,
    ViewMutation,
    TaskActionMutation,
):
    pass


class ThreadedSchema(strawberry.Schema):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Plain object fields resolve by calling their method (schema/lean_fields.py).
        self.lean_fields = install_lean_fields(self)
        self.stored_operations = StoredOperations(self._schema)

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Expected errors (DomainErrors, bad queries) are answers, not incidents: only
        unexpected ones are logged, by :mod:`schema.errors`."""

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        # On the application's operation threads, as the REST facade's operations: about half
        # the CPU of a hop through anyio's thread pool (schema/stored.py).
        short = is_short_write(query, operation_name, context_value)
        threads = _operation_threads(context_value, "write_lane" if short else "operation_threads")
        run = run_db if threads is None else threads.run
        return await _run_operation(
            run,
            self.execute_sync,
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed_operation_types,
            operation_extensions,
        )

    async def stream(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
    ) -> Any:
        """Operations over a WebSocket: subscriptions only. Queries and mutations would run
        their synchronous resolvers on the event loop there; they belong on HTTP. Each
        result's errors get their ``extensions.code`` as on HTTP (:mod:`schema.errors`)."""
        results = await super().stream(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            operation_extensions,
            (OperationType.SUBSCRIPTION,),
        )
        return with_error_codes(results)

    async def execute_stored(
        self,
        document: str,
        variable_values: dict[str, Any],
        context_value: Any,
        operation_name: str,
        threads: OperationThreads | None = None,
    ) -> ExecutionResult:
        """Run one of the server's own stored operations (the REST facade) on a worker thread
        (of ``threads``, else anyio's): parsed and validated once per document, no query
        limits (see :mod:`schema.stored`)."""
        run = run_db if threads is None else threads.run
        return await _run_operation(
            run,
            self.stored_operations.execute,
            document,
            variable_values,
            context_value,
            operation_name,
        )


async def _run_operation(
    run: Callable[..., Awaitable[ExecutionResult]],
    execute: Callable[..., ExecutionResult],
    *args: Any,
) -> ExecutionResult:
    """``run(execute, *args)``: an operation on a worker thread holding a pooled connection.
    Errors of the operation are in its result; one refused before it ran (no connection came
    free, :func:`server.db.no_free_connection`) is answered the same way, with its code."""
    try:
        return await run(execute, *args)
    except DomainError as error:
        coded = process_error(GraphQLError(error.message, original_error=error))
        return ExecutionResult(data=None, errors=[coded])


def _operation_threads(context: Any, name: str = "operation_threads") -> OperationThreads | None:
    """The operation threads (or the write lane: ``name``) of the application serving
    ``context``'s request, if any."""
    request = getattr(context, "request", None)
    state = getattr(getattr(request, "app", None), "state", None)
    threads = state_value(state, name)
    return threads if isinstance(threads, OperationThreads) else None


schema = ThreadedSchema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    execution_context_class=LeanExecution,
    extensions=[GuardedDocuments, DomainErrors, SessionWrites],
    scalar_overrides={JSON: CHECKED_JSON},
)
