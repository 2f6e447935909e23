"""Direct resolvers for the schema's plain object fields (the bulk of a page's fields).

Strawberry resolves a field that has a resolver method through a generic chain, per field and
per object: it converts the (absent) arguments, builds an ``Info``, inspects the resolver's
parameters and folds the field extensions (none) into nested partials, then calls the method.
A page of 100 tasks with their completions and predictions resolves ~1,000 such fields, and
that chain costs more than the method itself: it was most of the time of a GraphQL page.

:func:`install` gives each such field of an object type a resolver that calls the method
directly: ``method(source)`` or ``method(source, info=Info(...))``. It only takes fields where
the chain does nothing else, so answers and errors are the same:

* synchronous methods taking ``self`` (the source object) and optionally ``info``, nothing
  else: no arguments, no ``root``/``parent`` parameters;
* no field extensions: a field with ``permission_classes`` (a :class:`PermissionExtension`)
  or any other extension keeps Strawberry's resolver, checks included;
* not on the root types (Query, Mutation, Subscription), whose fields declare roles;
* only when the schema has no exception handlers (Strawberry's per-field handling).

A test compares every replaced field's answers with Strawberry's own resolution.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from graphql import GraphQLObjectType
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

BACKREF = GraphQLCoreConverter.DEFINITION_BACKREF


def leanable(field: StrawberryField) -> bool:
    """Whether Strawberry's resolver chain for ``field`` only calls its method."""
    resolver = field.base_resolver
    if resolver is None or field.extensions or field.arguments or resolver.is_async:
        return False
    if resolver.self_parameter is None:
        return False
    if resolver.root_parameter is not None or resolver.parent_parameter is not None:
        return False
    reserved = {resolver.self_parameter, resolver.info_parameter}
    return all(p in reserved for p in resolver.signature.parameters.values())


def _direct(field: StrawberryField, info_class: type[Any]) -> Callable[..., Any]:
    resolver = field.base_resolver
    assert resolver is not None
    method = cast(Callable[..., Any], resolver.wrapped_func)
    info_parameter = resolver.info_parameter
    if info_parameter is None:

        def resolve(source: Any, info: Any) -> Any:
            return method(source)

        resolve.lean_direct = True  # type: ignore[attr-defined]  # for schema.lean_execution
        return resolve
    name = info_parameter.name

    def resolve_with_info(source: Any, info: Any) -> Any:
        return method(source, **{name: info_class(_raw_info=info, _field=field)})

    resolve_with_info.lean_direct = True  # type: ignore[attr-defined]
    resolve_with_info.lean_info = True  # type: ignore[attr-defined]
    return resolve_with_info


def install(schema: Any) -> list[str]:
    """Give the plain fields of ``schema`` (a ``strawberry.Schema``) direct resolvers; the
    names (``Type.field``) of those fields."""
    if getattr(schema.schema_converter, "exception_handlers", None):
        return []
    core = schema._schema
    roots = {core.query_type, core.mutation_type, core.subscription_type}
    info_class = schema.config.info_class
    replaced = []
    for graphql_type in core.type_map.values():
        if not isinstance(graphql_type, GraphQLObjectType) or graphql_type in roots:
            continue
        if graphql_type.name.startswith("__"):
            continue
        for name, graphql_field in graphql_type.fields.items():
            field = (graphql_field.extensions or {}).get(BACKREF)
            if isinstance(field, StrawberryField) and leanable(field):
                graphql_field.resolve = _direct(field, info_class)
                replaced.append(f"{graphql_type.name}.{name}")
    return replaced
