"""The schema's types under Strawberry's own resolvers, to compare the lean resolvers'
answers with (tests of schema/lean_fields.py)."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import ExecutionResult

from schema import Mutation, Query
from schema.context import Context
from schema.scalars import CHECKED_JSON
from server import db
from server.principal import Principal
from tests.conftest import GraphQL


def strawberry_resolution() -> strawberry.Schema:
    """The same types under Strawberry's own resolvers (no lean fields, no extensions)."""
    return strawberry.Schema(query=Query, mutation=Mutation, scalar_overrides={JSON: CHECKED_JSON})


def execute(
    target: strawberry.Schema,
    gql: GraphQL,
    query: str,
    variables: dict[str, Any] | None = None,
    principal: Principal | None = None,
) -> ExecutionResult:
    """``query`` run by ``target`` in the test project, as ``principal`` (else the context's)."""
    context = Context(settings=gql.settings, project_id=gql.project_id)
    if principal is not None:
        context.principal = principal
    result: ExecutionResult = db.with_connection(
        target.execute_sync, query, variables or {}, context_value=context
    )
    return result
