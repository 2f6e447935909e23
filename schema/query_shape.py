"""The shape of a GraphQL document, measured statically before validation and execution.

One walk over the parsed document (fragments measured once each, so a "fragment bomb" costs
no more than its text) gives what the query limits of :mod:`schema.limits` compare:

- ``aliases``: aliased fields, each fragment counted at every spread;
- ``depth``: the longest chain of nested fields (``{ health }`` is 1);
- ``nodes``: an estimate of how many values the answer holds. A field with a page argument
  (``first``, ``last``, ``pageSize``: the given value, a variable's value or the schema's
  default) multiplies its selection by the page size, and the lists directly inside it (a
  connection's ``edges``/``nodes``, a page's ``tasks``) are that page; any other list
  multiplies its selection by ``ASSUMED_LIST_SIZE``;
- ``page``: the largest page argument asked for, and the field that asked it.

Unknown fields, types and fragments are measured as leaves: validation reports them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_list_type,
    value_from_ast_untyped,
)
from graphql.type.introspection import SchemaMetaFieldDef, TypeMetaFieldDef

PAGE_ARGUMENTS = ("first", "last", "pageSize")
ASSUMED_LIST_SIZE = 10
META_FIELDS: dict[str, GraphQLField] = {"__schema": SchemaMetaFieldDef, "__type": TypeMetaFieldDef}


@dataclass
class Shape:
    nodes: int = 0
    depth: int = 0
    aliases: int = 0
    page: int = 0
    page_field: str | None = None

    def add(self, other: Shape) -> None:
        """Siblings: nodes and aliases add up, depth and page are the largest."""
        self.nodes += other.nodes
        self.aliases += other.aliases
        self.depth = max(self.depth, other.depth)
        if other.page > self.page:
            self.page, self.page_field = other.page, other.page_field


def measure(
    document: DocumentNode, schema: GraphQLSchema, variables: Mapping[str, Any] | None
) -> Shape:
    """The document's shape: aliases of all operations, the largest operation otherwise."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    total = Shape()
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        values = _variable_defaults(definition)
        values.update(variables or {})
        walker = _Walker(schema, fragments, values)
        shape = walker.selection_set(definition.selection_set, _root(schema, definition), False)
        total.aliases += shape.aliases
        total.nodes = max(total.nodes, shape.nodes)
        total.depth = max(total.depth, shape.depth)
        if shape.page > total.page:
            total.page, total.page_field = shape.page, shape.page_field
    return total


def _root(schema: GraphQLSchema, operation: OperationDefinitionNode) -> GraphQLObjectType | None:
    if operation.operation is OperationType.MUTATION:
        return schema.mutation_type
    if operation.operation is OperationType.SUBSCRIPTION:
        return schema.subscription_type
    return schema.query_type


def _variable_defaults(operation: OperationDefinitionNode) -> dict[str, Any]:
    return {
        v.variable.name.value: value_from_ast_untyped(v.default_value)
        for v in operation.variable_definitions or ()
        if v.default_value is not None
    }


class _Walker:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.measured: dict[tuple[str, bool], Shape] = {}
        self.measuring: set[str] = set()

    def selection_set(
        self, node: SelectionSetNode | None, parent: GraphQLNamedType | None, paged: bool
    ) -> Shape:
        """``paged``: this is the selection of a field with a page argument."""
        total = Shape()
        for selection in node.selections if node else ():
            if isinstance(selection, FieldNode):
                total.add(self.field(selection, parent, paged))
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                kind = self.schema.get_type(condition.name.value) if condition else parent
                total.add(self.selection_set(selection.selection_set, kind, paged))
            elif isinstance(selection, FragmentSpreadNode):
                total.add(self.fragment(selection.name.value, paged))
        return total

    def fragment(self, name: str, paged: bool) -> Shape:
        key = (name, paged)
        found = self.measured.get(key)
        if found is not None:
            return found
        definition = self.fragments.get(name)
        if definition is None or name in self.measuring:  # unknown or cyclic: validation says
            return Shape()
        self.measuring.add(name)
        kind = self.schema.get_type(definition.type_condition.name.value)
        shape = self.selection_set(definition.selection_set, kind, paged)
        self.measuring.discard(name)
        self.measured[key] = shape
        return shape

    def field(self, node: FieldNode, parent: GraphQLNamedType | None, paged: bool) -> Shape:
        definition = _field_definition(parent, node.name.value)
        page = self._page_size(node, definition)
        child_type = get_named_type(definition.type) if definition else None
        children = self.selection_set(node.selection_set, child_type, page is not None)
        if page is not None:
            factor = page
        elif definition is not None and is_list_type(get_nullable_type(definition.type)):
            factor = 1 if paged else ASSUMED_LIST_SIZE
        else:
            factor = 1
        shape = Shape(
            nodes=1 + factor * children.nodes,
            depth=1 + children.depth,
            aliases=(1 if node.alias else 0) + children.aliases,
            page=children.page,
            page_field=children.page_field,
        )
        if page is not None and page > shape.page:
            shape.page, shape.page_field = page, node.name.value
        return shape

    def _page_size(self, node: FieldNode, definition: GraphQLField | None) -> int | None:
        """The field's page argument (largest, if several), or None without one."""
        found: int | None = None
        given = {argument.name.value: argument.value for argument in node.arguments or ()}
        for name in PAGE_ARGUMENTS:
            value: Any = None
            if name in given:
                ast = given[name]
                if isinstance(ast, IntValueNode):
                    value = int(ast.value)
                elif isinstance(ast, VariableNode):
                    value = self.variables.get(ast.name.value)
            elif definition is not None and name in definition.args:
                value = definition.args[name].default_value
            if isinstance(value, int) and not isinstance(value, bool):
                found = max(found or 0, value, 0)
        return found


def _field_definition(parent: GraphQLNamedType | None, name: str) -> GraphQLField | None:
    if name in META_FIELDS:
        return META_FIELDS[name]
    if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
        field: GraphQLField | None = parent.fields.get(name)
        return field
    return None
