"""Who is calling: the principal of a request and the roles a route or field may require.

Roles are ordered: ``PUBLIC`` (anyone, also anonymous) < ``ANNOTATOR`` (any signed-in user)
< ``ADMIN``. Without users and without a Basic password every request is :data:`OPEN`: an
admin without a name, so everything behaves as it did before authentication existed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

SCOPE_KEY = "labelgraph.principal"


class Role(enum.IntEnum):
    PUBLIC = 0
    ANNOTATOR = 1
    ADMIN = 2

    @classmethod
    def parse(cls, name: str) -> Role:
        """A user's role by its name (``admin`` or ``annotator``)."""
        try:
            role = cls[name.strip().upper()]
        except KeyError:
            role = cls.PUBLIC
        if role is cls.PUBLIC:
            raise ValueError(f"role must be admin or annotator, not {name!r}")
        return role


@dataclass(frozen=True)
class Principal:
    """The caller. ``user_id`` is None for the open server, the Basic credential and
    anonymous callers; ``via`` says how it was established (``open``, ``basic``, ``token``,
    ``session``, ``anonymous``)."""

    role: Role
    via: str
    user_id: int | None = None
    name: str = ""

    @property
    def authenticated(self) -> bool:
        return self.role > Role.PUBLIC

    def refusal(self, required: Role) -> Literal["unauthenticated", "forbidden"] | None:
        """None when the principal may act with ``required``, else the error code:
        ``unauthenticated`` (nobody signed in) or ``forbidden`` (a role too small)."""
        if self.role >= required:
            return None
        return "forbidden" if self.authenticated else "unauthenticated"

    def owns(self, user_id: int | None) -> bool:
        """Whether a row made by ``user_id`` is the principal's own (admins own everything)."""
        return self.role >= Role.ADMIN or (self.user_id is not None and self.user_id == user_id)


OPEN = Principal(Role.ADMIN, "open")
ANONYMOUS = Principal(Role.PUBLIC, "anonymous")
