"""Live updates in the labeling app, in two real browsers: a colleague labels the task on screen
and it leaves the queue (at once, or with a choice when there is unsaved work); an import
through Label Studio's REST route moves the counters, refills an "all done" stream and the task
list, and a new config offers a reload, with no reload and no polling by the page."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.harness import LiveProject, screenshot
from tests.browser.test_app_pages import choice
from tests.browser.test_labeling import SENTIMENT, editor_result, shown_task_id, wait_for_task

pytestmark = pytest.mark.live

LIVE_WAIT_MS = 10_000  # a bound, not an expectation: events arrive within milliseconds
RECONNECT_WAIT_MS = 40_000  # the back-off doubles from 0.5 s while the socket is refused
TOUCH = "mutation($id: Int!) { updateTask(id: $id, predictions: []) { id } }"
SUBSCRIPTIONS = ("projectChanged", "taskChanged")


def wait_until_subscribed(page: Any, live: LiveProject, task_id: int) -> None:
    """Block until the server delivers both of the page's subscriptions to it.

    graphql-transport-ws does not confirm a subscription, and the server registers it a moment
    after the socket opens: touch a task (an event for both subscriptions that changes nothing
    shown) until the page has heard both. A readiness handshake, not a sleep."""
    page.get_by_test_id("live-status").and_(page.locator('[data-state="live"]')).wait_for()
    deadline = time.monotonic() + 20
    while True:
        before = page.evaluate("() => ({ ...window.labelgraph.live.received })")
        live.gql(TOUCH, {"id": task_id})
        try:
            page.wait_for_function(
                "([names, before]) => names.every("
                "(n) => (window.labelgraph.live.received[n] ?? 0) > (before[n] ?? 0))",
                arg=[list(SUBSCRIPTIONS), before],
                timeout=1000,
            )
            return
        except Exception as missed:  # playwright's TimeoutError: touch again
            if "Timeout" not in type(missed).__name__:
                raise
            assert time.monotonic() < deadline, "the page never heard its subscriptions"


def counter(page: Any, key: str) -> Any:
    return page.get_by_test_id("counters").locator(f'[data-counter="{key}"] b')


def wait_for_counter(page: Any, key: str, value: int) -> None:
    counter(page, key).get_by_text(str(value), exact=True).wait_for(timeout=LIVE_WAIT_MS)


def submit_choice(page: Any, hotkey: str) -> None:
    page.keyboard.press(hotkey)
    page.get_by_role("button", name="Submit").click()


def test_a_colleague_takes_the_task_on_screen(
    page: Any, colleague_page: Any, live: LiveProject, artifacts: Path
) -> None:
    live.set_config(SENTIMENT)
    first, second, third = live.import_tasks([{"text": f"Review {n}"} for n in (1, 2, 3)])
    me, colleague = page, colleague_page
    for browser_page in (me, colleague):
        browser_page.goto(live.base + "/")
        wait_for_task(browser_page, first)
    wait_until_subscribed(me, live, third)

    # Untouched task: the colleague submits it, it leaves my screen at once, one line says why.
    submit_choice(colleague, "1")
    wait_for_task(colleague, second)
    me.locator(f'[data-testid="task-id"][data-task-id="{second}"]').wait_for(timeout=LIVE_WAIT_MS)
    taken = me.get_by_test_id("task-taken")
    assert taken.inner_text().startswith(f"Task #{first} was just labeled by someone else.")
    wait_for_counter(me, "labeledTaskCount", 1)
    wait_for_counter(me, "completionCount", 1)
    screenshot(me, artifacts, "app-live-task-taken")

    # Unsaved work: I chose "Negative" when the colleague submits the same task. I stay on it,
    # am told so and choose; keeping on, my choice is still there and is stored on submit.
    me.keyboard.press("2")
    mine = editor_result(me)
    assert [r["value"] for r in mine] == [{"choices": ["Negative"]}]
    submit_choice(colleague, "1")
    wait_for_task(colleague, third)
    me.get_by_test_id("keep-labeling").wait_for(timeout=LIVE_WAIT_MS)
    assert f"Task #{second} was just labeled by someone else" in taken.inner_text()
    assert "not saved yet" in taken.inner_text()
    assert me.get_by_test_id("next-task").is_visible()
    wait_for_counter(me, "labeledTaskCount", 2)
    assert shown_task_id(me) == second
    screenshot(me, artifacts, "app-live-unsaved-work")
    me.get_by_test_id("keep-labeling").click()
    assert me.get_by_test_id("task-taken").count() == 0
    assert editor_result(me) == mine
    me.get_by_role("button", name="Submit").click()
    wait_for_task(me, third)
    stored = live.rest_task(second)["completions"]
    assert sorted(c["result"][0]["value"]["choices"][0] for c in stored) == [
        "Negative",
        "Positive",
    ]
    wait_for_counter(colleague, "completionCount", 3)


def test_counters_queue_and_list_follow_rest_changes(
    page: Any, live: LiveProject, artifacts: Path
) -> None:
    live.set_config(SENTIMENT)
    (done,) = live.import_tasks([{"text": "Already labeled"}])
    live.gql(
        "mutation($t: Int!, $c: JSON!) { createCompletion(taskId: $t, completion: $c) { id } }",
        {"t": done, "c": {"result": choice("Positive")}},
    )
    # Subscribed on the import page (no live view of its own, so the handshake's events leave
    # nothing pending), then to the label stream by the menu: the same page and socket.
    page.goto(live.base + "/#/import")
    wait_until_subscribed(page, live, done)
    page.get_by_role("link", name="Label", exact=True).click()
    page.get_by_test_id("all-done").wait_for()

    # An import through REST: the counters move and the "all done" stream shows the new task.
    with httpx.Client(base_url=live.base, timeout=30) as rest:
        answer = rest.post("/api/project/import", json=[{"text": "New A"}, {"text": "New B"}])
        assert answer.status_code == 201, answer.text
        wait_for_counter(page, "taskCount", 3)
        page.get_by_text("New A").wait_for(timeout=LIVE_WAIT_MS)
        new_a = shown_task_id(page)
        assert new_a > done
        screenshot(page, artifacts, "app-live-import")

        # The task list reads its page again when tasks are labeled or created elsewhere.
        page.get_by_role("link", name="Tasks", exact=True).click()
        page.get_by_test_id("page-of").get_by_text("(3 tasks)").wait_for()
        created = rest.post(f"/api/tasks/{new_a}/completions", json={"result": choice("Negative")})
        assert created.status_code == 201, created.text
        row = page.locator(f'table.lg-tasks tr[data-task-id="{new_a}"] td').nth(2)
        row.get_by_text("1", exact=True).wait_for(timeout=LIVE_WAIT_MS)
        wait_for_counter(page, "labeledTaskCount", 2)
        answer = rest.post("/api/project/import", json=[{"text": "New C"}])
        assert answer.status_code == 201, answer.text
        page.get_by_test_id("page-of").get_by_text("(4 tasks)").wait_for(timeout=LIVE_WAIT_MS)
        wait_for_counter(page, "taskCount", 4)
        assert page.locator("table.lg-tasks tbody tr").count() == 4
        screenshot(page, artifacts, "app-live-task-list")

    # The editor is built from the config once per page: a new config offers a reload.
    live.set_config(SENTIMENT.replace("</Choices>", '<Choice value="Neutral"/></Choices>'))
    banner = page.get_by_test_id("config-changed")
    banner.wait_for(timeout=LIVE_WAIT_MS)
    assert "Reload" in banner.inner_text()


def test_after_a_lost_connection_the_app_reconnects_and_catches_up(
    page: Any, live: LiveProject
) -> None:
    """The socket drops and stays refused while tasks are imported (their events are lost): on
    reconnection the app reads its counters anew. (On the import page, which has no live view
    of its own: only the catch-up can move the counters.)"""
    sockets: list[Any] = []
    refusing = False

    def route(socket: Any) -> None:
        if refusing:
            socket.close(code=1012, reason="restarting")
            return
        socket.connect_to_server()
        sockets.append(socket)

    page.route_web_socket("**/graphql", route)
    live.set_config(SENTIMENT)
    (first,) = live.import_tasks([{"text": "Before the outage"}])
    page.goto(live.base + "/#/import")
    wait_for_counter(page, "taskCount", 1)
    wait_until_subscribed(page, live, first)

    refusing = True
    sockets[-1].close(code=1012, reason="restarting")
    status = page.get_by_test_id("live-status")
    status.and_(page.locator('[data-state="offline"]')).wait_for(timeout=LIVE_WAIT_MS)
    live.import_tasks([{"text": "During the outage"}, {"text": "Also during it"}])
    assert counter(page, "taskCount").inner_text() == "1"
    refusing = False
    status.and_(page.locator('[data-state="live"]')).wait_for(timeout=RECONNECT_WAIT_MS)
    wait_for_counter(page, "taskCount", 3)
