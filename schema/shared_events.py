"""Each subscription event's answer computed once per distinct document, not per subscriber.

graphql-core executes a subscription's selection set for every event and every subscriber:
~0.2 ms each, so 200 subscribers cost the event loop ~40 ms per event. The answer depends only
on the event, the document and its variables (subscription fields check what a subscriber may
see when it subscribes; the event types' fields read only the event), so subscribers of the
same parsed document (the parse cache shares it) and variables share one execution, kept in
the event's memo for as long as the event lives.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from graphql import OperationType
from graphql.execution.executor import CollectedErrors
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from server.services.events import Event


def _variables_key(values: Any) -> str | None:
    try:
        return orjson.dumps(values, option=orjson.OPT_SORT_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):
        return None


class SharedEventExecution(StrawberryGraphQLCoreExecutionContext):
    def build_per_event_executor(self, payload: Any) -> SharedEventExecution:
        """graphql-core's, without ``copy.copy``: the same shallow copy of the attributes
        (the class has no slots) in ~2 µs instead of ~25 µs, paid per subscriber and event."""
        executor = object.__new__(type(self))
        executor.__dict__.update(self.__dict__)
        executor.root_value = payload
        executor.collected_errors = CollectedErrors()
        return executor

    def execute_operation(self, serially: bool | None = None) -> Any:
        event = getattr(self.root_value, "event", None)
        if not isinstance(event, Event) or self.operation.operation != OperationType.SUBSCRIPTION:
            return super().execute_operation(serially)
        variables = _variables_key(self.variable_values.coerced)
        if variables is None:
            return super().execute_operation(serially)
        key = f"execution:{id(self.operation)}:{variables}"
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
