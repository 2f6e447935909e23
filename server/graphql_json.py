"""The JSON of GraphQL requests (bodies, multipart ``operations``, GET ``variables``), checked
for nesting before it is parsed: a request nested deeper than ``LABELGRAPH_MAX_JSON_DEPTH`` is
answered 400 with one GraphQL error, ``extensions.code`` ``INVALID``, and never executed (a
deep body otherwise ends in a RecursionError and a plain-text 500). Lone UTF-16 surrogates and
non-finite numbers (``1e999``, ``NaN``) are refused the same way, naming the field
(``extensions.field``, e.g. ``variables.task.data.text``): the database cannot store them."""

from __future__ import annotations

from starlette.responses import JSONResponse, Response

from server.errors import DomainError
from server.json_depth import check_json_depth
from server.json_values import loads_storable


class RefusedGraphQLBody(Exception):
    """A GraphQL request refused before execution; :meth:`response` is the answer."""

    def __init__(self, error: DomainError) -> None:
        super().__init__(error.message)
        self.error = error

    def response(self) -> Response:
        extensions = {**self.error.details, "code": self.error.code.upper()}
        extensions.pop("errors", None)
        body = {"errors": [{"message": self.error.message, "extensions": extensions}]}
        return JSONResponse(body, 400)


def decode_graphql_json(data: str | bytes, max_depth: int) -> object:
    """``json.loads`` of a GraphQL request's JSON, refused if nested deeper than ``max_depth``
    or holding a value the database cannot store."""
    try:
        check_json_depth(data, max_depth)
        return loads_storable(data)
    except DomainError as exc:
        raise RefusedGraphQLBody(exc) from None
