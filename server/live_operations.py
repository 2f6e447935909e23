"""Which WebSocket operation a subscription resolver runs for.

A subscription delivered by the live fan-out (``schema/live.py``) writes its own result frames,
so it needs what Strawberry's protocol handlers know and resolvers do not: the operation's id
and the protocol's result message type (``next`` for graphql-transport-ws, ``data`` for the
legacy graphql-ws). The handlers below run each operation's task with :data:`OPERATION` set;
the task's context is copied at its creation, so each operation sees its own.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler


@dataclass(frozen=True)
class OperationFrame:
    id: str
    result_type: str  # "next" or "data"


OPERATION: ContextVar[OperationFrame | None] = ContextVar("labelgraph_operation", default=None)


class TransportWSHandler(BaseGraphQLTransportWSHandler[Any, Any]):
    async def run_operation(self, operation: Operation[Any, Any]) -> None:
        OPERATION.set(OperationFrame(operation.id, "next"))
        await super().run_operation(operation)


class LegacyWSHandler(BaseGraphQLWSHandler[Any, Any]):
    async def handle_async_results(
        self,
        operation_id: str,
        query: str,
        operation_name: str | None,
        variables: dict[str, object] | None,
    ) -> None:
        OPERATION.set(OperationFrame(operation_id, "data"))
        await super().handle_async_results(operation_id, query, operation_name, variables)
