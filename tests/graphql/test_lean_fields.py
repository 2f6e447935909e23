"""Plain object fields resolve through a direct call (schema/lean_fields.py): the same answers
as Strawberry's own resolver chain; fields with arguments conversion leaves unchanged too, with
their permission checks (root fields) chained around the call: the same answers and refusals."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient
from strawberry.permission import PermissionExtension

from schema import schema
from schema.lean_fields import BACKREF
from schema.scalars import CHECKED_JSON
from server.principal import ANONYMOUS, Principal, Role
from tests.conftest import GraphQL, fixture_text
from tests.graphql.strawberry_reference import execute, strawberry_resolution

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
    roots = ("Query.", "Mutation.", "Subscription.")
    for name in schema.lean_fields:
        field = by_name[name].extensions[BACKREF]
        if not field.arguments and not name.startswith(roots):
            # a plain field: a method of its source, nothing else
            assert not field.extensions, name
            continue
        # A field with arguments or a root field: only permission checks, and every root
        # field has one.
        assert all(type(e) is PermissionExtension for e in field.extensions), name
        assert field.extensions or not name.startswith(roots), name
    assert {"Query.task", "Task.lsJson", "Mutation.deleteTask"} <= set(schema.lean_fields)
    # Enum arguments are converted by Strawberry: such fields keep its chain.
    assert "Project.taskPage" not in schema.lean_fields
    assert not [name for name in schema.lean_fields if name.startswith("Subscription.")]


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
    lean = execute(schema, gql, QUERY)
    reference = execute(strawberry_resolution(), gql, QUERY)
    assert lean.errors is None and reference.errors is None
    assert lean.data == reference.data
    assert lean.data is not None
    nodes = lean.data["project"]["tasks"]["nodes"]
    assert [n["data"] for n in nodes] == [{"text": f"t{i}"} for i in range(5)]
    assert nodes[1]["completions"][0]["result"] == RESULT
    assert nodes[1]["completions"][0]["leadTime"] == 1.5
    assert nodes[2]["predictions"][0]["score"] == 0.2


ANNOTATOR = Principal(Role.ANNOTATOR, "token", 1, "ann")
ADMIN = Principal(Role.ADMIN, "token", 2, "boss")


def _answer(result: Any) -> tuple[Any, list[tuple[str, Any]] | None]:
    errors = [(e.message, e.path) for e in result.errors] if result.errors else None
    return result.data, errors


def test_fields_with_arguments_answer_and_refuse_as_strawberry(
    client: TestClient, gql: GraphQL
) -> None:
    client.post("/api/project/config", data={"label_config": fixture_text("configs/sentiment.xml")})
    tasks = [
        {"data": {"text": "a"}, "completions": [{"result": RESULT}]},
        {"data": {"text": "b"}, "predictions": [{"result": RESULT, "score": 0.5}]},
    ]
    ids = client.post("/api/project/import", json=tasks).json()["new_task_ids"]
    query = (
        "query Q($id: Int!, $live: Boolean!) { task(id: $id) {"
        " id lsJson(livePredictions: $live) plain: lsJson } }"
    )
    delete = "mutation D($id: Int!) { deleteTask(id: $id) }"
    reference = strawberry_resolution()
    cases: list[tuple[str, dict[str, Any], Principal | None]] = [
        (query, {"id": ids[0], "live": True}, None),
        (query, {"id": ids[1], "live": False}, ANNOTATOR),
        (query, {"id": 10**6, "live": True}, ANNOTATOR),  # NOT_FOUND
        (query, {"id": ids[0], "live": True}, ANONYMOUS),  # refused: not signed in
        (delete, {"id": ids[0]}, ANNOTATOR),  # refused: admins only
    ]
    for document, variables, principal in cases:
        lean = _answer(execute(schema, gql, document, variables, principal))
        expected = _answer(execute(reference, gql, document, variables, principal))
        assert lean == expected, (document, variables, principal)
    found, errors = _answer(execute(schema, gql, query, {"id": ids[1], "live": True}, ANNOTATOR))
    assert errors is None
    assert found["task"]["id"] == ids[1]
    assert found["task"]["lsJson"]["predictions"][0]["score"] == 0.5
    assert found["task"]["plain"]["data"] == {"text": "b"}
    refused = _answer(execute(schema, gql, query, {"id": ids[0], "live": True}, ANONYMOUS))
    assert refused[0] is None and refused[1] is not None and refused[1][0][1] == ["task"]
    denied = _answer(execute(schema, gql, delete, {"id": ids[0]}, ANNOTATOR))
    assert denied[1] is not None and denied[1][0][1] == ["deleteTask"]
    # The refused delete deleted nothing; an admin's does, through the lean resolver.
    assert _answer(execute(schema, gql, delete, {"id": ids[0]}, ADMIN)) == (
        {"deleteTask": ids[0]},
        None,
    )
    gone = _answer(execute(schema, gql, query, {"id": ids[0], "live": False}, ADMIN))
    assert gone[0] is None and gone[1] is not None


def test_only_arguments_conversion_leaves_unchanged_are_taken() -> None:
    from strawberry.types.base import StrawberryList, StrawberryMaybe, StrawberryOptional

    from schema.lean_fields import _unchanged_by_conversion

    assert _unchanged_by_conversion(int) and _unchanged_by_conversion(StrawberryOptional(str))
    assert _unchanged_by_conversion(CHECKED_JSON)
    assert not _unchanged_by_conversion(StrawberryMaybe(int))  # wrapped in Some()
    assert not _unchanged_by_conversion(StrawberryList(int))  # copied
