"""Label Studio 0.9.1's data-manager routes (rest-api.md Appendix A) over the GraphQL data
manager: shapes and statuses, Label Studio's filter JSON, and 4xx where Label Studio had 500s."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

NEGATIVE_FILTER = {
    "conjunction": "and",
    "items": [
        {
            "filter": "filters:tasks:completions_results",
            "operator": "contains",
            "type": "String",
            "value": "negat",
        }
    ],
}


def test_columns(dm_project: TestClient) -> None:
    body = dm_project.get("/api/project/columns").json()
    ids = [c["id"] for c in body["columns"]]
    assert ids[0] == "text" and body["columns"][0]["parent"] == "data"
    assert ids[ids.index("n") - 1] == "text" and ids[-1] == "data"
    assert ids[-9:-1] == [
        "id",
        "completed_at",
        "total_completions",
        "cancelled_completions",
        "total_predictions",
        "completions_results",
        "predictions_score",
        "predictions_results",
    ]
    assert body["columns"][-1]["children"] == ["text", "n"]


def test_tabs_lifecycle(dm_project: TestClient) -> None:
    default = {"tabs": [{"id": 1, "title": "Tab 1", "hiddenColumns": None}]}
    assert dm_project.get("/api/project/tabs").json() == default
    assert dm_project.get("/api/project/tabs/1").json() == default["tabs"][0]
    missing = dm_project.get("/api/project/tabs/5")
    assert missing.status_code == 404 and missing.json()["detail"] == "No tab with id: 5"

    tab = {
        "title": "Negatives",
        "filters": NEGATIVE_FILTER,
        "ordering": ["-tasks:id"],
        "hiddenColumns": {"explore": ["tasks:data.n"]},
        "custom": 3,
    }
    saved = dm_project.post("/api/project/tabs/2", json=tab)
    assert saved.status_code == 200
    assert saved.json() == {
        **tab,
        "id": 2,
        "selectedItems": {"all": False, "included": []},
    }
    assert dm_project.get("/api/project/tabs").json()["tabs"] == [saved.json()]

    tasks = dm_project.get("/api/project/tabs/2/tasks", params={"page": 1, "page_size": 1})
    assert tasks.status_code == 200
    page = tasks.json()
    assert [t["id"] for t in page["tasks"]] == [3]
    assert (page["total"], page["total_completions"], page["total_predictions"]) == (2, 2, 0)
    assert page["tasks"][0]["completions_results"]

    notes = dm_project.get("/api/project/tabs/2/annotations").json()
    assert notes["total"] == 2
    assert [(a["task_id"], a["created_at"]) for a in notes["annotations"]] == [
        (1, "1970-01-01T00:33:20.000000Z"),
        (3, "1970-01-01T00:16:40.000000Z"),
    ]

    assert dm_project.delete("/api/project/tabs/2").status_code == 204
    assert dm_project.delete("/api/project/tabs/2").status_code == 204  # as Label Studio
    assert dm_project.get("/api/project/tabs/2").status_code == 404
    dm_project.post("/api/project/tabs/3", json={"title": "x"})
    assert dm_project.delete("/api/project/tabs").status_code == 204
    assert dm_project.get("/api/project/tabs").json() == default


def test_datetime_filters_in_label_studios_format(dm_project: TestClient) -> None:
    window = {
        "conjunction": "and",
        "items": [
            {
                "filter": "filters:tasks:completed_at",
                "operator": "in",
                "type": "Datetime",
                "value": {
                    "min": "1970-01-01T00:20:00.000000Z",
                    "max": "1970-01-01T01:00:00.000000Z",
                },
            },
            {"filter": "filters:tasks:data.n", "operator": "less", "type": "Number", "value": 5},
        ],
    }
    dm_project.post("/api/project/tabs/1", json={"filters": window, "ordering": ["tasks:id"]})
    page = dm_project.get("/api/project/tabs/1/tasks").json()
    assert [t["id"] for t in page["tasks"]] == [1, 2]
    typing = {"filter": "filters:tasks:id", "operator": "equal", "type": "Number", "value": None}
    dm_project.post(
        "/api/project/tabs/1", json={"filters": {"conjunction": "or", "items": [typing]}}
    )
    assert dm_project.get("/api/project/tabs/1/tasks").json()["total"] == 0


def test_selected_items(dm_project: TestClient) -> None:
    url = "/api/project/tabs/4/selected-items"
    created = dm_project.post(url, json={"all": False, "included": [2, 3]})
    assert created.status_code == 201
    assert created.json()["selectedItems"] == {"all": False, "included": [2, 3]}
    patched = dm_project.patch(url, json={"all": False, "included": [5]})
    assert patched.status_code == 201
    assert patched.json()["selectedItems"]["included"] == [2, 3, 5]
    deleted = dm_project.request("DELETE", url, json={"all": False, "included": [3]})
    assert deleted.status_code == 204 and deleted.content == b""
    assert dm_project.get(url).json() == {"all": False, "included": [2, 5]}
    bad = dm_project.post(url, json={"all": True, "included": [1]})
    assert bad.status_code == 400 and "JSON body must be dict" in bad.json()["detail"]
    foreign = dm_project.post(url, json={"all": False, "included": [2, 999]})
    assert foreign.status_code == 404 and foreign.json()["detail"] == "Task 999 not found"


def test_actions(dm_project: TestClient) -> None:
    listed = dm_project.get("/api/project/actions").json()
    assert [a["id"] for a in listed][:2] == ["delete_tasks", "delete_tasks_completions"]
    assert listed[0] == {
        "id": "delete_tasks",
        "title": "Delete tasks",
        "order": 100,
        "permissions": "project.can_delete_tasks",
    }

    dm_project.post("/api/project/tabs/1/selected-items", json={"all": False, "included": [1, 2]})
    done = dm_project.post("/api/project/tabs/1/actions", params={"id": "delete_tasks_completions"})
    assert done.status_code == 200
    assert done.json() == {"processed_items": 2, "detail": "Deleted 2 completions"}
    assert dm_project.get("/api/completions").json() == {"ids": [3]}

    body: dict[str, Any] = {"selectedItems": {"all": True, "excluded": [1, 2, 3, 4]}}
    done = dm_project.post("/api/project/actions", params={"id": "delete_tasks"}, json=body)
    assert done.json() == {"processed_items": 2, "detail": "Deleted 2 tasks"}
    assert dm_project.get("/api/tasks").json()["total"] == 4


def test_action_errors_are_4xx(dm_project: TestClient) -> None:
    none = dm_project.post("/api/project/actions", params={"id": "delete_tasks"})
    assert none.status_code == 404
    assert none.json()["detail"] == "no selected items on tab with id None"
    body = {"selectedItems": {"all": False, "included": [1]}}
    no_id = dm_project.post("/api/project/actions", json=body)
    assert no_id.status_code == 422
    assert no_id.json()["detail"] == 'No action id "None", use ?id=<action-id>'
    unknown = dm_project.post("/api/project/actions", params={"id": "explode"}, json=body)
    assert unknown.status_code == 400
    empty_tab = dm_project.post("/api/project/tabs/1/actions", params={"id": "delete_tasks"})
    assert empty_tab.status_code == 404
    assert empty_tab.json()["detail"] == "no selected items on tab with id 1"
    bad = dm_project.post(
        "/api/project/actions", params={"id": "delete_tasks"}, json={"selectedItems": [1]}
    )
    assert bad.status_code == 400
    assert dm_project.get("/api/tasks").json()["total"] == 6


def test_bad_tabs_are_4xx(dm_project: TestClient) -> None:
    unknown_field = {
        "conjunction": "and",
        "items": [{"filter": "filters:tasks:colour", "operator": "equal", "value": 1}],
    }
    response = dm_project.post("/api/project/tabs/1", json={"filters": unknown_field})
    assert response.status_code == 400 and "colour" in response.json()["detail"]
    bad_order = dm_project.post("/api/project/tabs/1", json={"ordering": ["tasks:nope"]})
    assert bad_order.status_code == 400
    assert dm_project.post("/api/project/tabs/1", json=[1]).status_code == 400
    assert dm_project.get("/api/project/tabs/x").status_code == 404
    paging = dm_project.get("/api/project/tabs/1/tasks", params={"page": 0})
    assert paging.status_code == 422
    assert paging.json()["detail"] == "Incorrect page or page_size"
