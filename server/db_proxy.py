"""peewee's database proxy, with the attributes every request uses forwarded directly.

``peewee.Proxy`` forwards attributes through ``__getattr__``, which Python calls only after
the ordinary lookup on the proxy has failed, that is after it has made an ``AttributeError``
and formatted its message. That costs ~2,600 machine instructions for each use of a name the
proxy lacks, against ~400 for a property: a completion POST used ~28 of them (~4 % of its
instructions, counted with valgrind), a task GET ~8. Names not listed here still go through
``__getattr__``, as before.
"""

from __future__ import annotations

from typing import Any

import peewee

# The names a completion POST and a task GET looked up through the proxy, and the other
# connection and transaction methods their services call.
FORWARDED = (
    "_state",
    "_run_commit_callbacks",
    "begin",
    "close",
    "commit",
    "connect",
    "connection",
    "cursor",
    "execute",
    "execute_sql",
    "in_transaction",
    "is_closed",
    "param",
    "pop_transaction",
    "push_transaction",
    "rollback",
    "transaction_depth",
)


def _forwarded(name: str) -> property:
    def get(self: peewee.DatabaseProxy) -> Any:
        target = self.obj
        if target is None:
            raise AttributeError("Cannot use uninitialized Proxy.")
        return getattr(target, name)

    get.__name__ = name
    return property(get)


class DatabaseProxy(peewee.DatabaseProxy):
    """A ``peewee.DatabaseProxy`` whose :data:`FORWARDED` names are properties."""

    __slots__ = ()

    def __setattr__(self, attr: str, value: Any) -> None:
        # peewee's check reads ``self.__slots__``: this class's, empty; the proxy's own are
        # the parent's
        if attr not in peewee.DatabaseProxy.__slots__:
            raise AttributeError("Cannot set attribute on proxy.")
        object.__setattr__(self, attr, value)


for _name in FORWARDED:
    setattr(DatabaseProxy, _name, _forwarded(_name))
