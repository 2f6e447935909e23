"""``Completion.project``: a completion mutation reads the project's counters and next task
in the same round trip (the labeling app's submit → next task)."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.conftest import GraphQL

SUBMIT = """
mutation($taskId: Int!, $completion: JSON!, $cancelled: Boolean) {
  createCompletion(taskId: $taskId, completion: $completion, wasCancelled: $cancelled) {
    id
    project { labeledTaskCount completionCount nextTask { id } }
  }
}"""
RESULT = [
    {"from_name": "sentiment", "to_name": "text", "type": "choices", "value": {"choices": ["A"]}}
]


def test_submit_answers_the_new_counters_and_the_next_task(
    sentiment_project: TestClient, gql: GraphQL
) -> None:
    before = gql("{ project { taskCount labeledTaskCount completionCount nextTask { id } } }")
    first = before["project"]["nextTask"]["id"]
    labeled, completions = (
        before["project"]["labeledTaskCount"],
        before["project"]["completionCount"],
    )

    answer = gql(SUBMIT, {"taskId": first, "completion": {"result": RESULT}})
    project = answer["createCompletion"]["project"]
    assert project["labeledTaskCount"] == labeled + 1
    assert project["completionCount"] == completions + 1
    following = gql("{ project { nextTask { id } } }")["project"]["nextTask"]
    assert project["nextTask"] == following and following["id"] != first

    skipped = gql(
        SUBMIT, {"taskId": following["id"], "completion": {"result": []}, "cancelled": True}
    )
    assert skipped["createCompletion"]["project"]["completionCount"] == completions + 2
    assert skipped["createCompletion"]["project"]["nextTask"] != following


def test_project_read_before_the_mutation_is_not_served_stale(
    sentiment_project: TestClient, gql: GraphQL
) -> None:
    """Within one request the project row is cached; the completion's project is re-read."""
    task = gql("{ project { nextTask { id } } }")["project"]["nextTask"]["id"]
    query = """
    mutation($taskId: Int!, $completion: JSON!) {
      a: updateProject(input: {title: "t"}) { completionCount }
      b: createCompletion(taskId: $taskId, completion: $completion) {
        project { completionCount }
      }
    }"""
    answer = gql(query, {"taskId": task, "completion": {"result": RESULT}})
    assert answer["b"]["project"]["completionCount"] == answer["a"]["completionCount"] + 1
