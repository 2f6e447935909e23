"""The variable signatures of the stored operations, made once instead of per execution.

graphql-core's executor makes each variable's signature (its type looked up in the schema from
the syntax tree, its default) every time an operation runs: ~15,000 machine instructions per
variable, 45,000 of a completion POST's ~1.6 million (counted with valgrind). A stored
document's variable definitions never change, so :func:`keep` makes their signatures when the
document is prepared, and :func:`install` puts :func:`signature` in graphql-core's place: it
answers those definitions from what was kept and makes any other's (the ``/graphql``
endpoint's documents) as before.
"""

from __future__ import annotations

import threading

import graphql.execution.values as graphql_values
from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    VariableDefinitionNode,
)
from graphql.execution.get_variable_signature import (
    GraphQLVariableSignature,
    get_variable_signature,
)

# By the definition node's id: (schema, node, signature). The node is kept with its entry, so
# its id cannot be given to another node while the entry exists; entries are never removed
# (the stored documents live as long as the process).
_kept: dict[int, tuple[GraphQLSchema, VariableDefinitionNode, GraphQLVariableSignature]] = {}
_install_lock = threading.Lock()


def keep(schema: GraphQLSchema, document: DocumentNode) -> None:
    """Make and keep the signatures of ``document``'s operation variables (a valid document)."""
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        for node in definition.variable_definitions or ():
            made = get_variable_signature(schema, node)
            if not isinstance(made, GraphQLError):
                _kept[id(node)] = (schema, node, made)


def signature(
    schema: GraphQLSchema, node: VariableDefinitionNode
) -> GraphQLVariableSignature | GraphQLError:
    """graphql-core's ``get_variable_signature``, answered from :func:`keep`'s signatures."""
    kept = _kept.get(id(node))
    if kept is not None and kept[1] is node and kept[0] is schema:
        return kept[2]
    return get_variable_signature(schema, node)


def install() -> None:
    """Make graphql-core's variable coercion use :func:`signature` (once per process)."""
    with _install_lock:
        setattr(graphql_values, "get_variable_signature", signature)  # noqa: B010
