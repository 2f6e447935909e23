"""Lean completion of lists and objects whose selected fields are all plain (a page's nodes).

graphql-core completes a value field by field through generic steps: for each field of each
object it makes a ``Path``, builds a resolve info, looks for arguments, calls the resolver,
checks for awaitables, then completes the result by testing its type (non-null, list, leaf,
abstract, object) and collecting the sub-selection. A page of 100 tasks with their
completions and predictions is ~600 fields, and those steps were most of its time.

:class:`LeanExecution` compiles a completer for a value whose type is (a list or non-null
wrapper of) an object type when every field selected on it, at every depth, is one that does
nothing but read its source:

* a direct method resolver installed by :mod:`schema.lean_fields` (no arguments, no
  extensions, synchronous), or Strawberry's resolver of a plain attribute (no resolver);
* no arguments given in the document (the schema has no ``@defer``/``@stream``; ``@skip``
  and ``@include`` are applied by graphql-core's own field collection);
* object types without ``is_type_of`` and not abstract; no middleware (Strawberry passes
  an empty manager, which wraps nothing).

The completer does what graphql-core does for those fields, in the same order and with the
same results and errors: non-null violations raise the same ``TypeError`` message, errors are
located at the same path by graphql-core's ``handle_field_error`` (which propagates them to
the nearest nullable field or records them), and leaves are coerced by graphql-core's
``complete_leaf_value`` (not called for values the built-in scalars give back unchanged). It
only skips what does nothing for these fields: a resolve info is made only for resolvers that
take one, and graphql-core's (with the field's real path) only when they read more than its
``context``; paths only where a value may hold errors below. Any value that is not of the
expected shape (an object that is not an instance of the type's class, a list that is not a
``list``) is completed by graphql-core's ``complete_value`` instead, from that value down.
Lean resolvers are synchronous methods of this schema's types, which return values, never
awaitables.

A completer takes the executor it completes for as an argument (its errors, context and
resolve infos are that execution's), so one completer serves every execution of a selection.
Compiling was a quarter of a small page's execution; it now happens once per selection of a
small document without directives (at most :data:`PLANS` kept): such a document's selections do
not depend on its variables, and its syntax tree is the parse cache's, the same object in every
request. Documents with ``@skip``/``@include`` (whose selections follow the variables) or
larger ones compile per execution as before.

Tests compare answers and errors with graphql-core's own completion (tests/graphql).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from math import isfinite
from typing import Any, cast

from graphql import (
    GraphQLEnumType,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLScalarType,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.pyutils import Path, Undefined
from graphql.type.introspection import TypeNameMetaFieldDef
from graphql.type.scalars import (
    GRAPHQL_MAX_INT,
    GRAPHQL_MIN_INT,
    serialize_boolean,
    serialize_float,
    serialize_id,
    serialize_int,
    serialize_string,
)

from schema.limits import CACHEABLE_DOCUMENT_SIZE
from schema.shared_events import SharedEventExecution

# A completer: (value, its path, the executor) -> the completed value; raises as
# complete_value raises. Leaves are given no path (None): they need none.
Completer = Callable[[Any, Any, "LeanExecution"], Any]
_NOT_LEAN = object()
# Completers shared between executions, by (return type, parent type, ids of the field nodes);
# each entry keeps its nodes alive so that their ids are not reused meanwhile.
PLANS = 512
_plans: dict[tuple[Any, ...], tuple[Any, Any]] = {}
_plans_lock = threading.Lock()


def _keep_plan(key: tuple[Any, ...], entry: tuple[Any, Any]) -> None:
    with _plans_lock:
        while len(_plans) >= PLANS:
            del _plans[next(iter(_plans))]  # the oldest
        _plans[key] = entry


def _is_plain(resolve: Any) -> bool | None:
    """True: the resolver reads its source only; False: it also needs the resolve info; None:
    neither (arguments, extensions, permissions...)."""
    if getattr(resolve, "lean_direct", False):
        return not getattr(resolve, "lean_info", False)
    if getattr(resolve, "_is_default", False):  # Strawberry: a plain attribute
        return True
    return None


_KEPT_AS_THEY_ARE: dict[Any, Callable[[Any], bool]] = {
    serialize_int: lambda v: v.__class__ is int and GRAPHQL_MIN_INT <= v <= GRAPHQL_MAX_INT,
    serialize_float: lambda v: v.__class__ is float and isfinite(v),
    serialize_string: lambda v: v.__class__ is str,
    serialize_boolean: lambda v: v.__class__ is bool,
    serialize_id: lambda v: v.__class__ is str,
}


class _ResolveInfo:
    """A resolve info made when a resolver reads more than its ``context`` (lean methods
    mostly read only that): graphql-core's, with the same field, nodes, parent and path."""

    __slots__ = ("_args", "_info", "context")

    def __init__(self, context: Any, args: tuple[Any, ...]) -> None:
        self.context = context
        self._args = args
        self._info: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._info is None:
            executor, *args = self._args
            self._info = executor.build_resolve_info(*args)
        return getattr(self._info, name)


class LeanExecution(SharedEventExecution):
    def build_response(self, data: dict[str, Any] | None) -> Any:
        """graphql-core's, then this execution's own completers go (they hold the field
        details lists of this execution)."""
        try:
            return super().build_response(data)
        finally:
            self.__dict__.pop("_lean_completers", None)

    def complete_value(
        self,
        return_type: GraphQLOutputType,
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        completer = self._completer(return_type, field_details_list, info.parent_type)
        if completer is None:
            return super().complete_value(
                return_type, field_details_list, info, path, result, position_context
            )
        return completer(result, path, self)

    # --- compiling -------------------------------------------------------------------------

    def _completer(
        self,
        return_type: GraphQLOutputType,
        field_details_list: FieldDetailsList,
        parent_type: GraphQLObjectType,
    ) -> Completer | None:
        named: Any = return_type
        while isinstance(named, GraphQLNonNull | GraphQLList):
            named = named.of_type
        if not is_object_type(named) or getattr(self.middleware_manager, "middlewares", None):
            return None
        if self._shares_completers():
            nodes = tuple(details.node for details in field_details_list)
            shared_key = (return_type, parent_type, *map(id, nodes))
            entry = _plans.get(shared_key)
            if entry is None:
                found = self._compile(return_type, field_details_list, parent_type, 0)
                entry = (nodes, _NOT_LEAN if found is None else found)
                _keep_plan(shared_key, entry)
            shared = entry[1]
            return None if shared is _NOT_LEAN else cast(Completer, shared)
        # This execution's own: its selections may follow its variables. A copy of the
        # executor (a subscription's executor per event copies its attributes) makes its own.
        owner, cache = self.__dict__.get("_lean_completers", (None, None))
        if owner != id(self) or cache is None:
            cache = {}
            self.__dict__["_lean_completers"] = (id(self), cache)
        key = (return_type, id(field_details_list))
        cached = cache.get(key)
        if cached is None:
            found = self._compile(return_type, field_details_list, parent_type, 0)
            # The list is kept with its completer so that its id is not reused meanwhile.
            cached = cache[key] = (field_details_list, _NOT_LEAN if found is None else found)
        completer = cached[1]
        return None if completer is _NOT_LEAN else cast(Completer, completer)

    def _shares_completers(self) -> bool:
        """Whether this execution's completers may serve others: a small document (one the
        parse cache keeps) without directives (``@`` anywhere, even in a string, counts)."""
        shares = self.__dict__.get("_lean_shares")
        if shares is None:
            location = self.operation.loc
            body = location.source.body if location is not None else None
            shares = body is not None and len(body) <= CACHEABLE_DOCUMENT_SIZE and "@" not in body
            self.__dict__["_lean_shares"] = shares
        return bool(shares)

    def _compile(
        self,
        return_type: GraphQLOutputType,
        field_details_list: FieldDetailsList,
        parent_type: GraphQLObjectType,
        depth: int,
    ) -> Completer | None:
        """A completer of ``return_type`` values of a field of ``parent_type`` selected by
        ``field_details_list``; None when some part of it is not lean."""
        if depth > 32:  # deep selections are left to graphql-core
            return None
        field_name = field_details_list[0].node.name.value
        if is_non_null_type(return_type):
            assert isinstance(return_type, GraphQLNonNull)
            inner = self._compile(return_type.of_type, field_details_list, parent_type, depth)
            return None if inner is None else self._non_null(inner, parent_type, field_name)
        if is_list_type(return_type):
            assert isinstance(return_type, GraphQLList)
            item_type = return_type.of_type
            item = self._compile(item_type, field_details_list, parent_type, depth)
            if item is None:
                return None
            return self._list(item, item_type, return_type, field_details_list, parent_type)
        if isinstance(return_type, GraphQLScalarType | GraphQLEnumType):
            return self._leaf(return_type)
        if is_object_type(return_type):
            assert isinstance(return_type, GraphQLObjectType)
            return self._object(return_type, field_details_list, parent_type, depth)
        return None  # abstract types

    def _generic(
        self,
        return_type: GraphQLOutputType,
        field_details_list: FieldDetailsList,
        parent_type: GraphQLObjectType,
    ) -> Completer:
        """graphql-core's completion of a value, with the resolve info of its field."""
        field_def = self.schema.get_field(parent_type, field_details_list[0].node.name.value)
        assert field_def is not None
        nodes = [details.node for details in field_details_list]

        def generic(value: Any, path: Path, ex: LeanExecution) -> Any:
            info = ex.build_resolve_info(field_def, nodes, parent_type, path)
            complete = super(LeanExecution, ex).complete_value
            return complete(return_type, field_details_list, info, path, value, None)

        return generic

    @staticmethod
    def _non_null(inner: Completer, parent_type: GraphQLObjectType, field_name: str) -> Completer:
        message = f"Cannot return null for non-nullable field {parent_type}.{field_name}."

        def non_null(value: Any, path: Path, ex: LeanExecution) -> Any:
            if isinstance(value, Exception):
                raise value
            completed = inner(value, path, ex)
            if completed is None:
                raise TypeError(message)
            return completed

        return non_null

    def _list(
        self,
        item: Completer,
        item_type: GraphQLOutputType,
        list_type: GraphQLList[Any],
        field_details_list: FieldDetailsList,
        parent_type: GraphQLObjectType,
    ) -> Completer:
        generic = self._generic(list_type, field_details_list, parent_type)

        def complete_list(value: Any, path: Path, ex: LeanExecution) -> Any:
            if isinstance(value, Exception):
                raise value
            if value is None or value is Undefined:
                return None
            if type(value) is not list:
                return generic(value, path, ex)
            completed: list[Any] = []
            append = completed.append
            for index, element in enumerate(value):
                item_path = Path(path, index, None)
                try:
                    append(item(element, item_path, ex))
                except Exception as raw_error:
                    ex.handle_field_error(raw_error, item_type, field_details_list, item_path)
                    append(None)
            return completed

        return complete_list

    @staticmethod
    def _leaf(leaf_type: GraphQLLeafType) -> Completer:
        # Values the built-in scalars give back as they are: no need to call them.
        coerce = getattr(leaf_type, "coerce_output_value", None)
        kept = _KEPT_AS_THEY_ARE.get(coerce) if coerce is not None else None

        def leaf(value: Any, path: Path, ex: LeanExecution) -> Any:
            if isinstance(value, Exception):
                raise value
            if value is None or value is Undefined:
                return None
            if kept is not None and kept(value):
                return value
            return ex.complete_leaf_value(leaf_type, value)

        return leaf

    def _object(
        self,
        object_type: GraphQLObjectType,
        field_details_list: FieldDetailsList,
        parent_type: GraphQLObjectType,
        depth: int,
    ) -> Completer | None:
        definition = (object_type.extensions or {}).get("strawberry-definition")
        origin = getattr(definition, "origin", None)
        if object_type.is_type_of is not None or not isinstance(origin, type):
            return None
        grouped, new_defer_usages, forbidden = self.collect_subfields(
            object_type, field_details_list
        )
        if new_defer_usages or forbidden:
            return None
        type_name = object_type.name
        # (response name, resolver, takes info, field, its field details, completer, field
        # nodes, wants a path) per selected field; a None resolver is __typename.
        fields: list[tuple[Any, ...]] = []
        for response_name, details in grouped.items():
            node = details[0].node
            field_def = self.schema.get_field(object_type, node.name.value)
            if field_def is None:
                return None
            if any(d.defer_usage is not None or d.node.arguments for d in details):
                return None
            if field_def is TypeNameMetaFieldDef:
                fields.append((response_name, None, False, field_def, details, None, None, False))
                continue
            if field_def.args:
                return None
            plain = _is_plain(field_def.resolve)
            if plain is None:
                return None
            sub = self._compile(field_def.type, details, object_type, depth + 1)
            if sub is None:
                return None
            named: Any = field_def.type
            while isinstance(named, GraphQLNonNull | GraphQLList):
                named = named.of_type
            nodes = [d.node for d in details]
            wants_path = not plain or not is_leaf_type(named)
            fields.append(
                (response_name, field_def.resolve, not plain, field_def, details, sub, nodes,
                 wants_path)
            )  # fmt: skip
        generic = self._generic(object_type, field_details_list, parent_type)

        def complete_object(value: Any, path: Path, ex: LeanExecution) -> Any:
            if isinstance(value, Exception):
                raise value
            if value is None or value is Undefined:
                return None
            if type(value) is not origin:
                return generic(value, path, ex)
            results: dict[str, Any] = {}
            for name, resolve, with_info, field_def, details, sub, nodes, wants_path in fields:
                if resolve is None:
                    results[name] = type_name
                    continue
                field_path: Any = Path(path, name, type_name) if wants_path else None
                try:
                    if with_info:
                        info = _ResolveInfo(
                            ex.context_value, (ex, field_def, nodes, object_type, field_path)
                        )
                        results[name] = sub(resolve(value, info), field_path, ex)
                    else:
                        results[name] = sub(resolve(value, None), field_path, ex)
                except Exception as raw_error:
                    if field_path is None:
                        field_path = Path(path, name, type_name)
                    ex.handle_field_error(raw_error, field_def.type, details, field_path)
                    results[name] = None
            return results

        return complete_object
