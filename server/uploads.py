"""``GET /data/upload/<name>``: the plain file route that serves uploaded files (rest-api.md
§3.4, §6.5).

Import tasks point to these URLs; the bytes never pass through GraphQL (STYLE.md §2). Names
are resolved inside the project's ``upload/`` only; a file this process has no copy of is
redirected to the shared file store when there is one (:mod:`server.shared_files`); a missing
file is a JSON 404 (compat Q-6).
"""

from __future__ import annotations

import mimetypes

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from server.multi_session import request_settings
from server.services.files.store import UPLOAD
from server.services.imports.staging_dir import upload_name_parts, upload_path
from server.shared_files import redirect_to_shared


async def upload_file(request: Request) -> Response:
    settings = await request_settings(request, create=False)
    name = request.path_params["name"]
    path = None
    if settings is not None:
        path = await anyio.to_thread.run_sync(upload_path, settings.upload_dir, name)
    if path is None and settings is not None and upload_name_parts(name) is not None:
        shared = await redirect_to_shared(request, settings, UPLOAD, name, name.split("/")[-1])
        if shared is not None:
            return shared
    if path is None:
        return JSONResponse({"status": 404, "detail": f"File upload/{name} not found"}, 404)
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    # Label Studio's attachment header; nosniff so a browser never runs an upload as a page.
    return FileResponse(
        path,
        media_type=media_type,
        filename=path.name,
        content_disposition_type="attachment",
        headers={"X-Content-Type-Options": "nosniff"},
    )
