"""Direct resolvers for the root mutations whose Strawberry resolver chain only checks a role.

A mutation field resolves in Strawberry through a generic chain per call: it converts every
argument by its declared type, builds an ``Info``, inspects the resolver's parameters, folds the
field extensions (here the :class:`~strawberry.permission.PermissionExtension` of its
``permission_classes``) into nested partials, runs the permission's checks (awaitable? boolean?)
and then calls the method. For the completion POST, the most frequent write, that chain cost
about as much as the completion service's own Python work.

:func:`install` gives a root ``Mutation`` field a resolver that does the same steps directly:
:func:`schema.permissions.check_role` for each of its role permissions, in order, then
``method(None, info=Info(...), **arguments)`` with the arguments renamed to their Python names.
It only takes fields where the chain does nothing else, so answers and errors are the same:

* a synchronous method taking ``self`` and optionally ``info`` besides its arguments (no
  ``root``/``parent`` parameters);
* exactly one field extension, a ``PermissionExtension`` that does not fail silently, whose
  permissions are all :class:`~schema.permissions.RolePermission` classes that keep its
  ``has_permission`` (which only calls ``check_role``);
* every argument a leaf scalar (``Int``, ``Float``, ``String``, ``Boolean``, ``ID``, ``JSON``,
  nullable or not) that Strawberry hands over unchanged: no input types, enums, lists or
  ``Maybe`` (whose conversion does something);
* only when the schema has no exception handlers (Strawberry's per-field handling).

A test compares the replaced mutations' answers and errors (refused roles included) with
Strawberry's own resolution.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from graphql import GraphQLResolveInfo
from strawberry.permission import PermissionExtension
from strawberry.scalars import ID, JSON
from strawberry.types.base import StrawberryOptional
from strawberry.types.field import StrawberryField

from schema.lean_fields import BACKREF
from schema.permissions import RolePermission, check_role

# Argument types Strawberry's convert_argument returns unchanged (None stays None).
_LEAF_TYPES: tuple[object, ...] = (int, float, str, bool, ID, JSON)


def _unchanged(type_: object) -> bool:
    if type(type_) is StrawberryOptional:  # not Maybe, a subclass that wraps its value
        type_ = type_.of_type
    return any(type_ is leaf for leaf in _LEAF_TYPES)


def _role_permissions(field: StrawberryField) -> list[RolePermission] | None:
    """The role permissions of ``field`` when its only extension checks them and nothing
    else (None otherwise)."""
    if len(field.extensions) != 1:
        return None
    extension = field.extensions[0]
    if type(extension) is not PermissionExtension or extension.fail_silently:
        return None
    permissions = list(extension.permissions)
    for permission in permissions:
        if not isinstance(permission, RolePermission):
            return None
        if type(permission).has_permission is not RolePermission.has_permission:
            return None
    return cast(list[RolePermission], permissions)


def leanable(field: StrawberryField) -> bool:
    """Whether Strawberry's resolver chain for the root mutation ``field`` only checks roles
    and calls its method."""
    resolver = field.base_resolver
    if resolver is None or resolver.is_async or resolver.self_parameter is None:
        return False
    if resolver.root_parameter is not None or resolver.parent_parameter is not None:
        return False
    if _role_permissions(field) is None:
        return False
    return all(_unchanged(argument.type) for argument in field.arguments)


def _direct(field: StrawberryField, info_class: type[Any], names: dict[str, str]) -> Any:
    resolver = field.base_resolver
    assert resolver is not None
    method = cast(Callable[..., Any], resolver.wrapped_func)
    roles = [p.role for p in _role_permissions(field) or ()]
    info_parameter = resolver.info_parameter
    info_name = info_parameter.name if info_parameter is not None else None

    def resolve(source: Any, info: GraphQLResolveInfo[Any], **kwargs: Any) -> Any:
        for role in roles:
            check_role(info.context, role)
        arguments = {names[name]: value for name, value in kwargs.items()}
        if info_name is not None:
            arguments[info_name] = info_class(_raw_info=info, _field=field)
        return method(source, **arguments)

    resolve.lean_mutation = True  # type: ignore[attr-defined]
    return resolve


def install(schema: Any) -> list[str]:
    """Give the leanable root mutations of ``schema`` (a ``strawberry.Schema``) direct
    resolvers; the names (``Mutation.field``) of those fields."""
    if getattr(schema.schema_converter, "exception_handlers", None):
        return []
    mutation_type = schema._schema.mutation_type
    if mutation_type is None:
        return []
    converter = schema.config.name_converter
    info_class = schema.config.info_class
    replaced = []
    for name, graphql_field in mutation_type.fields.items():
        field = (graphql_field.extensions or {}).get(BACKREF)
        if not isinstance(field, StrawberryField) or not leanable(field):
            continue
        names = {converter.from_argument(a): a.python_name for a in field.arguments}
        graphql_field.resolve = _direct(field, info_class, names)
        replaced.append(f"{mutation_type.name}.{name}")
    return replaced
