"""Headless Debian Chromium driven by Playwright for Python, against a live labelgraph.

Playwright launches ``/usr/bin/chromium`` (``LABELGRAPH_TEST_CHROMIUM`` names another) by
``executable_path``; it never downloads a browser. Every request for another origin is aborted
and recorded, so a test can assert the pages work offline. Screenshots go to the session's
artifact directory (printed in the test summary).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

# The flags this machine needs: no sandbox as root, no GPU, and no background connections to
# Google's services (the network is closed; each would be refused or hang).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_executable() -> str | None:
    named = os.environ.get("LABELGRAPH_TEST_CHROMIUM")
    if named:
        return named
    for candidate in ("chromium", "chromium-browser"):
        found = shutil.which(candidate)
        if found:
            return found
    return None


@dataclass
class LiveProject:
    """A live server's base URL and a GraphQL helper for seeding it."""

    base: str
    foreign_requests: list[str] = field(default_factory=list)

    def gql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = httpx.post(
            self.base + "/graphql", json={"query": query, "variables": variables or {}}, timeout=30
        ).json()
        assert "errors" not in answer, answer
        data: dict[str, Any] = answer["data"]
        return data

    def set_config(self, config: str) -> None:
        self.gql("mutation($c: String!) { setLabelConfig(labelConfig: $c) { id } }", {"c": config})

    def import_tasks(self, tasks: list[dict[str, Any]]) -> list[int]:
        report = self.gql(
            "mutation($t: JSON) { importTasks(tasks: $t) { newTaskIds } }", {"t": tasks}
        )
        ids: list[int] = report["importTasks"]["newTaskIds"]
        return ids

    def rest_task(self, task_id: int) -> dict[str, Any]:
        response = httpx.get(f"{self.base}/api/tasks/{task_id}", timeout=10)
        assert response.status_code == 200, response.text
        task: dict[str, Any] = response.json()
        return task

    def is_own(self, url: str) -> bool:
        parts = urlsplit(url)
        return parts.scheme in ("data", "blob") or url.startswith(self.base + "/")


def screenshot(page: Any, artifacts: Path, name: str) -> Path:
    path = artifacts / f"{name}.png"
    page.screenshot(path=str(path))
    return path
