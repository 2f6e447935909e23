"""Fixtures of the browser tests: one Chromium per module, a fresh context per test, a live
labelgraph per test. Skipped (with the reason) only when no Chromium is installed."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.harness import CHROMIUM_ARGS, LiveProject, chromium_executable
from tests.live_server import running_server

CHROMIUM = chromium_executable()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if CHROMIUM is not None:
        return
    skip = pytest.mark.skip(
        reason="no Chromium installed (apt-get install chromium; .ci/run installs it)"
    )
    for item in items:
        if "tests/browser/" in str(item.path).replace("\\", "/"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Screenshots of the pages, one per test step worth seeing: in the session's pytest tmp
    directory, or in ``LABELGRAPH_TEST_ARTIFACTS`` when set (for CI to keep, or for
    scripts/readme_screenshots.py)."""
    chosen = os.environ.get("LABELGRAPH_TEST_ARTIFACTS")
    if chosen:
        Path(chosen).mkdir(parents=True, exist_ok=True)
        return Path(chosen)
    return tmp_path_factory.mktemp("browser-artifacts", numbered=False)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium per test module: Playwright's sync API keeps an asyncio loop running in
    this thread while it is started, which later async tests (anyio) could not run beside."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveProject]:
    with running_server(tmp_path / "browser") as base:
        yield LiveProject(base)


@contextlib.contextmanager
def guarded_page(browser: Any, live: LiveProject) -> Iterator[Any]:
    """A page in a fresh context (its own cookies: another user's browser); requests for any
    other origin are aborted and recorded; uncaught page errors fail the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})

    def guard(route: Any) -> None:
        if live.is_own(route.request.url):
            route.continue_()
        else:
            live.foreign_requests.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"
    assert not live.foreign_requests, f"requests left this server: {live.foreign_requests}"


@pytest.fixture
def page(browser: Any, live: LiveProject) -> Iterator[Any]:
    with guarded_page(browser, live) as opened:
        yield opened


@pytest.fixture
def colleague_page(browser: Any, live: LiveProject) -> Iterator[Any]:
    """A second browser on the same server, beside ``page``: a colleague's."""
    with guarded_page(browser, live) as opened:
        yield opened
