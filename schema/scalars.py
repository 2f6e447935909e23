"""Shared scalar helpers, and the JSON scalar's input check."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from graphql import GraphQLError, ValueNode, value_from_ast_untyped
from strawberry.types.scalar import ScalarDefinition, scalar

from server.errors import DomainError
from server.json_values import refuse_unstorable

if TYPE_CHECKING:
    # Strawberry declares JSON as ``NewType("JSON", object)``, so every resolver returning a
    # decoded JSON document would need a cast; to the type checker a JSON value is any value.
    JSON = Any
else:
    from strawberry.scalars import JSON

__all__ = ["CHECKED_JSON", "JSON", "from_seconds"]

_ECMA_404 = (
    "https://ecma-international.org/wp-content/uploads/ECMA-404_2nd_edition_december_2017.pdf"
)


def _refused(error: DomainError) -> GraphQLError:
    return GraphQLError(error.message, extensions={**error.details, "code": "INVALID"})


def _parse_json_value(value: object) -> object:
    """A JSON variable: refused (``INVALID``, ``extensions.field``) when it holds a lone
    surrogate or a non-finite number, which no store keeps (GraphQL over HTTP refuses those
    while decoding the request; this covers every other caller)."""
    try:
        refuse_unstorable(value)
    except DomainError as exc:
        raise _refused(exc) from None
    return value


def _parse_json_literal(node: ValueNode, variables: dict[str, Any] | None = None) -> object:
    """A JSON literal in a document: ``1e999`` parses to infinity, so it is checked too."""
    return _parse_json_value(value_from_ast_untyped(node, variables))


# Strawberry's JSON scalar (same name, description and SDL) with checked input.
CHECKED_JSON: ScalarDefinition = scalar(
    name="JSON",
    description=(
        f"The `JSON` scalar type represents JSON values as specified by [ECMA-404]({_ECMA_404})."
    ),
    specified_by_url=_ECMA_404,
    serialize=lambda v: v,
    parse_value=_parse_json_value,
    parse_literal=_parse_json_literal,
)


def from_seconds(seconds: int | None) -> dt.datetime | None:
    return None if seconds is None else dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
