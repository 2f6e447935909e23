"""The app's other pages in a real browser: the task list (paging, counters), one task's
completions (update, delete) and the import page (files through the GraphQL multipart spec)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.harness import LiveProject, screenshot
from tests.browser.test_labeling import SENTIMENT, editor_result

pytestmark = pytest.mark.live

CREATE = "mutation($t: Int!, $c: JSON!) { createCompletion(taskId: $t, completion: $c) { id } }"


def choice(value: str) -> list[dict[str, Any]]:
    return [
        {
            "id": "r1",
            "from_name": "sentiment",
            "to_name": "text",
            "type": "choices",
            "value": {"choices": [value]},
        }
    ]


def test_task_list_pages_and_counters(page: Any, live: LiveProject, artifacts: Path) -> None:
    live.set_config(SENTIMENT)
    ids = live.import_tasks([{"text": f"task number {n}"} for n in range(35)])
    live.gql(CREATE, {"t": ids[0], "c": {"result": choice("Positive")}})
    page.goto(live.base + "/#/tasks")
    page.get_by_test_id("page-of").get_by_text("Page 1 of 2 (35 tasks)").wait_for()
    rows = page.locator("table.lg-tasks tbody tr")
    assert rows.count() == 30
    assert rows.first.get_attribute("data-task-id") == str(ids[0])
    counters = page.get_by_test_id("counters")
    assert counters.locator('[data-counter="taskCount"]').inner_text() == "35 tasks"
    assert counters.locator('[data-counter="labeledTaskCount"]').inner_text() == "1 labeled"
    screenshot(page, artifacts, "app-tasks")
    page.get_by_role("button", name="Next").click()
    page.get_by_test_id("page-of").get_by_text("Page 2 of 2 (35 tasks)").wait_for()
    assert [rows.nth(i).get_attribute("data-task-id") for i in range(rows.count())] == [
        str(i) for i in ids[30:]
    ]
    rows.first.get_by_role("link").click()
    page.locator(f'[data-testid="task-id"][data-task-id="{ids[30]}"]').wait_for()
    page.get_by_text(f"task number {30}").wait_for()


def test_update_and_delete_a_completion(page: Any, live: LiveProject) -> None:
    live.set_config(SENTIMENT)
    (task,) = live.import_tasks([{"text": "Changed my mind"}])
    completion = live.gql(CREATE, {"t": task, "c": {"result": choice("Positive")}})
    completion_id = completion["createCompletion"]["id"]
    page.goto(f"{live.base}/#/tasks/{task}")
    page.get_by_text("Changed my mind").wait_for()
    page.get_by_text(f"ID {completion_id}").first.wait_for()
    page.keyboard.press("2")  # Negative (single choice: replaces Positive)
    expected = editor_result(page)
    assert [r["value"] for r in expected] == [{"choices": ["Negative"]}]
    page.get_by_role("button", name="Update").click()
    page.get_by_test_id("saved").get_by_text("Completion updated.").wait_for()
    stored = live.rest_task(task)["completions"]
    assert [c["id"] for c in stored] == [completion_id]
    assert stored[0]["result"] == expected

    # The trash button of the selected completion, then the editor's own confirmation.
    page.locator(".ant-btn-dangerous, .ant-btn-danger").first.click()
    page.get_by_text("Please confirm you want to delete this completion").wait_for()
    page.get_by_role("button", name="Delete", exact=True).click()
    page.get_by_test_id("saved").get_by_text("Completion deleted.").wait_for()
    assert not live.rest_task(task).get("completions")
    assert live.gql(f"{{ task(id: {task}) {{ totalCompletions }} }}")["task"] == {
        "totalCompletions": 0
    }


def test_import_files_through_the_app(page: Any, live: LiveProject, tmp_path: Path) -> None:
    live.set_config(SENTIMENT)
    upload = tmp_path / "tasks.json"
    upload.write_text('[{"text": "uploaded one"}, {"text": "uploaded two"}]')
    page.goto(live.base + "/#/import")
    page.get_by_label("task files").set_input_files(str(upload))
    page.get_by_role("button", name="Upload").click()
    report = page.get_by_test_id("import-report")
    report.wait_for()
    assert report.inner_text().startswith("Imported 2 tasks")
    counters = page.get_by_test_id("counters")
    counters.locator('[data-counter="taskCount"]').get_by_text("2").wait_for()
    tasks = live.gql("{ project { tasks(first: 5) { nodes { data } } } }")
    assert [t["data"] for t in tasks["project"]["tasks"]["nodes"]] == [
        {"text": "uploaded one"},
        {"text": "uploaded two"},
    ]
    # A bad file is refused with the server's reason, on the page.
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2")
    page.get_by_label("task files").set_input_files(str(bad))
    page.get_by_role("button", name="Upload").click()
    assert "Import refused" in page.get_by_test_id("import-error").inner_text()


def test_no_skip_button_when_the_project_hides_it(page: Any, live: LiveProject) -> None:
    live.set_config(SENTIMENT)
    (task,) = live.import_tasks([{"text": "No skipping"}])
    live.gql("mutation { updateProject(input: {showSkipButton: false}) { showSkipButton } }")
    page.goto(live.base + "/")
    page.locator(f'[data-testid="task-id"][data-task-id="{task}"]').wait_for()
    page.get_by_role("button", name="Submit").wait_for()
    assert page.get_by_role("button", name="Skip").count() == 0
