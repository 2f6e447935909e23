"""Which ``/graphql`` operations are short writes, for the write lane (:mod:`schema.stored`).

The REST facade marks its short writes itself (``Operation.short_write``); a document sent to
``/graphql`` is one when its operation is a mutation whose root fields are all in
:data:`SHORT_WRITE_FIELDS`: each writes the rows of one task (its completions, its data) in one
short transaction and waits on nothing outside the database. Anything else (imports, bulk
actions, ML backends, storages, fragments at the root) keeps the shared pool. What a client
selects on a short write's answer (the browser app's next task, say) runs on the lane with it,
bounded by the query limits as any answer is.

Only small documents that mention ``mutation`` are looked at. They are parsed here through the
same cache and limits as :class:`schema.limits.GuardedDocuments`, which then finds them parsed;
a document that does not parse keeps the shared pool and gets its error there.
"""

from __future__ import annotations

from typing import Any

from graphql import FieldNode, GraphQLError, OperationDefinitionNode, OperationType

from schema.limits import CACHEABLE_DOCUMENT_SIZE, limits_for, parse_document

SHORT_WRITE_FIELDS = frozenset(
    {
        "createCompletion",
        "updateCompletion",
        "deleteCompletion",
        "deleteTaskCompletions",
        "updateTask",
        "deleteTask",
    }
)


def is_short_write(query: Any, operation_name: str | None, context: Any) -> bool:
    """Whether the operation ``operation_name`` of ``query`` (its only one when no name is
    given) is a mutation of short writes only."""
    if not isinstance(query, str) or "mutation" not in query:
        return False
    if len(query) > CACHEABLE_DOCUMENT_SIZE:
        return False
    try:
        document = parse_document(query, limits_for(context))
    except (GraphQLError, RecursionError):
        return False
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1 or operations[0].operation is not OperationType.MUTATION:
        return False
    selections = operations[0].selection_set.selections
    return all(
        isinstance(selection, FieldNode) and selection.name.value in SHORT_WRITE_FIELDS
        for selection in selections
    )
