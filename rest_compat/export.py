"""GET /api/project/export (and its alias /api/export), GET /api/project/export/formats.

The export route runs the ``exportProject`` mutation, then streams the zip it wrote and deletes
it once sent.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import anyio.to_thread
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from rest_compat._http import (
    OPERATION_HEADER,
    Operation,
    OperationFailed,
    RestError,
    answer,
    endpoint,
    error_body,
    execute,
)
from server.downloads import attachment_headers
from server.multi_session import request_settings
from server.principal import Role
from server.services.export import exporter as export_service
from server.services.files.store import settings_file_store
from server.shared_files import project_name

EXPORT = Operation(
    "mutation RestExport($format: String!) "
    "{ exportProject(format: $format) { fileName downloadName } }"
)
EXPORT_FORMATS = Operation(
    "query RestExportFormats { exportFormats { name title description available } }"
)


async def _export(request: Request) -> Response:
    variables = {"format": request.query_params.get("format") or ""}
    try:
        data = await execute(request, EXPORT, variables)
    except OperationFailed as exc:
        if exc.code != "INVALID":
            raise
        formats: Any = exc.extensions.get("formats", [])
        raise RestError(400, error_body(400, exc.message, formats=formats), EXPORT) from None
    result = data["exportProject"]
    settings = await request_settings(request)
    assert settings is not None  # the export ran in the current project
    found = await anyio.to_thread.run_sync(
        export_service.find_export, settings.export_dir, result["fileName"], settings.export_ttl
    )
    headers = {**attachment_headers(found.download_name), OPERATION_HEADER: EXPORT.name}
    return FileResponse(
        found.path,
        media_type="application/zip",
        headers=headers,
        background=BackgroundTask(
            export_service.delete_export,
            found.path,
            settings_file_store(settings),
            project_name(request, settings),
        ),
    )


async def _export_head(request: Request) -> Response:
    """HEAD answers the headers a GET would have without running the export: 400 for a format
    the project does not offer, else 200 ``application/zip`` named as of now."""
    format_name = request.query_params.get("format") or ""
    data = await execute(request, EXPORT_FORMATS)
    offered = [f["name"] for f in data["exportFormats"] if f["available"]]
    headers = {OPERATION_HEADER: EXPORT_FORMATS.name}
    if format_name not in offered:
        detail = f"Unknown or unavailable export format {format_name!r}"
        return answer(error_body(400, detail, formats=offered), 400, EXPORT_FORMATS)
    download_name = f"{dt.datetime.now().strftime('%Y-%m-%d-%H-%M-%S')}-{format_name}.zip"
    headers.update(attachment_headers(download_name))
    return Response(status_code=200, media_type="application/zip", headers=headers)


@endpoint("/project/export", "HEAD", EXPORT_FORMATS, permission=Role.ADMIN)
async def project_export_head(request: Request) -> Response:
    return await _export_head(request)


@endpoint("/export", "HEAD", EXPORT_FORMATS, permission=Role.ADMIN)
async def export_head(request: Request) -> Response:
    return await _export_head(request)


@endpoint("/project/export", "GET", EXPORT, permission=Role.ADMIN)
async def project_export_get(request: Request) -> Response:
    """The zip of the project's export in ``?format=`` (export-formats.md §3)."""
    return await _export(request)


@endpoint("/export", "GET", EXPORT, permission=Role.ADMIN)
async def export_get(request: Request) -> Response:
    """Label Studio's deprecated alias of ``/api/project/export``."""
    return await _export(request)


@endpoint("/project/export/formats", "GET", EXPORT_FORMATS, permission=Role.ADMIN)
async def project_export_formats_get(request: Request) -> Response:
    """Every format with its title, description and whether the config offers it (new)."""
    data = await execute(request, EXPORT_FORMATS)
    return answer(data["exportFormats"], 200, EXPORT_FORMATS)
