"""The browser pages (`/`, GraphiQL at `GET /graphql`) and their bundled assets: every asset
comes from this server (the pages work offline), gzipped, and API clients of /graphql are
answered as before."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from server import web_ui

ASSET_REF = re.compile(r'(?:src|href)="([^"]+)"')
HTML = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def asset_urls(html: str) -> list[str]:
    return ASSET_REF.findall(html)


def test_bundle_was_built_by_the_install() -> None:
    for name in ["index.html", "graphiql.html", "app.js", "graphiql.js", "lsf/main.js"]:
        assert (web_ui.APP_DIR / name).is_file(), f"{name} missing: run pip install -e ."


@pytest.mark.parametrize(
    ("path", "marker", "expected_assets"),
    [
        ("/", '<div id="app">', {"lsf/main.css", "app.css", "lsf/main.js", "app.js"}),
        ("/graphql", '<div id="graphiql">', {"graphiql.css", "graphiql.js"}),
    ],
)
def test_pages_load_only_same_origin_assets(
    client: TestClient, path: str, marker: str, expected_assets: set[str]
) -> None:
    page = client.get(path, headers=HTML)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert marker in page.text
    assert "unpkg" not in page.text and "cdn" not in page.text.lower()
    urls = asset_urls(page.text)
    assert urls, "the page names its assets"
    seen = set()
    for url in urls:
        if url == "data:,":
            continue  # the empty favicon
        assert url.startswith("/static/app/"), f"{url} is not same-origin"
        name = url.removeprefix("/static/app/").split("?")[0]
        seen.add(name)
        asset = client.get(url, headers={"accept-encoding": "gzip"})
        assert asset.status_code == 200, url
        assert asset.content == (web_ui.APP_DIR / name).read_bytes()
        assert asset.headers["content-encoding"] == "gzip"
        assert "immutable" in asset.headers["cache-control"]
    assert seen == expected_assets


def test_bundles_name_no_other_origin_to_load_from() -> None:
    """No script, style or font URL of another origin inside the built assets (links in
    license texts and error messages aside, nothing is loaded by url()/import/fetch)."""
    for path in web_ui.APP_DIR.rglob("*.css"):
        for url in re.findall(r"url\(\s*['\"]?([^)'\"]+)", path.read_text(encoding="utf-8")):
            assert url.startswith(("data:", "#", "/static/app/")) or "://" not in url, (path, url)
        assert "@import url(http" not in path.read_text(encoding="utf-8")


def test_api_clients_of_graphql_are_answered_as_before(client: TestClient) -> None:
    answer = client.get("/graphql", params={"query": "{ __typename }"})
    assert answer.json() == {"data": {"__typename": "Query"}}
    posted = client.post("/graphql", json={"query": "{ __typename }"})
    assert posted.json() == {"data": {"__typename": "Query"}}
    # A non-browser GET without a query is not the IDE page.
    bare = client.get("/graphql", headers={"accept": "application/json"})
    assert not bare.headers["content-type"].startswith("text/html")


def test_missing_bundle_says_how_to_build_it(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web_ui, "APP_DIR", tmp_path)
    page = client.get("/", headers=HTML)
    assert page.status_code == 503
    assert "Node.js and npm" in page.text and "pip install -e ." in page.text
    ide = client.get("/graphql", headers=HTML)
    assert ide.status_code == 503 and "graphiql.html" in ide.text


@pytest.mark.parametrize(
    "content",
    [None, "{not json", '["a list"]', '{"branch": "", "commit": "", "date": ""}'],
    ids=["missing", "not-json", "not-an-object", "no-message"],
)
def test_version_says_not_bundled_without_a_readable_editor_build_info(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str | None
) -> None:
    path = tmp_path / "build-info.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    monkeypatch.setattr(web_ui, "EDITOR_BUILD_INFO", path)
    web_ui.editor_build_info.cache_clear()
    try:
        assert web_ui.editor_build_info() is None
    finally:
        web_ui.editor_build_info.cache_clear()
