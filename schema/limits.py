"""Query limits: abusive documents are refused before they are validated or executed.

:class:`GuardedDocuments` replaces Strawberry's ``ParserCache`` and ``ValidationCache``. For each
operation it

1. refuses a document longer than ``graphql_max_document_size`` characters without reading it
   (``DOCUMENT_TOO_LARGE``);
2. parses it, aborting after ``graphql_max_tokens`` tokens (``DOCUMENT_TOO_LARGE``); a syntax
   error answers ``GRAPHQL_PARSE_FAILED``;
3. measures its shape (:mod:`schema.query_shape`) and refuses too many aliases, too deep a
   nesting, too large a page argument or too many estimated answer values
   (``QUERY_TOO_COMPLEX``) — before validation, whose cost grows with aliases;
4. validates it.

Refusals carry ``extensions.code`` plus ``limit`` (which one), ``max`` and, where known,
``found``. Only documents up to ``CACHEABLE_DOCUMENT_SIZE`` characters enter the parse and
validation caches: a parsed document costs ~400 bytes per token, so huge ones must not stay.

The server's own stored operations (the REST facade, :mod:`schema.stored`) do not pass through
here: they are trusted, parsed and validated once per document, and no limits apply to them
(their page sizes are checked by the resolvers against ``max_page_size``); a test keeps them
within the default limits all the same.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    GraphQLSyntaxError,
    parse,
)
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from schema.query_shape import Shape, measure
from server.settings import Settings

PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
DOCUMENT_TOO_LARGE = "DOCUMENT_TOO_LARGE"
QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"

CACHEABLE_DOCUMENT_SIZE = 4096
CACHE_ENTRIES = 128
# graphql-core's message when the parser stops at max_tokens (pinned by a test).
TOKEN_LIMIT_MESSAGE = "tokens. Parsing aborted."
NESTING_LIMIT_MESSAGE = "nested too deeply"


@dataclass(frozen=True)
class QueryLimits:
    max_document_size: int
    max_tokens: int
    max_aliases: int
    max_depth: int
    max_nodes: int
    max_page_size: int

    @classmethod
    def of(cls, settings: Settings) -> QueryLimits:
        return cls(
            max_document_size=settings.graphql_max_document_size,
            max_tokens=settings.graphql_max_tokens,
            max_aliases=settings.graphql_max_aliases,
            max_depth=settings.graphql_max_depth,
            max_nodes=settings.graphql_max_nodes,
            max_page_size=settings.graphql_max_page_size,
        )


DEFAULT_LIMITS = QueryLimits.of(Settings())


def limits_for(context: Any) -> QueryLimits:
    """The limits of an operation run with ``context`` (its settings')."""
    settings = getattr(context, "settings", None)
    return QueryLimits.of(settings) if isinstance(settings, Settings) else DEFAULT_LIMITS


def refusal(code: str, message: str, limit: str, maximum: int, found: int | None) -> GraphQLError:
    extensions: dict[str, Any] = {"code": code, "limit": limit, "max": maximum}
    if found is not None:
        extensions["found"] = found
    return GraphQLError(message, extensions=extensions)


def parse_document(query: str, limits: QueryLimits | None) -> DocumentNode:
    """Parse ``query`` within ``limits`` (cached when small); raise a coded GraphQLError."""
    if limits is not None and len(query) > limits.max_document_size:
        raise refusal(
            DOCUMENT_TOO_LARGE,
            f"The document has {len(query)} characters, more than the "
            f"{limits.max_document_size} allowed; pass large values as variables.",
            "documentSize",
            limits.max_document_size,
            len(query),
        )
    max_tokens = limits.max_tokens if limits is not None else None
    try:
        if len(query) <= CACHEABLE_DOCUMENT_SIZE:
            return _cached_parse(query, max_tokens)
        return parse(query, max_tokens=max_tokens)
    except GraphQLSyntaxError as error:
        if max_tokens is not None and TOKEN_LIMIT_MESSAGE in error.message:
            raise refusal(
                DOCUMENT_TOO_LARGE,
                f"The document has more than the {max_tokens} tokens allowed; pass large "
                "values as variables.",
                "tokens",
                max_tokens,
                None,
            ) from None
        if NESTING_LIMIT_MESSAGE in error.message:
            raise _too_deep(limits) from None
        error.extensions = {**(error.extensions or {}), "code": PARSE_FAILED}
        raise
    except RecursionError:
        raise _too_deep(limits) from None


def _too_deep(limits: QueryLimits | None) -> GraphQLError:
    maximum = (limits or DEFAULT_LIMITS).max_depth
    message = f"The document is nested too deeply; at most {maximum} levels allowed."
    return refusal(QUERY_TOO_COMPLEX, message, "depth", maximum, None)


def check_shape(shape: Shape, limits: QueryLimits) -> None:
    """Raise a QUERY_TOO_COMPLEX refusal when ``shape`` exceeds ``limits``."""
    checks = (
        ("aliases", shape.aliases, limits.max_aliases, "The document uses {found} aliases"),
        ("depth", shape.depth, limits.max_depth, "The query nests fields {found} deep"),
        (
            "pageSize",
            shape.page,
            limits.max_page_size,
            f"`{shape.page_field}` asks for a page of {{found}} items (page with `after`)",
        ),
        (
            "nodes",
            shape.nodes,
            limits.max_nodes,
            "The answer could hold about {found} values (ask for smaller pages, fewer fields "
            "or fewer aliases)",
        ),
    )
    for limit, found, maximum, what in checks:
        if found > maximum:
            message = what.format(found=found) + f"; at most {maximum} allowed."
            raise refusal(QUERY_TOO_COMPLEX, message, limit, maximum, found)


@functools.lru_cache(maxsize=CACHE_ENTRIES)
def _cached_parse(query: str, max_tokens: int | None) -> DocumentNode:
    return parse(query, max_tokens=max_tokens)


class _SmallDocument:
    """A parsed small document as a cache key: equal and hashed by its text and token limit
    (Python keeps a string's hash), not by its syntax tree, which a key of the parsed document
    would hash whole on every lookup."""

    __slots__ = ("document", "key")

    def __init__(self, query: str, max_tokens: int | None, document: DocumentNode) -> None:
        self.key = (query, max_tokens)
        self.document = document

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _SmallDocument) and self.key == other.key


@functools.lru_cache(maxsize=CACHE_ENTRIES)
def _cached_validation(
    schema: GraphQLSchema, parsed: _SmallDocument, rules: tuple[type[ASTValidationRule], ...]
) -> list[GraphQLError]:
    return validate_document(schema, parsed.document, rules)


class GuardedDocuments(SchemaExtension):
    """Parse within the limits, refuse abusive shapes, validate; cache small documents."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        self._parsed: _SmallDocument | None = None
        if context.query and context.graphql_document is None:
            limits = limits_for(context.context)
            document = parse_document(context.query, limits)
            check_shape(measure(document, context.schema._schema, context.variables), limits)
            context.graphql_document = document
            if len(context.query) <= CACHEABLE_DOCUMENT_SIZE:  # parsed through the cache
                max_tokens = limits.max_tokens if limits is not None else None
                self._parsed = _SmallDocument(context.query, max_tokens, document)
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        parsed = getattr(self, "_parsed", None)
        cached = (
            parsed is not None
            and context.graphql_document is parsed.document
            and context.pre_execution_errors is None
        )
        if cached:
            assert parsed is not None
            rules = tuple(context.validation_rules)
            errors = _cached_validation(context.schema._schema, parsed, rules)
            context.pre_execution_errors = list(errors)
        yield
