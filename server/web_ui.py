"""The browser side: the labeling app at ``/``, GraphiQL's page and their assets.

``frontend/build.mjs`` (run by ``pip install``) bundles them from npm into ``static/app/``;
every script, style and font is served from here, so the pages work with no internet. Assets
are gzipped on the way out; their URLs carry a content hash (``?v=``), the pages do not.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

APP_DIR = Path(__file__).resolve().parent / "static" / "app"
EDITOR_BUILD_INFO = APP_DIR / "lsf" / "build-info.json"
APP_PAGE = "index.html"
GRAPHIQL_PAGE = "graphiql.html"
# Pages are small and name hashed assets: always revalidate them.
PAGE_HEADERS = {"cache-control": "no-cache"}
# A hashed asset URL never changes content.
ASSET_CACHE = "public, max-age=31536000, immutable"
GZIP_MIN_SIZE = 1024
GZIP_LEVEL = 6

NOT_BUILT = """<!doctype html><html lang="en"><meta charset="utf-8"><title>labelgraph</title>
<body><h1>labelgraph: the web pages were not built</h1>
<p>The browser side ({page}) is bundled from npm when labelgraph is installed, which needs
Node.js and npm: install them, then run <code>pip install -e .</code> again. The APIs
(<code>POST /graphql</code>, <code>/api/...</code>) work without it.</p></body></html>
"""


@cache
def editor_build_info() -> dict[str, str] | None:
    """The bundled editor's build info (``GET /version``), or None when the app is not built."""
    try:
        info = json.loads(EDITOR_BUILD_INFO.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    keys = ("branch", "commit", "date", "message")
    if not isinstance(info, dict) or not all(isinstance(info.get(key), str) for key in keys):
        return None
    return {key: info[key] for key in keys}


def page_response(name: str) -> Response:
    """A built page, or a 503 saying how to build it."""
    path = APP_DIR / name
    try:
        html = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return HTMLResponse(NOT_BUILT.format(page=name), 503, headers=PAGE_HEADERS)
    return HTMLResponse(html, headers=PAGE_HEADERS)


async def app_page(request: Request) -> Response:
    return page_response(APP_PAGE)


def graphiql_page() -> Response:
    return page_response(GRAPHIQL_PAGE)


class HashedAssets:
    """Static files; a request with ``?v=`` (a content hash) may be cached for a year."""

    def __init__(self, directory: Path) -> None:
        self.files = StaticFiles(directory=directory, check_dir=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        versioned = b"v=" in scope.get("query_string", b"")

        async def send_with_cache(message: Message) -> None:
            if versioned and message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (b"cache-control", ASSET_CACHE.encode())]
                message = {**message, "headers": headers}
            await send(message)

        await self.files(scope, receive, send_with_cache)


def assets() -> ASGIApp:
    """The bundled scripts, styles and fonts (mounted at ``/static/app``), gzipped."""
    return GZipMiddleware(
        HashedAssets(APP_DIR), minimum_size=GZIP_MIN_SIZE, compresslevel=GZIP_LEVEL
    )
