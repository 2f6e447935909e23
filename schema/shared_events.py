"""Each subscription event's answer computed once per distinct document, not per subscriber.

graphql-core executes a subscription's selection set for every event and every subscriber:
~0.2 ms each, so 200 subscribers cost the event loop ~40 ms per event. The answer depends only
on the event, the document and its variables (subscription fields check what a subscriber may
see when it subscribes; the event types' fields read only the event), so subscribers of the
same parsed document (the parse cache shares it), variables and role share one execution, kept
in the event's memo for as long as the event lives.

The live fan-out goes further (``schema/live.py``): :data:`SUBSCRIPTION_EXECUTOR` hands the
subscription's executor to its resolver, and :func:`render_event` executes an event with it and
encodes the result once for every subscriber of the same key (:func:`sharing_key`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from contextvars import ContextVar
from typing import Any

import orjson
from graphql import (
    ExecutionResult,
    GraphQLField,
    GraphQLObjectType,
    GraphQLResolveInfo,
    OperationType,
)
from graphql.execution.executor import CollectedErrors
from graphql.language import FieldNode
from graphql.pyutils import Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from schema.acyclic import weak_async_helpers
from schema.errors import process_error
from server.live_frames import encode_json
from server.services.events import Event


def _variables_key(values: Any) -> str | None:
    try:
        return orjson.dumps(values, option=orjson.OPT_SORT_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):
        return None


def _role(context: Any) -> object:
    principal = getattr(context, "principal", None)
    return getattr(principal, "role", None)


class SharedEventExecution(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.async_helpers = weak_async_helpers(self)  # no cycle to collect: schema/acyclic.py

    def build_resolve_info(
        self,
        field_def: GraphQLField,
        field_nodes: list[FieldNode],
        parent_type: GraphQLObjectType,
        path: Path,
    ) -> GraphQLResolveInfo[Any]:
        """Also: the subscription's executor for its resolver (:data:`SUBSCRIPTION_EXECUTOR`),
        set in the operation's task just before graphql-core calls the resolver."""
        if path.prev is None and self.operation.operation == OperationType.SUBSCRIPTION:
            SUBSCRIPTION_EXECUTOR.set(self)
        return super().build_resolve_info(field_def, field_nodes, parent_type, path)

    def build_per_event_executor(self, payload: Any) -> SharedEventExecution:
        """graphql-core's, without ``copy.copy``: the same shallow copy of the attributes
        (the class has no slots) in ~2 µs instead of ~25 µs, paid per subscriber and event."""
        executor = object.__new__(type(self))
        executor.__dict__.update(self.__dict__)
        executor.root_value = payload
        executor.collected_errors = CollectedErrors()
        executor.async_helpers = weak_async_helpers(executor)
        return executor

    def execute_operation(self, serially: bool | None = None) -> Any:
        event = getattr(self.root_value, "event", None)
        if not isinstance(event, Event) or self.operation.operation != OperationType.SUBSCRIPTION:
            return super().execute_operation(serially)
        variables = _variables_key(self.variable_values.coerced)
        if variables is None:
            return super().execute_operation(serially)
        key = f"execution:{id(self.operation)}:{variables}:{_role(self.context_value)}"
        cached = event.memo.get(key)
        if cached is not None and cached[0] is self.operation:
            return _shared(cached[1])
        result = super().execute_operation(serially)
        if self.is_awaitable(result):
            result = asyncio.ensure_future(result)
        event.memo[key] = (self.operation, result)
        return _shared(result)


def _shared(result: Any) -> Any:
    if isinstance(result, asyncio.Future):
        return asyncio.shield(result)
    return result


SUBSCRIPTION_EXECUTOR: ContextVar[SharedEventExecution | None] = ContextVar(
    "labelgraph_subscription_executor", default=None
)


def sharing_key(executor: SharedEventExecution) -> Hashable | None:
    """Subscribers with the same key get the same bytes for an event: the same parsed
    operation (the executor holds it, so its id is not reused meanwhile), variables and role.
    None: variables that cannot be compared."""
    variables = _variables_key(executor.variable_values.coerced)
    if variables is None:
        return None
    return (id(executor.operation), variables, _role(executor.context_value))


async def render_event(executor: SharedEventExecution, payload: Any) -> bytes:
    """The JSON of a subscription result message's ``payload`` for one event, as Strawberry
    sends it (``data``, and ``errors`` with their ``extensions.code``)."""
    result = executor.build_per_event_executor(payload).execute_operation(False)
    if executor.is_awaitable(result):
        result = await result
    assert isinstance(result, ExecutionResult)
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [process_error(error).formatted for error in result.errors]
    return encode_json(body).encode()
