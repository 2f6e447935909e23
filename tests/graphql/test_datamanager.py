"""Project.tasks / taskPage with filter, search, sortBy and view; saved views; error codes."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from server.services.datamanager import listing
from server.services.tasks import tasks as task_service
from tests.conftest import GraphQL
from tests.query_log import count_queries

FILTERED = """
query($filter: TaskFilter, $search: String, $sort: TaskSort, $first: Int = 10, $after: String) {
  project { tasks(first: $first, after: $after, filter: $filter, search: $search, sortBy: $sort) {
    totalCount pageInfo { hasNextPage endCursor } nodes { id } } }
}
"""


def ids(gql: GraphQL, **variables: Any) -> list[int]:
    data = gql(FILTERED, variables)["project"]["tasks"]
    return [n["id"] for n in data["nodes"]]


def test_filters_sorts_and_counts(dm_project: TestClient, gql: GraphQL) -> None:
    has_negative = {"field": "labels", "operator": "EQUAL", "value": "Negative"}
    assert ids(gql, filter=has_negative) == [1, 3]
    low_score = {"field": "predictionsScore", "operator": "LESS", "value": 0.5}
    either = {"or": [has_negative, low_score]}
    data = gql(FILTERED, {"filter": either, "first": 2})["project"]["tasks"]
    assert [n["id"] for n in data["nodes"]] == [1, 3] and data["totalCount"] == 3
    after = data["pageInfo"]["endCursor"]
    assert ids(gql, filter=either, first=2, after=after) == [4]
    completed = {"field": "completedAt", "operator": "GREATER", "value": "1970-01-01T00:20:00Z"}
    assert ids(gql, filter=completed, sort={"field": "completedAt", "descending": True}) == [2, 1]
    assert ids(gql, sort={"field": "data.n", "descending": True}) == [6, 5, 4, 3, 2, 1]
    unlabeled = {"field": "isLabeled", "operator": "EQUAL", "value": False}
    version = {"field": "modelVersion", "operator": "NOT_EQUAL", "value": "m1"}
    assert ids(gql, filter={"and": [unlabeled, version]}) == [5, 6]


def test_task_page_totals_follow_the_filter(dm_project: TestClient, gql: GraphQL) -> None:
    query = (
        "query($f: TaskFilter) { project { taskPage(page: 1, pageSize: 1, filter: $f) {"
        " total totalCompletions totalPredictions tasks { id } } } }"
    )
    labeled_only = {"field": "is_labeled", "operator": "EQUAL", "value": True}
    page = gql(query, {"f": labeled_only})["project"]["taskPage"]
    assert page == {"total": 3, "totalCompletions": 3, "totalPredictions": 0, "tasks": [{"id": 1}]}


def test_a_pages_ls_json_is_its_tasks_ls_json_and_the_rest_page(
    dm_project: TestClient, gql: GraphQL
) -> None:
    """``taskPage { lsJson }`` (the REST facade's one field) answers each task's ``lsJson``,
    in order, with completions, and the REST page serves exactly that."""
    query = (
        "query($f: TaskFilter) { project { taskPage(page: 1, pageSize: 4, filter: $f,"
        " orderBy: ID_DESC) { lsJson tasks { id lsJson } } } }"
    )
    labeled = {"field": "is_labeled", "operator": "EQUAL", "value": True}
    for variables in ({}, {"f": labeled}):
        page = gql(query, variables)["project"]["taskPage"]
        assert page["lsJson"] == [task["lsJson"] for task in page["tasks"]]
        assert [task["id"] for task in page["lsJson"]] == [task["id"] for task in page["tasks"]]
    assert len(page["lsJson"]) == 3 and all(task["completions"] for task in page["lsJson"])
    everything = gql(query, {})["project"]["taskPage"]["lsJson"]
    rest = dm_project.get("/api/tasks", params={"page": 1, "page_size": 4, "order": "-id"})
    assert rest.json()["tasks"] == everything


@pytest.mark.parametrize("filtered", [False, True])
def test_cursors_are_encoded_only_when_read_and_resume_where_they_point(
    dm_project: TestClient, gql: GraphQL, monkeypatch: pytest.MonkeyPatch, filtered: bool
) -> None:
    """A page's cursors are made when a client reads them (an edge's cursor, endCursor),
    for the plain keyset pages and the data manager's listing alike; each resumes after its
    own task."""
    encoded: list[int] = []
    for module, name in ((task_service, "_encode_cursor"), (listing, "encode_cursor")):
        real = getattr(module, name)

        def counting(*args: Any, real: Any = real, **kwargs: Any) -> str:
            encoded.append(1)
            return str(real(*args, **kwargs))

        monkeypatch.setattr(module, name, counting)
    where = ', filter: {field: "id", operator: GREATER, value: 0}' if filtered else ""
    page = "query($after: String) { project { tasks(first: 4, after: $after%s) { %s } } }"
    assert len(gql(page % (where, "nodes { id }"))["project"]["tasks"]["nodes"]) == 4
    assert encoded == []
    gql(page % (where, "pageInfo { endCursor }"))
    assert len(encoded) == 1
    encoded.clear()
    edges = gql(page % (where, "edges { cursor node { id } }"))["project"]["tasks"]["edges"]
    assert len(encoded) == 4
    after = gql(page % (where, "nodes { id }"), {"after": edges[1]["cursor"]})
    later = [n["id"] for n in after["project"]["tasks"]["nodes"]]
    assert later[:2] == [edges[2]["node"]["id"], edges[3]["node"]["id"]]


def test_full_text_search_follows_imports_updates_and_deletes(
    dm_project: TestClient, gql: GraphQL
) -> None:
    assert ids(gql, search="refund") == [1, 3, 5]
    assert ids(gql, search="REFUND order") == [1, 5]
    assert gql(FILTERED, {"search": "refund"})["project"]["tasks"]["totalCount"] == 3
    gql('mutation { updateTask(id: 2, data: {text: "no refund needed"}) { id } }')
    gql("mutation { deleteTask(id: 1) }")
    assert ids(gql, search="refund") == [2, 3, 5]
    assert ids(gql, search="great") == []
    has_negative = {"field": "labels", "operator": "EQUAL", "value": "Negative"}
    assert ids(gql, search="refund", filter=has_negative) == [3]
    assert ids(gql, search="  ,, ") == [2, 3, 4, 5, 6]  # no word: no condition


def test_bad_filters_have_the_code_bad_filter(dm_project: TestClient, gql: GraphQL) -> None:
    unknown = gql.error(FILTERED, {"filter": {"field": "colour", "operator": "EQUAL", "value": 1}})
    assert unknown["code"] == "BAD_FILTER" and "Unknown task field 'colour'" in unknown["message"]
    wrong = {"field": "isLabeled", "operator": "CONTAINS", "value": "x"}
    error = gql.error(FILTERED, {"filter": wrong})
    assert error["code"] == "BAD_FILTER" and "does not apply to is_labeled" in error["message"]
    bad_value = {"field": "completedAt", "operator": "LESS", "value": "yesterday"}
    assert gql.error(FILTERED, {"filter": bad_value})["code"] == "BAD_FILTER"
    bad_range = {"field": "id", "operator": "IN", "value": 3}
    assert gql.error(FILTERED, {"filter": bad_range})["code"] == "BAD_FILTER"
    assert gql.error(FILTERED, {"sort": {"field": "nope"}})["code"] == "BAD_FILTER"


def test_saved_views_apply_and_stay_in_their_project(dm_project: TestClient, gql: GraphQL) -> None:
    save = (
        "mutation($v: TaskViewInput!, $id: Int) { saveView(view: $v, id: $id) {"
        " id title filters ordering selection } }"
    )
    negative = {
        "conjunction": "and",
        "items": [
            {
                "filter": "filters:tasks:completions_results",
                "operator": "equal",
                "value": "Negative",
            }
        ],
    }
    view = gql(save, {"v": {"title": "Negatives", "filters": negative, "ordering": ["-id"]}})
    assert view["saveView"]["id"] == 1
    query = "query($v: ID) { project { tasks(view: $v) { nodes { id } } views { id title } } }"
    data = gql(query, {"v": "1"})["project"]
    assert [n["id"] for n in data["tasks"]["nodes"]] == [3, 1]
    assert data["views"] == [{"id": 1, "title": "Negatives"}]
    assert gql.error(query, {"v": "2"})["code"] == "NOT_FOUND"
    assert gql.error(query, {"v": "-1"})["code"] == "NOT_FOUND"

    selection = (
        "mutation($s: JSON!, $c: SelectionChange!) { updateViewSelection(id: 1, selection: $s,"
        " change: $c) { selection } }"
    )
    picked = gql(selection, {"s": {"all": False, "included": [2, 4]}, "c": "SET"})
    assert picked["updateViewSelection"]["selection"] == {"all": False, "included": [2, 4]}
    union = gql(selection, {"s": {"all": False, "included": [5]}, "c": "UNION"})
    assert union["updateViewSelection"]["selection"] == {"all": False, "included": [2, 4, 5]}
    hostile = gql.error(selection, {"s": {"all": False, "included": [2, 999]}, "c": "SET"})
    assert hostile["code"] == "NOT_FOUND"
    # A changed filter resets the selection, as Label Studio does.
    changed = gql(save, {"id": 1, "v": {"filters": {"conjunction": "and", "items": []}}})
    assert changed["saveView"]["selection"] == {"all": False, "included": []}
    bad = gql.error(save, {"v": {"filters": {"items": [{"filter": "x", "operator": "equal"}]}}})
    assert bad["code"] == "BAD_FILTER"
    assert gql("mutation { deleteView(id: 1) }") == {"deleteView": 1}
    assert gql.error("mutation { deleteView(id: 1) }")["code"] == "NOT_FOUND"


def test_filtered_pages_use_constant_queries(dm_project: TestClient, gql: GraphQL) -> None:
    query = (
        "query($n: Int!, $f: TaskFilter) { project { tasks(first: $n, filter: $f,"
        ' search: "refund") { totalCount nodes { id lsJson completions { id } } } } }'
    )
    anything = {"field": "id", "operator": "GREATER", "value": 0}

    def queries_for(n: int) -> int:
        with count_queries() as counter:
            nodes = gql(query, {"n": n, "f": anything})["project"]["tasks"]["nodes"]
        assert len(nodes) == n
        return counter.count

    assert queries_for(3) == queries_for(1) <= 6


def test_search_words_joined_by_underscores_or_marks_match_as_the_index_splits_them(
    dm_project: TestClient, gql: GraphQL
) -> None:
    gql('mutation { updateTask(id: 2, data: {text: "ticket order_id refund_late x"}) { id } }')
    assert ids(gql, search="order_id") == [2]
    assert ids(gql, search="refund_late") == [2]
    assert ids(gql, search="late_refund") == [2]  # every word, in any order
    assert ids(gql, search="__") == [1, 2, 3, 4, 5, 6]  # no word: no condition
    assert ids(gql, search="order-id") == [2]
