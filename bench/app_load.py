"""The labeling app in a real browser: first load (bytes and time) and submit → next task.

Starts ``labelgraph start <tmp> --init`` on a free port, sets a Text + Choices config, imports
``--tasks`` tasks (one ``POST /api/project/import``), then drives headless Debian Chromium with
Playwright (as tests/browser/ do; no outside network):

* **first load**, ``--loads`` times in a fresh browser context (empty cache): the bytes sent
  for the HTML, JS and CSS (the Resource/Navigation Timing ``transferSize``, gzip on, and the
  decoded size) and the time from navigation start to the first task on screen (the app's
  ``labelgraph:task-shown`` mark), plus the same sizes and time-to-render for GraphiQL;
* **submit → next task**, ``--submits`` times: a choice by its hotkey, a click on Submit, until
  the next task is on screen, timed inside the page by the app itself with the Performance API
  (``performance.measure("labelgraph:submit-to-next-task")`` from the click to the frame after
  the next task is in the editor). Target: median ≤ 150 ms.

Prints figures only. Run from the repository root with the test extra installed::

    python bench/app_load.py [--tasks 100000] [--submits 20] [--loads 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.browser.harness import CHROMIUM_ARGS, chromium_executable
from tests.live_server import running_server

TARGET_MS = 150.0
LABEL_CONFIG = (
    '<View><Text name="text" value="$text"/>'
    '<Choices name="sentiment" toName="text" choice="single">'
    '<Choice value="Positive"/><Choice value="Negative"/></Choices></View>'
)
SIZES_JS = """() => {
  const entries = [...performance.getEntriesByType("navigation"),
                   ...performance.getEntriesByType("resource")];
  return entries.map(e => ({name: e.name, transfer: e.transferSize, decoded: e.decodedBodySize,
                            type: e.initiatorType || "navigation"}));
}"""


def seed(base: str, count: int) -> None:
    with httpx.Client(base_url=base, timeout=600) as http:
        answer = http.post("/api/project/config", data={"label_config": LABEL_CONFIG})
        assert answer.status_code == 201, answer.text
        tasks = [{"text": f"Task {n}: " + "lorem ipsum dolor sit amet " * 3} for n in range(count)]
        started = time.perf_counter()
        answer = http.post("/api/project/import", json=tasks)
        assert answer.status_code == 201, answer.text
        print(f"imported {count} tasks in {time.perf_counter() - started:.1f} s")


def sizes(page: Any) -> tuple[int, int, int]:
    """(requests, bytes transferred, bytes decoded) of the page and its same-origin assets."""
    entries = page.evaluate(SIZES_JS)
    return (
        len(entries),
        sum(e["transfer"] for e in entries),
        sum(e["decoded"] for e in entries),
    )


def first_loads(browser: Any, base: str, loads: int) -> None:
    app_ms: list[float] = []
    ide_ms: list[float] = []
    app_sizes = ide_sizes = (0, 0, 0)
    for _ in range(loads):
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.goto(base + "/")
        page.locator('[data-testid="task-id"][data-task-id]').wait_for(timeout=60_000)
        app_ms.append(
            page.evaluate(
                "() => performance.getEntriesByName('labelgraph:task-shown', 'mark')[0].startTime"
            )
        )
        app_sizes = sizes(page)
        page.goto(base + "/graphql")
        page.locator(".graphiql-query-editor").wait_for(timeout=60_000)
        ide_ms.append(page.evaluate("() => performance.now()"))
        ide_sizes = sizes(page)
        context.close()
    for name, times, (count, transfer, decoded) in (
        ("app (/)", app_ms, app_sizes),
        ("GraphiQL (/graphql)", ide_ms, ide_sizes),
    ):
        print(
            f"first load of {name}: {count} requests, {transfer / 1024:.0f} KiB transferred "
            f"(gzip), {decoded / 1024:.0f} KiB decoded; on screen after median "
            f"{statistics.median(times):.0f} ms (min {min(times):.0f}, max {max(times):.0f}, "
            f"{len(times)} cold loads)"
        )


def submits(browser: Any, base: str, count: int) -> list[float]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(base + "/")
    label = page.locator('[data-testid="task-id"][data-task-id]')
    label.wait_for(timeout=60_000)
    for _ in range(count + 2):  # the first two warm up
        shown = label.get_attribute("data-task-id")
        page.keyboard.press("1")
        page.get_by_role("button", name="Submit").click()
        page.locator(
            f'[data-testid="task-id"][data-task-id]:not([data-task-id="{shown}"])'
        ).wait_for()
        page.wait_for_function(
            "n => performance.getEntriesByName('labelgraph:submit-to-next-task').length >= n",
            arg=_ + 1,
        )
    durations: list[float] = page.evaluate(
        "() => performance.getEntriesByName('labelgraph:submit-to-next-task').map(e => e.duration)"
    )
    context.close()
    return durations[2:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--submits", type=int, default=20)
    parser.add_argument("--loads", type=int, default=5)
    args = parser.parse_args()
    executable = chromium_executable()
    if executable is None:
        raise SystemExit("no chromium installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with (
        tempfile.TemporaryDirectory() as tmp,
        running_server(Path(tmp) / "bench_app") as base,
        sync_playwright() as playwright,
    ):
        seed(base, args.tasks)
        browser = playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, headless=True
        )
        first_loads(browser, base, args.loads)
        durations = submits(browser, base, args.submits)
        browser.close()
    median = statistics.median(durations)
    p95 = sorted(durations)[max(0, round(0.95 * len(durations)) - 1)]
    verdict = "meets" if median <= TARGET_MS else "misses"
    print(
        f"submit -> next task on screen at {args.tasks} tasks: median {median:.1f} ms, "
        f"p95 {p95:.1f} ms, min {min(durations):.1f}, max {max(durations):.1f} "
        f"({len(durations)} submits; {verdict} the {TARGET_MS:.0f} ms target)"
    )


if __name__ == "__main__":
    main()
