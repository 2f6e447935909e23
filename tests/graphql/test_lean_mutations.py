"""Root mutations that only check a role resolve through a direct call
(schema/lean_fields.py): the same answers and errors as Strawberry's own resolver chain."""

from __future__ import annotations

from typing import Any

import strawberry
from starlette.testclient import TestClient
from strawberry.permission import PermissionExtension

from schema import schema
from schema.lean_fields import BACKREF
from server.principal import OPEN, Principal, Role
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
CREATE = """
mutation Create($taskId: Int!, $completion: JSON!, $wasCancelled: Boolean) {
  createCompletion(taskId: $taskId, completion: $completion, wasCancelled: $wasCancelled) {
    taskId wasCancelled leadTime result
  }
}
"""
UPDATE = """
mutation Update($id: Int!, $completion: JSON!) {
  updateCompletion(id: $id, completion: $completion) { taskId wasCancelled leadTime result }
}
"""
DELETE_ALL = "mutation { deleteAllCompletions }"
ANNOTATOR = Principal(role=Role.ANNOTATOR, via="token", user_id=None)
ANONYMOUS = Principal(role=Role.PUBLIC, via="anonymous")


def _run(
    target: strawberry.Schema,
    gql: GraphQL,
    query: str,
    variables: dict[str, Any] | None = None,
    principal: Principal = OPEN,
) -> tuple[Any, list[tuple[str, Any, Any]]]:
    result = execute(target, gql, query, variables, principal)
    errors = [(e.message, e.path, (e.extensions or {}).get("code")) for e in result.errors or []]
    return result.data, errors


def _field(name: str) -> Any:
    return schema._schema.mutation_type.fields[name].extensions[BACKREF]  # type: ignore[union-attr]


def test_role_only_mutations_are_direct_and_others_are_not() -> None:
    lean = {name for name in schema.lean_fields if name.startswith("Mutation.")}
    assert {"Mutation.createCompletion", "Mutation.updateCompletion"} <= lean
    assert {"Mutation.deleteCompletion", "Mutation.deleteAllCompletions"} <= lean
    # Input objects (and lists) are converted by Strawberry: those mutations keep its chain.
    assert "Mutation.importTasks" not in lean
    assert "Mutation.updateProject" not in lean
    for name in lean:
        field = _field(name.removeprefix("Mutation."))
        assert field.extensions, name  # the role permission, chained once at install
        assert all(type(e) is PermissionExtension for e in field.extensions), name
        assert not field.base_resolver.is_async, name


def test_answers_and_errors_are_those_of_strawberrys_resolvers(
    client: TestClient, gql: GraphQL
) -> None:
    client.post("/api/project/config", data={"label_config": fixture_text("configs/sentiment.xml")})
    tasks = [{"data": {"text": f"t{i}"}} for i in range(3)]
    answer = client.post("/api/project/import", json=tasks)
    assert answer.status_code == 201
    first, second, _third = answer.json()["new_task_ids"]
    reference = strawberry_resolution()
    body = {"result": RESULT, "lead_time": 2.5}

    for target, task_id in ((schema, first), (reference, second)):
        data, errors = _run(target, gql, CREATE, {"taskId": task_id, "completion": body})
        assert errors == []
        assert data == {
            "createCompletion": {
                "taskId": task_id,
                "wasCancelled": False,
                "leadTime": 2.5,
                "result": RESULT,
            }
        }
    cancelled = [
        _run(target, gql, CREATE, {"taskId": first, "completion": {}, "wasCancelled": True})
        for target in (schema, reference)
    ]
    assert cancelled[0] == cancelled[1]
    assert cancelled[0][0]["createCompletion"]["wasCancelled"] is True

    # Errors: a missing task, an invalid body, a lone surrogate, a refused role.
    cases: list[tuple[str, dict[str, Any], Principal]] = [
        (CREATE, {"taskId": 999_999, "completion": body}, OPEN),
        (CREATE, {"taskId": first, "completion": {"result": "no"}}, OPEN),
        (CREATE, {"taskId": first, "completion": {"result": ["\ud800"]}}, OPEN),
        (CREATE, {"taskId": first, "completion": body}, ANONYMOUS),
        (UPDATE, {"id": 999_999, "completion": body}, OPEN),
        (DELETE_ALL, {}, ANNOTATOR),
        (DELETE_ALL, {}, ANONYMOUS),
    ]
    for query, variables, principal in cases:
        lean_answer = _run(schema, gql, query, variables, principal)
        plain_answer = _run(reference, gql, query, variables, principal)
        # The reference has no schema extensions, so no extensions.code: compare the rest.
        strip = [(message, path) for message, path, _code in lean_answer[1]]
        assert (lean_answer[0], strip) == (plain_answer[0], [e[:2] for e in plain_answer[1]])
        assert lean_answer[0] is None and len(lean_answer[1]) == 1
    codes = [_run(schema, gql, q, v, p)[1][0][2] for q, v, p in cases]
    assert codes == [
        "NOT_FOUND",
        "INVALID",
        "INVALID",
        "UNAUTHENTICATED",
        "NOT_FOUND",
        "FORBIDDEN",
        "UNAUTHENTICATED",
    ]
    # Nothing above stored a completion twice or at all when refused.
    counts = client.get(f"/api/tasks/{first}").json()["completions"]
    assert len(counts) == 3
    data, errors = _run(reference, gql, DELETE_ALL)
    assert errors == [] and data == {"deleteAllCompletions": 4}
