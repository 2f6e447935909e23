"""Stored operations (the REST facade's documents) run parsed and validated once per document,
with the per-request work of the schema's extensions done by :mod:`schema.stored`."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

import graphql
import pytest
from starlette.testclient import TestClient

import schema.stored as stored_module
from rest_compat.health import HEALTH
from schema import schema
from schema.context import Context, SessionWrites
from schema.errors import DomainErrors
from schema.limits import GuardedDocuments
from schema.stored import AcyclicExecution, StoredOperations
from server.settings import Settings


def test_the_schema_extensions_are_the_ones_stored_operations_stand_in_for() -> None:
    """An extension added to the schema must get its stored-operation counterpart in
    schema/stored.py (it would not run for REST requests otherwise)."""
    assert list(schema.extensions) == [GuardedDocuments, DomainErrors, SessionWrites]


def test_a_stored_document_is_parsed_and_validated_once(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    parses: list[str] = []
    validations: list[graphql.DocumentNode] = []
    real_parse, real_validate = graphql.parse, graphql.validate  # what schema.stored imports

    def counting_parse(source: str, *args: Any, **kwargs: Any) -> graphql.DocumentNode:
        parses.append(source)
        return real_parse(source, *args, **kwargs)

    def counting_validate(
        schema: graphql.GraphQLSchema, document: graphql.DocumentNode, *args: Any, **kwargs: Any
    ) -> list[graphql.GraphQLError]:
        validations.append(document)
        return real_validate(schema, document, *args, **kwargs)

    monkeypatch.setattr(stored_module, "parse", counting_parse)
    monkeypatch.setattr(stored_module, "validate", counting_validate)
    monkeypatch.setattr(schema, "stored_operations", StoredOperations(schema._schema))
    for _ in range(3):
        answer = client.get("/api/health")
        assert answer.json() == {"status": "up"}
        assert answer.headers["X-Labelgraph-Operation"] == "RestHealth"
    assert parses == [HEALTH.document]
    assert len(validations) == 1


def test_an_invalid_stored_document_answers_a_validation_error(settings: Settings) -> None:
    operations = StoredOperations(schema._schema)
    result = operations.execute("query Broken { noSuchField }", {}, None, "Broken")
    assert result.data is None
    assert result.errors is not None
    assert result.errors[0].extensions == {"code": "GRAPHQL_VALIDATION_FAILED"}
    assert "noSuchField" in result.errors[0].message


def test_a_stored_mutation_marks_the_context_as_writing(settings: Settings) -> None:
    """As SessionWrites does: a stored query never writes, a mutation does."""
    operations = StoredOperations(schema._schema)
    context = Context(settings=settings, writes=True)
    operations.execute("query Read { health }", {}, context, "Read")
    assert context.writes is False
    mutation = "mutation Write($id: Int!) { deleteTask(id: $id) }"
    result = operations.execute(mutation, {"id": 1}, context, "Write")
    assert context.writes is True
    assert result.errors is not None  # no database here: the error is coded, not raised
    assert result.errors[0].extensions is not None
    assert "code" in result.errors[0].extensions


def test_a_stored_operation_frees_its_state_without_the_garbage_collector(
    settings: Settings,
) -> None:
    """The executor, and the context (with the request) it holds, go as soon as the operation
    returns: no reference cycle left for the collector (schema.stored.AcyclicExecution)."""
    operations = StoredOperations(schema._schema)
    context = Context(settings=settings)
    kept = weakref.ref(context)
    gc.collect()
    gc.disable()
    try:
        result = operations.execute("query Read { health }", {}, context, "Read")
        del context
        assert result.data == {"health": "up"}
        assert kept() is None
    finally:
        gc.enable()


def test_the_executors_resolver_helpers_still_reach_it(settings: Settings) -> None:
    document = graphql.parse("query Read { health }")
    executor = AcyclicExecution.build(schema._schema, document, None, Context(settings=settings))
    assert isinstance(executor, AcyclicExecution)
    helpers = executor.async_helpers
    helpers.track([1, "not awaitable"])  # nothing to settle

    async def one() -> int:
        return 1

    assert asyncio.run(_awaited(helpers.gather([one(), one()]))) == [1, 1]


async def _awaited(value: Any) -> Any:
    return await value


def test_stored_variables_signatures_are_made_once_and_other_documents_as_before(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """graphql-core's coercion asks :mod:`schema.stored_signatures` for each variable's
    signature: a stored document's were made when it was prepared, a ``/graphql`` document's
    are made per execution (this fails if graphql-core stops looking them up where
    :func:`~schema.stored_signatures.install` put ours)."""
    import graphql.execution.values as graphql_values
    from graphql.execution.get_variable_signature import get_variable_signature as real

    from schema import stored_signatures

    # The module's own name (an import it does not re-export), as install() replaced it.
    assert vars(graphql_values)["get_variable_signature"] is stored_signatures.signature
    made: list[str] = []

    def counting(schema: graphql.GraphQLSchema, node: graphql.VariableDefinitionNode) -> Any:
        made.append(node.variable.name.value)
        return real(schema, node)

    monkeypatch.setattr(stored_signatures, "get_variable_signature", counting)
    task_id = client.post("/api/project/import", json=[{"text": "a"}]).json()["new_task_ids"][0]
    assert client.get(f"/api/tasks/{task_id}").status_code == 200  # prepared by now
    made.clear()
    for _ in range(3):
        answer = client.get(f"/api/tasks/{task_id}")
        assert answer.status_code == 200 and answer.json()["id"] == task_id
    assert made == []
    query = "query Q($id: Int!) { task(id: $id) { id } }"
    for _ in range(2):
        answer = client.post("/graphql", json={"query": query, "variables": {"id": task_id}})
        assert answer.json() == {"data": {"task": {"id": task_id}}}
    assert made == ["id", "id"]
