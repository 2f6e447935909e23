from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import GraphQL, fixture_text
from tests.query_log import count_queries

RESULT = [{"from_name": "s", "to_name": "text", "type": "choices", "value": {"choices": ["A"]}}]

PAGE = """
query Page($first: Int!, $after: String, $order: TaskOrder!) {
  project { tasks(first: $first, after: $after, orderBy: $order) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { id } }
  } }
}
"""


def ids_in_pages(gql: GraphQL, order: str, size: int) -> list[int]:
    seen: list[int] = []
    after = None
    while True:
        data = gql(PAGE, {"first": size, "after": after, "order": order})["project"]["tasks"]
        seen += [e["node"]["id"] for e in data["edges"]]
        if not data["pageInfo"]["hasNextPage"]:
            return seen
        after = data["pageInfo"]["endCursor"]


@pytest.fixture
def labeled(client: TestClient) -> TestClient:
    client.post("/api/project/config", data={"label_config": fixture_text("configs/sentiment.xml")})
    tasks: list[dict[str, Any]] = [{"data": {"text": f"t{i}"}} for i in range(12)]
    tasks[4]["completions"] = [{"result": RESULT, "created_at": 2000}]
    tasks[9]["completions"] = [{"result": RESULT, "created_at": 1000}]
    tasks[7]["completions"] = [{"result": RESULT, "created_at": 3000}]
    assert client.post("/api/project/import", json=tasks).status_code == 201
    return client


def test_keyset_pagination_in_every_order(labeled: TestClient, gql: GraphQL) -> None:
    all_ids = list(range(1, 13))
    assert ids_in_pages(gql, "ID_ASC", 5) == all_ids
    assert ids_in_pages(gql, "ID_DESC", 5) == all_ids[::-1]
    unlabeled = [i for i in all_ids if i not in (5, 8, 10)]
    assert ids_in_pages(gql, "COMPLETED_AT_ASC", 2) == [10, 5, 8, *unlabeled]
    assert ids_in_pages(gql, "COMPLETED_AT_DESC", 2) == [8, 5, 10, *unlabeled]
    assert ids_in_pages(gql, "COMPLETED_AT_DESC", 100) == [8, 5, 10, *unlabeled]


def test_connection_counts_and_fields(labeled: TestClient, gql: GraphQL) -> None:
    data = gql(
        "{ project { taskCount labeledTaskCount completionCount tasks(first: 1, orderBy: "
        "COMPLETED_AT_DESC) { totalCount nodes { id isLabeled completedAt totalCompletions "
        "completions { id result createdAt wasCancelled taskId } } } } }"
    )["project"]
    assert (data["taskCount"], data["labeledTaskCount"], data["completionCount"]) == (12, 3, 3)
    (node,) = data["tasks"]["nodes"]
    assert node["id"] == 8 and node["isLabeled"] is True
    assert node["completedAt"] == "1970-01-01T00:50:00+00:00"
    assert node["completions"][0]["result"] == RESULT
    assert node["completions"][0]["taskId"] == 8


def test_bad_cursor_and_first(labeled: TestClient, gql: GraphQL) -> None:
    error = gql.error(PAGE, {"first": 2, "after": "garbage", "order": "ID_ASC"})
    assert error["code"] == "INVALID"
    cursor = gql(PAGE, {"first": 2, "order": "ID_ASC"})["project"]["tasks"]["pageInfo"]
    error = gql.error(PAGE, {"first": 2, "after": cursor["endCursor"], "order": "ID_DESC"})
    assert error["code"] == "INVALID" and "cursor" in error["message"]
    assert gql.error(PAGE, {"first": -1, "order": "ID_ASC"})["code"] == "INVALID"


def test_listing_100_tasks_uses_constant_queries(client: TestClient, gql: GraphQL) -> None:
    client.post("/api/project/config", data={"label_config": fixture_text("configs/sentiment.xml")})
    # The page (bench/graphql_pages.py), and with lsJson too.
    page = (
        "query($n: Int!) { project { tasks(first: $n) { nodes { id data "
        "completions { id result } predictions { score result } } } } }"
    )
    query = page.replace("nodes { id data", "nodes { id data lsJson")

    def queries_for(n: int, document: str = query) -> int:
        with count_queries() as counter:
            nodes = gql(document, {"n": n})["project"]["tasks"]["nodes"]
        assert len(nodes) == n
        assert [len(node["completions"]) for node in nodes] == [2] * n
        assert [node["predictions"][0]["score"] for node in nodes] == [i / 100 for i in range(n)]
        return counter.count

    tasks = [
        {
            "data": {"text": f"t{i}"},
            "completions": [{"result": RESULT}, {"result": []}],
            "predictions": [{"result": [], "score": i / 100}],
        }
        for i in range(100)
    ]
    client.post("/api/project/import", json=tasks)
    assert queries_for(100) == queries_for(10) == queries_for(1)
    assert queries_for(100) <= 6
    # The project, the page of tasks, their completions, their predictions.
    assert queries_for(100, page) == queries_for(10, page) == queries_for(1, page) == 4


def test_page_children_are_asked_for_the_tasks_whose_counters_say_they_have_some(
    client: TestClient, gql: GraphQL
) -> None:
    """Completions are queried for the tasks with completions, predictions for those with
    predictions; a page without any predictions needs no predictions query."""
    client.post("/api/project/config", data={"label_config": fixture_text("configs/sentiment.xml")})
    page = (
        "query($n: Int!) { project { tasks(first: $n) { nodes { id "
        "completions { result } predictions { score } } } } }"
    )
    tasks = [
        {"data": {"text": "both"}, "completions": [{"result": RESULT}],
         "predictions": [{"result": [], "score": 0.5}]},
        {"data": {"text": "completion"}, "completions": [{"result": []}]},
        {"data": {"text": "prediction"}, "predictions": [{"result": [], "score": 0.25}]},
        {"data": {"text": "none"}},
        {"data": {"text": "completions"}, "completions": [{"result": RESULT}, {"result": []}]},
    ]  # fmt: skip
    client.post("/api/project/import", json=tasks)

    def children(n: int) -> tuple[list[Any], int]:
        with count_queries() as counter:
            nodes = gql(page, {"n": n})["project"]["tasks"]["nodes"]
        shape = [([c["result"] for c in x["completions"]], [p["score"] for p in x["predictions"]])
                 for x in nodes]  # fmt: skip
        return shape, counter.count

    everything, statements = children(5)
    assert everything == [
        ([RESULT], [0.5]),
        ([[]], []),
        ([], [0.25]),
        ([], []),
        ([RESULT, []], []),
    ]
    assert statements == 4  # the project, the page, its completions, its predictions
    listed = gql("{ project { tasks(first: 5) { nodes { id } } } }")["project"]["tasks"]
    ids = [node["id"] for node in listed["nodes"]]
    # Without the first and third tasks, no task of the page has a prediction.
    for task_id in (ids[0], ids[2]):
        assert client.delete(f"/api/tasks/{task_id}").status_code == 204
    remaining, statements = children(3)
    assert remaining == [([[]], []), ([], []), ([RESULT, []], [])]
    assert statements == 3  # no predictions query


def test_task_mutations(labeled: TestClient, gql: GraphQL) -> None:
    created = gql(
        "mutation($c: JSON!) { createCompletion(taskId: 1, completion: $c, wasCancelled: true) "
        "{ id wasCancelled leadTime lsJson } }",
        {"c": {"result": RESULT, "lead_time": 2}},
    )["createCompletion"]
    assert created["wasCancelled"] is True and created["leadTime"] == 2.0
    assert created["lsJson"]["was_cancelled"] is True
    updated = gql(
        "mutation($id: Int!) { updateCompletion(id: $id, completion: {lead_time: 5}) "
        "{ leadTime wasCancelled } }",
        {"id": created["id"]},
    )["updateCompletion"]
    assert updated == {"leadTime": 5.0, "wasCancelled": False}
    task = gql(
        'mutation { updateTask(id: 1, data: {text: "changed"}, meta: {m: 1}) '
        "{ data meta totalCompletions } }"
    )["updateTask"]
    assert task == {"data": {"text": "changed"}, "meta": {"m": 1}, "totalCompletions": 1}
    assert gql("mutation($id: Int!) { deleteCompletion(id: $id) }", {"id": created["id"]})
    assert gql("mutation { deleteTask(id: 1) }") == {"deleteTask": 1}
    assert gql("mutation { deleteAllCompletions }") == {"deleteAllCompletions": 3}
    assert gql("mutation { deleteAllTasks }") == {"deleteAllTasks": 11}
    assert gql("{ project { taskCount completionCount } }")["project"] == {
        "taskCount": 0,
        "completionCount": 0,
    }


def test_errors_have_stable_codes(labeled: TestClient, gql: GraphQL) -> None:
    assert gql.error("{ task(id: 999) { id } }")["code"] == "NOT_FOUND"
    error = gql.error('mutation { updateTask(id: 1, data: {wrong: "x"}) { id } }')
    assert error["code"] == "INVALID_TASKS"
    assert error["errors"][0].startswith('Error   at item 0: "text" key is expected')
    error = gql.error('mutation { setLabelConfig(labelConfig: "<View>") { id } }')
    assert error["code"] == "INVALID_LABEL_CONFIG" and len(error["errors"]) == 1
    assert gql.error("{ nope }")["code"] == "GRAPHQL_VALIDATION_FAILED"
    error = gql.error("mutation { importTasks(tasks: [{wrong: 1}]) { taskCount } }")
    assert error["code"] == "INVALID_TASKS"
    error = gql.error("mutation { importTasks(tasks: []) { taskCount } }")
    assert error["code"] == "INVALID" and error["message"] == "data is empty"


def test_next_task_and_validation_queries(labeled: TestClient, gql: GraphQL) -> None:
    data = gql(
        '{ project { nextTask { id lsSourceJson } u: nextTask(sampling: "uniform") { isLabeled } }'
        ' validateLabelConfig(labelConfig: "<View><Text/>") { ok errors { message } } }'
    )
    assert data["project"]["nextTask"]["id"] == 1
    assert data["project"]["nextTask"]["lsSourceJson"]["predictions"] == []
    assert data["project"]["u"]["isLabeled"] is False
    assert data["validateLabelConfig"]["ok"] is False
    assert "Premature end of data" in data["validateLabelConfig"]["errors"][0]["message"]


def test_next_task_score_sampling_serves_tasks_without_predictions(
    client: TestClient, gql: GraphQL
) -> None:
    client.post("/api/project/config", data={"label_config": fixture_text("configs/sentiment.xml")})
    tasks = [
        {"data": {"text": "plain a"}},
        {"data": {"text": "scored"}, "predictions": [{"result": [], "score": 0.5}]},
        {"data": {"text": "plain b"}},
        {"data": {"text": "unscored"}, "predictions": [{"result": []}]},
    ]
    assert client.post("/api/project/import", json=tasks).status_code == 201
    query = '{ project { nextTask(sampling: "prediction-score-min") { id data } } }'
    served: list[str] = []
    while (task := gql(query)["project"]["nextTask"]) is not None and len(served) < 5:
        served.append(task["data"]["text"])
        client.post(f"/api/tasks/{task['id']}/completions", json={"result": RESULT})
    assert served == ["scored", "unscored", "plain a", "plain b"]
