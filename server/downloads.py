"""``GET /data/export/<name>``: the plain file route that serves finished exports.

GraphQL's ``exportProject`` answers with this URL; the bytes never pass through GraphQL
(STYLE.md §2). Names are checked against the export naming scheme, so no other file can be
reached, and expired exports answer 404.
"""

from __future__ import annotations

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from server.errors import DomainError
from server.multi_session import request_settings
from server.services.export import exporter as export_service
from server.services.files.store import EXPORT
from server.shared_files import redirect_to_shared


def attachment_headers(download_name: str) -> dict[str, str]:
    """Label Studio's download headers: ``Content-Disposition`` and the ``filename`` header
    its export page reads."""
    return {
        "Content-Disposition": f"attachment; filename={download_name}",
        "filename": download_name,
    }


async def export_download(request: Request) -> Response:
    settings = await request_settings(request, create=False)
    name = request.path_params["name"]
    try:
        if settings is None:
            raise DomainError("not_found", f"Export {name} not found")
        found = await anyio.to_thread.run_sync(
            export_service.find_export, settings.export_dir, name, settings.export_ttl
        )
    except DomainError as exc:
        shared = None
        if settings is not None and (download_name := export_service.download_name(name)):
            shared = await redirect_to_shared(
                request, settings, EXPORT, name, download_name, max_age=settings.export_ttl
            )
        return shared or JSONResponse({"status": 404, "detail": exc.message}, 404)
    return FileResponse(
        found.path, media_type="application/zip", headers=attachment_headers(found.download_name)
    )
