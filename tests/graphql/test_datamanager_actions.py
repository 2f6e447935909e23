"""runTaskAction: bulk deletes, prediction jobs and exports of a selection, view or filter."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest
from starlette.testclient import TestClient

from server.services import events
from server.services.datamanager import actions
from server.services.events import bus
from tests.conftest import GraphQL
from tests.services.test_events import Recorder

RUN = """
mutation($a: TaskAction!, $s: JSON, $v: ID, $f: TaskFilter, $format: String) {
  runTaskAction(action: $a, selection: $s, view: $v, filter: $f, format: $format) {
    action processedItems detail export { url taskCount } job { id }
  }
}
"""
STATE = """{ project { taskCount labeledTaskCount completionCount predictionCount
  taskPage(page: 1, pageSize: 50, orderBy: COMPLETED_AT_DESC) { tasks { id } }
  tasks(first: 50) { nodes { id isLabeled totalPredictions } } } }"""
NEGATIVE = {"field": "labels", "operator": "EQUAL", "value": "Negative"}


def run(gql: GraphQL, action: str, **variables: Any) -> dict[str, Any]:
    result: dict[str, Any] = gql(RUN, {"a": action, **variables})["runTaskAction"]
    return result


@pytest.mark.parametrize("rebuild_over", [200, 0])
def test_delete_tasks_of_a_selection(
    dm_project: TestClient, gql: GraphQL, monkeypatch: pytest.MonkeyPatch, rebuild_over: int
) -> None:
    monkeypatch.setattr(actions, "REBUILD_OVER", rebuild_over)
    done = run(gql, "DELETE_TASKS", s={"all": False, "included": [1, 4]})
    assert (done["processedItems"], done["detail"]) == (2, "Deleted 2 tasks")
    project = gql(STATE)["project"]
    assert (project["taskCount"], project["labeledTaskCount"], project["completionCount"]) == (
        4,
        2,
        2,
    )
    assert [t["id"] for t in project["taskPage"]["tasks"]] == [2, 3, 5, 6]
    assert [t["id"] for t in project["tasks"]["nodes"]] == [2, 3, 5, 6]


def test_delete_completions_by_filter_and_predictions_by_view(
    dm_project: TestClient, gql: GraphQL
) -> None:
    done = run(gql, "DELETE_TASKS_COMPLETIONS", f=NEGATIVE)
    assert (done["processedItems"], done["detail"]) == (2, "Deleted 2 completions")
    project = gql(STATE)["project"]
    assert (project["labeledTaskCount"], project["completionCount"]) == (1, 1)
    assert [t["id"] for t in project["taskPage"]["tasks"]] == [2, 1, 3, 4, 5, 6]
    left = gql(
        "query($f: TaskFilter) { project { tasks(filter: $f) { totalCount } } }", {"f": NEGATIVE}
    )
    assert left["project"]["tasks"]["totalCount"] == 0

    gql('mutation { saveView(view: {title: "t", selection: {all: true, excluded: [6]}}) { id } }')
    done = run(gql, "DELETE_TASKS_PREDICTIONS", v="1")
    assert done["processedItems"] == 1  # task 4's; task 6 is excluded
    project = gql(STATE)["project"]
    assert project["predictionCount"] == 1
    assert [t["totalPredictions"] for t in project["tasks"]["nodes"]] == [0, 0, 0, 0, 0, 1]


def test_hostile_and_empty_selections_change_nothing(dm_project: TestClient, gql: GraphQL) -> None:
    before = gql(STATE)
    hostile = gql.error(RUN, {"a": "DELETE_TASKS", "s": {"all": False, "included": [2, 10**6]}})
    assert hostile["code"] == "NOT_FOUND"
    empty = gql.error(RUN, {"a": "DELETE_TASKS", "s": {"all": False, "included": []}})
    assert empty["code"] == "NOT_FOUND" and "no selected items" in empty["message"]
    assert gql.error(RUN, {"a": "DELETE_TASKS"})["code"] == "INVALID"
    assert gql.error(RUN, {"a": "DELETE_TASKS", "v": "7"})["code"] == "NOT_FOUND"
    assert gql.error(RUN, {"a": "PREDICT", "s": {"all": True, "excluded": []}})["code"] == (
        "INVALID"  # no ML backend
    )
    assert gql(STATE) == before


@pytest.mark.parametrize("format_name", ["JSON", "JSON_MIN", "CSV"])
def test_export_only_the_selection(dm_project: TestClient, gql: GraphQL, format_name: str) -> None:
    done = run(gql, "EXPORT", s={"all": True, "excluded": [3]}, f=NEGATIVE, format=format_name)
    assert done["processedItems"] == 1 and done["export"]["taskCount"] == 1
    response = dm_project.get(done["export"]["url"])
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        (name,) = archive.namelist()
        text = archive.read(name).decode()
    if format_name == "CSV":
        rows = text.strip().splitlines()
        assert len(rows) == 2 and "please refund my order" in rows[1]
    else:
        exported = json.loads(text)
        assert len(exported) == 1 and exported[0]["id"] == 1


def test_bulk_deletes_are_announced_after_their_commit(
    dm_project: TestClient, gql: GraphQL, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Subscribers and webhooks hear of bulk deletions as of single ones (TASKS_DELETED,
    ANNOTATIONS_DELETED)."""
    # Only what this process commits counts: on PostgreSQL the broker may still hand the local
    # sink a batch an earlier test's app published (its publisher thread sends after commit).
    committed: list[list[events.Event]] = []
    commit = bus.committed

    def record_commit(batch: list[events.Event]) -> None:
        committed.append(list(batch))
        commit(batch)

    monkeypatch.setattr(bus, "committed", record_commit)
    previous, bus.local = bus.local, Recorder()  # a subscriber, so that the events are made
    try:
        run(gql, "DELETE_TASKS_COMPLETIONS", f=NEGATIVE)
        run(gql, "DELETE_TASKS", s={"all": False, "included": [1, 4]})
    finally:
        bus.local = previous
    found = [(e.kind, list(e.ids), e.data.get("count")) for b in committed for e in b]
    deleted_completions = [f for f in found if f[0] == events.COMPLETION_DELETED]
    assert len(deleted_completions) == 1 and deleted_completions[0][2] == 2
    assert (events.TASK_DELETED, [1, 4], 2) in found
    assert sum(1 for f in found if f[0] == events.PROJECT_UPDATED) == 2
