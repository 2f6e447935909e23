"""Who may use which GraphQL field: one Strawberry permission class per field.

Every field of ``Query`` and ``Mutation`` declares exactly one of :class:`Public`,
:class:`IsAnnotator` or :class:`IsAdmin` (``permission_classes=[IsAdmin]``); so do nested
fields that need more than whoever reached their object (``Project.mlBackends``). The other
object types declare :func:`inherits_access`: their fields are readable by whoever may reach
the object, and ``min_role`` states the least role that may (a test walks the schema and proves
that every field declares one or the other, and that no field open to a smaller role leads to a
type marked for a bigger one).

A refusal is a ``DomainError``: ``UNAUTHENTICATED`` when nobody signed in, ``FORBIDDEN`` for a
role that may not (REST: 401 / 403). Without users and without a Basic password every caller is
an admin (:data:`server.principal.OPEN`), so nothing is refused.

Import these classes to protect a new field::

    from schema.permissions import IsAdmin

    @strawberry.field(permission_classes=[IsAdmin])
    def secret_thing(self, info: Info) -> str: ...
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from strawberry.permission import BasePermission

from server.errors import DomainError, ErrorCode
from server.principal import OPEN, Principal, Role

ACCESS_ATTRIBUTE = "__labelgraph_access__"
T = TypeVar("T")

MESSAGES: dict[ErrorCode, str] = {
    "unauthenticated": "Sign in first: send an API token (Authorization: Token …) or log in",
    "forbidden": "Your role may not do this",
}


def check_role(context: Any, required: Role) -> None:
    """Raise UNAUTHENTICATED / FORBIDDEN unless the context's principal has ``required``."""
    principal: Principal = getattr(context, "principal", OPEN)
    refusal = principal.refusal(required)
    if refusal is not None:
        raise DomainError(refusal, MESSAGES[refusal], {"requiredRole": required.name})


class RolePermission(BasePermission):
    """A field that needs at least ``role``."""

    role: ClassVar[Role]

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        check_role(info.context, self.role)
        return True


class Public(RolePermission):
    """Anyone, also anonymous callers (``health``, ``login``, ``me``)."""

    role = Role.PUBLIC

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        return True


class IsAnnotator(RolePermission):
    """Any signed-in user: annotators and admins."""

    role = Role.ANNOTATOR


class IsAdmin(RolePermission):
    role = Role.ADMIN


def inherits_access(min_role: Role = Role.PUBLIC) -> Callable[[type[T]], type[T]]:
    """Mark an object type whose fields are as readable as the field that returned it;
    ``min_role`` is the least role any field leading to it may require."""

    def mark(cls: type[T]) -> type[T]:
        setattr(cls, ACCESS_ATTRIBUTE, min_role)
        return cls

    return mark


def declared_role(permission_classes: list[type[BasePermission]]) -> Role | None:
    """The role a field's permission classes declare (None: none declared)."""
    roles = [p.role for p in permission_classes if issubclass(p, RolePermission)]
    return max(roles) if roles else None
