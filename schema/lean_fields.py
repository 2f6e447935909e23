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

Fields with arguments get a direct resolver too (:func:`_with_arguments`) when Strawberry's
conversion gives each argument back unchanged: every argument is an ``int``, ``str``,
``bool``, ``float`` or a custom scalar (JSON), optional or not (``convert_argument`` returns
leaves, ``None`` and ``UNSET`` as they are). The resolver renames the GraphQL arguments to the
method's parameters and calls it. When the field's only extensions are permission checks
(:class:`strawberry.permission.PermissionExtension`, synchronous: a root field declaring its
role, ``task(id:)``), their own ``resolve`` methods are chained around that call once, at
install, instead of per call: the same checks, in the same order, with the same refusals.
These cut the stored operations' cost (a task GET resolves two such fields); they are not
marked for :mod:`schema.lean_execution`, which only completes fields without arguments.

A test compares every replaced field's answers with Strawberry's own resolution.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, cast

from graphql import GraphQLObjectType
from strawberry.permission import PermissionExtension
from strawberry.scalars import ID, JSON
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.base import StrawberryOptional
from strawberry.types.field import StrawberryField
from strawberry.types.scalar import ScalarDefinition

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


# Leaves of Strawberry's scalar registry (``JSON``, ``ID`` included) come back as they are.
_PASSED_AS_THEY_ARE: tuple[object, ...] = (int, str, bool, float, ID, JSON)


def _unchanged_by_conversion(type_: Any) -> bool:
    """Whether Strawberry's ``convert_argument`` gives a value of this argument type back as
    it is (a built-in leaf or a custom scalar, optional or not)."""
    if type(type_) is StrawberryOptional:  # not ``Maybe`` (a subclass), whose values are wrapped
        type_ = type_.of_type
    return type_ in _PASSED_AS_THEY_ARE or isinstance(type_, ScalarDefinition)


def _permission_checks(field: StrawberryField) -> list[PermissionExtension] | None:
    """The field's extensions when all are synchronous permission checks, else None."""
    checks = []
    for extension in field.extensions:
        if type(extension) is not PermissionExtension or not extension.supports_sync:
            return None
        checks.append(extension)
    return checks


def leanable_with_arguments(field: StrawberryField, *, root: bool) -> bool:
    """Whether :func:`_with_arguments` resolves ``field`` as Strawberry's chain would: a
    synchronous resolver taking (if anything) its source as ``self``, ``info`` and arguments
    that conversion leaves unchanged; extensions only permission checks (on root types at
    least one: every root field declares its role). Root fields without arguments are taken
    too (``deleteAllCompletions``): their chain is only the role check."""
    resolver = field.base_resolver
    if resolver is None or resolver.is_async or not (field.arguments or root):
        return False
    if resolver.root_parameter is not None or resolver.parent_parameter is not None:
        return False
    checks = _permission_checks(field)
    if checks is None or (root and not checks):
        return False
    if not all(_unchanged_by_conversion(argument.type) for argument in field.arguments):
        return False
    names = {argument.python_name for argument in field.arguments}
    reserved = {resolver.self_parameter, resolver.info_parameter}
    return all(p in reserved or p.name in names for p in resolver.signature.parameters.values())


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


def _with_arguments(
    field: StrawberryField, info_class: type[Any], graphql_names: dict[str, str]
) -> Callable[..., Any]:
    """A direct resolver for a field :func:`leanable_with_arguments` takes (``graphql_names``:
    the GraphQL name of each argument by its Python name)."""
    resolver = field.base_resolver
    assert resolver is not None
    method = cast(Callable[..., Any], resolver.wrapped_func)
    info_name = resolver.info_parameter.name if resolver.info_parameter is not None else None
    with_source = resolver.self_parameter is not None
    renames = tuple(
        (graphql_names[argument.python_name], argument.python_name) for argument in field.arguments
    )

    def call(source: Any, info: Any, **kwargs: Any) -> Any:
        if info_name is not None:
            kwargs[info_name] = info
        return method(source, **kwargs) if with_source else method(**kwargs)

    chain: Callable[..., Any] = call
    for check in _permission_checks(field) or ():  # as Strawberry folds them, once
        chain = functools.partial(check.resolve, chain)

    def resolve(source: Any, info: Any, **kwargs: Any) -> Any:
        arguments = {python: kwargs[name] for name, python in renames if name in kwargs}
        return chain(source, info_class(_raw_info=info, _field=field), **arguments)

    resolve.lean_arguments = True  # type: ignore[attr-defined]
    return resolve


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
        if not isinstance(graphql_type, GraphQLObjectType):
            continue
        if graphql_type.name.startswith("__") or graphql_type is core.subscription_type:
            continue
        root = graphql_type in roots
        for name, graphql_field in graphql_type.fields.items():
            field = (graphql_field.extensions or {}).get(BACKREF)
            if not isinstance(field, StrawberryField):
                continue
            if not root and leanable(field):
                graphql_field.resolve = _direct(field, info_class)
            elif leanable_with_arguments(field, root=root):
                graphql_names = {
                    argument.python_name: graphql_name
                    for graphql_name, graphql_argument in graphql_field.args.items()
                    for argument in field.arguments
                    if graphql_argument.extensions.get(BACKREF) is argument
                }
                if len(graphql_names) != len(field.arguments):
                    continue
                graphql_field.resolve = _with_arguments(field, info_class, graphql_names)
            else:
                continue
            replaced.append(f"{graphql_type.name}.{name}")
    return replaced
