"""GraphiQL at /graphql in a real browser, with no network but this server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.harness import LiveProject, screenshot

pytestmark = pytest.mark.live


def test_graphiql_renders_runs_a_query_and_shows_the_docs(
    page: Any, live: LiveProject, artifacts: Path
) -> None:
    live.set_config(
        '<View><Text name="text" value="$text"/><Choices name="c" toName="text">'
        '<Choice value="A"/></Choices></View>'
    )
    live.import_tasks([{"text": "one"}, {"text": "two"}, {"text": "three"}])
    page.goto(live.base + "/graphql")
    page.locator(".graphiql-container").wait_for()
    page.get_by_role("button", name="Execute query (Ctrl-Enter)").click()
    response = page.locator(".result-window")
    response.get_by_text('"taskCount": 3').wait_for()
    assert '"labeledTaskCount": 0' in response.inner_text()
    # The docs explorer reads the schema by introspection.
    page.get_by_role("button", name="Show Documentation Explorer").click()
    page.locator(".graphiql-doc-explorer").get_by_text("Query", exact=True).first.wait_for()
    # The query-builder explorer plugin is there too.
    page.get_by_role("button", name="Show GraphiQL Explorer").click()
    page.locator(".graphiql-explorer-root").wait_for()
    screenshot(page, artifacts, "graphiql")


def test_graphiql_uploads_files_through_the_multipart_spec(
    page: Any, live: LiveProject, tmp_path: Path
) -> None:
    live.set_config(
        '<View><Text name="text" value="$text"/><Choices name="c" toName="text">'
        '<Choice value="A"/></Choices></View>'
    )
    tasks = tmp_path / "tasks.json"
    tasks.write_text('[{"text": "from a file"}, {"text": "another"}]')
    query = "mutation($files: [Upload!]) { importTasks(files: $files) { taskCount } }"
    page.goto(live.base + "/graphql")
    page.locator(".graphiql-container").wait_for()
    page.get_by_role("button", name="Show Files").click()
    page.get_by_label("files to upload").set_input_files(str(tasks))
    editor = page.locator(".graphiql-query-editor .CodeMirror").first
    editor.evaluate("(node, text) => node.CodeMirror.setValue(text)", query)
    page.get_by_role("button", name="Execute query (Ctrl-Enter)").click()
    page.locator(".result-window").get_by_text('"taskCount": 2').wait_for()
    assert live.gql("{ project { taskCount } }")["project"]["taskCount"] == 2
