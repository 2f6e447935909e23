"""The file routes' second source: a file this process has no copy of is looked up in the
shared file store (``LABELGRAPH_FILE_STORE=s3://…``) and answered with a 302 to a presigned URL
of it, so ``/data/upload/…`` and ``/data/export/…`` answer from any process."""

from __future__ import annotations

import time

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from server.services.files.store import settings_file_store
from server.settings import Settings


def project_name(request: Request, settings: Settings) -> str:
    """The name of the request's project (its key in the file store)."""
    if settings.multi_session:
        return settings.project_name  # <root_dir>/<project name>
    return str(request.app.state.project_name)


async def redirect_to_shared(
    request: Request,
    settings: Settings,
    area: str,
    name: str,
    download_name: str,
    max_age: int | None = None,
) -> Response | None:
    """A 302 to the stored file, or None when there is no shared store, no such file, or
    (``max_age``) it is older than that many seconds."""
    store = settings_file_store(settings)
    if not store.shared:
        return None
    project = project_name(request, settings)

    def find() -> str | None:
        found = store.stat(project, area, name)
        if found is None or (max_age is not None and found.modified_at < time.time() - max_age):
            return None
        return store.url(project, area, name, download_name)

    url = await anyio.to_thread.run_sync(find)
    if url is None:
        return None
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})
