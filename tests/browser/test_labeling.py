"""The labeling app at / in a real browser: label with the keyboard and the mouse, submit,
skip, the "all done" state; what was stored is read back through Label Studio's REST route."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.harness import LiveProject, screenshot

pytestmark = pytest.mark.live

SENTIMENT = (
    '<View><Text name="text" value="$text"/>'
    '<Choices name="sentiment" toName="text" choice="single">'
    '<Choice value="Positive"/><Choice value="Negative"/></Choices></View>'
)
BOXES = (
    '<View><Image name="image" value="$image"/>'
    '<RectangleLabels name="label" toName="image">'
    '<Label value="Airplane"/><Label value="Car"/></RectangleLabels></View>'
)


def shown_task_id(page: Any) -> int:
    return int(page.get_by_test_id("task-id").get_attribute("data-task-id"))


def wait_for_task(page: Any, task_id: int) -> None:
    page.locator(f'[data-testid="task-id"][data-task-id="{task_id}"]').wait_for()


def editor_result(page: Any) -> list[dict[str, Any]]:
    """What the editor's selected completion holds now, as it would be sent."""
    result: list[dict[str, Any]] = page.evaluate(
        "() => window.labelgraph.editor.ls.completionStore.selected.serializeCompletion()"
    )
    return result


def test_label_text_with_the_keyboard_skip_and_all_done(
    page: Any, live: LiveProject, artifacts: Path
) -> None:
    live.set_config(SENTIMENT)
    first, second = live.import_tasks([{"text": "What a lovely day"}, {"text": "Rain again"}])
    page.goto(live.base + "/")
    wait_for_task(page, first)
    page.get_by_text("What a lovely day").wait_for()
    screenshot(page, artifacts, "app-label-text")
    page.keyboard.press("1")  # the first choice's hotkey: Positive
    expected = editor_result(page)
    assert [r["value"] for r in expected] == [{"choices": ["Positive"]}]
    page.get_by_role("button", name="Submit").click()
    wait_for_task(page, second)

    stored = live.rest_task(first)["completions"]
    assert len(stored) == 1 and not stored[0].get("was_cancelled")
    assert stored[0]["result"] == expected
    assert stored[0]["result"][0]["from_name"] == "sentiment"

    page.get_by_role("button", name="Skip").click()
    page.get_by_test_id("all-done").wait_for()
    assert "All done" in page.get_by_test_id("all-done").inner_text()
    skipped = live.rest_task(second)["completions"]
    assert len(skipped) == 1 and skipped[0]["was_cancelled"] is True
    counters = page.get_by_test_id("counters")
    counters.locator('[data-counter="completionCount"]').get_by_text("2").wait_for()
    screenshot(page, artifacts, "app-all-done")


def test_draw_a_bounding_box_with_the_mouse(page: Any, live: LiveProject, artifacts: Path) -> None:
    live.set_config(BOXES)
    (task,) = live.import_tasks([{"image": "/static/samples/sample.jpg"}])
    page.goto(live.base + "/")
    wait_for_task(page, task)
    canvas = page.locator(".konvajs-content canvas").first
    canvas.wait_for()
    page.wait_for_function(
        "() => document.querySelector('.konvajs-content').getBoundingClientRect().height > 50"
    )
    page.get_by_text("Car").first.click()  # pick the label, then draw
    box = page.locator(".konvajs-content").first.bounding_box()
    x, y = box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 60, y + 40, steps=5)
    page.mouse.move(x + 120, y + 90, steps=5)
    page.mouse.up()
    page.get_by_text("Regions (1)").wait_for()
    # The editor finishes a drawn box over the next frames: read it once they are painted.
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    expected = editor_result(page)
    assert len(expected) == 1
    value = expected[0]["value"]
    assert value["rectanglelabels"] == ["Car"] and value["width"] > 0 and value["height"] > 0
    screenshot(page, artifacts, "app-bbox")
    page.get_by_role("button", name="Submit").click()
    page.get_by_test_id("all-done").wait_for()
    stored = live.rest_task(task)["completions"]
    assert len(stored) == 1 and stored[0]["result"] == expected
    assert stored[0]["result"][0]["type"] == "rectanglelabels"


def test_predictions_are_pre_annotations(page: Any, live: LiveProject) -> None:
    live.set_config(SENTIMENT)
    prediction = {
        "model_version": "m1",
        "score": 0.9,
        "result": [
            {
                "from_name": "sentiment",
                "to_name": "text",
                "type": "choices",
                "value": {"choices": ["Negative"]},
            }
        ],
    }
    (task,) = live.import_tasks([{"data": {"text": "Meh"}, "predictions": [prediction]}])
    page.goto(live.base + "/")
    wait_for_task(page, task)
    assert [r["value"] for r in editor_result(page)] == [{"choices": ["Negative"]}]
    page.get_by_role("button", name="Submit").click()
    page.get_by_test_id("all-done").wait_for()
    stored = live.rest_task(task)["completions"]
    assert [r["value"] for r in stored[0]["result"]] == [{"choices": ["Negative"]}]
