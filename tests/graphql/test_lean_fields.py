"""Plain object fields resolve through a direct call (schema/lean_fields.py): the same answers
as Strawberry's own resolver chain; fields with permissions keep that chain."""

from __future__ import annotations

from typing import Any

import strawberry
from starlette.testclient import TestClient
from strawberry.scalars import JSON

from schema import Mutation, Query, schema
from schema.context import Context
from schema.lean_fields import BACKREF
from schema.scalars import CHECKED_JSON
from server import db
from tests.conftest import GraphQL, fixture_text

RESULT = [
    {
        "from_name": "sentiment",
        "to_name": "text",
        "type": "choices",
        "value": {"choices": ["Positive"]},
    }
]
# Every field below with a resolver method and no arguments is one lean_fields replaces.
QUERY = """
query {
  project {
    id name title labelConfig dataTypes taskCount completionCount predictionCount createdAt
    tasks(first: 5) {
      totalCount
      nodes {
        id projectId data meta createdAt updatedAt completedAt isLabeled totalCompletions
        cancelledCompletions totalPredictions predictionsScore lsJson
        completions { id taskId createdAt updatedAt wasCancelled leadTime result lsJson }
        predictions { id taskId score modelVersion createdAt result lsJson }
      }
    }
  }
}
"""


def _strawberry_resolution() -> strawberry.Schema:
    """The same types under Strawberry's own resolvers (no lean fields, no extensions)."""
    return strawberry.Schema(query=Query, mutation=Mutation, scalar_overrides={JSON: CHECKED_JSON})


def _run(target: strawberry.Schema, gql: GraphQL, query: str) -> Any:
    context = Context(settings=gql.settings, project_id=gql.project_id)
    return db.with_connection(target.execute_sync, query, {}, context_value=context)


def test_plain_fields_are_direct_and_permissioned_ones_are_not() -> None:
    assert {"Task.id", "Task.data", "Task.completions", "Completion.result"} <= set(
        schema.lean_fields
    )
    by_name = {
        f"{t.name}.{n}": f
        for t in schema._schema.type_map.values()
        for n, f in getattr(t, "fields", {}).items()
        if not t.name.startswith("__")
    }
    # Project.mlBackends takes no arguments but declares a role: Strawberry checks it.
    assert "Project.mlBackends" not in schema.lean_fields
    assert by_name["Project.mlBackends"].extensions[BACKREF].extensions
    for name in schema.lean_fields:
        field = by_name[name].extensions[BACKREF]
        assert not field.extensions and not field.arguments, name
    roots = ("Query.", "Mutation.", "Subscription.")
    assert not [name for name in schema.lean_fields if name.startswith(roots)]


def test_answers_are_those_of_strawberrys_resolvers(client: TestClient, gql: GraphQL) -> None:
    client.post("/api/project/config", data={"label_config": fixture_text("configs/sentiment.xml")})
    tasks = [
        {
            "data": {"text": f"t{i}"},
            "meta": {"i": i},
            "completions": [{"result": RESULT, "lead_time": 1.5}, {"result": []}],
            "predictions": [{"result": RESULT, "score": i / 10, "model_version": "v1"}],
        }
        for i in range(5)
    ]
    assert client.post("/api/project/import", json=tasks).status_code == 201
    lean = _run(schema, gql, QUERY)
    reference = _run(_strawberry_resolution(), gql, QUERY)
    assert lean.errors is None and reference.errors is None
    assert lean.data == reference.data
    nodes = lean.data["project"]["tasks"]["nodes"]
    assert [n["data"] for n in nodes] == [{"text": f"t{i}"} for i in range(5)]
    assert nodes[1]["completions"][0]["result"] == RESULT
    assert nodes[1]["completions"][0]["leadTime"] == 1.5
    assert nodes[2]["predictions"][0]["score"] == 0.2
