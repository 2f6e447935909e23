"""Export: the formats a project offers and the exportProject mutation (a download URL)."""

from __future__ import annotations

import datetime as dt

import strawberry

from schema.context import Info
from schema.permissions import IsAdmin, inherits_access
from schema.scalars import from_seconds
from server.principal import Role
from server.services.export import export_jobs
from server.services.export import exporter as export_service
from server.services.export import formats as export_formats

EXPORT_URL_PREFIX = "/data/export/"


@inherits_access(Role.ADMIN)
@strawberry.type(
    description="An export format, and whether the project's labeling config offers it."
)
class ExportFormat:
    name: str = strawberry.field(description="The name to pass as `format`, e.g. `JSON_MIN`.")
    title: str
    description: str
    available: bool = strawberry.field(
        description="Whether the current labeling config offers this format."
    )


@inherits_access(Role.ADMIN)
@strawberry.type(description="A finished export: a zip file to download from `url`.")
class ExportFile:
    result: strawberry.Private[export_service.ExportResult]

    @strawberry.field
    def format(self) -> str:
        return self.result.format

    @strawberry.field(
        description="Path of the zip on this server (GET it; it expires at `expiresAt`)."
    )
    def url(self) -> str:
        return EXPORT_URL_PREFIX + self.result.file_name

    @strawberry.field(description="The stored file's name, the last part of `url`.")
    def file_name(self) -> str:
        return self.result.file_name

    @strawberry.field(description="The name to save it as: `<YYYY-MM-DD-HH-MM-SS>-<FORMAT>.zip`.")
    def download_name(self) -> str:
        return self.result.download_name

    @strawberry.field(description="Size of the zip in bytes (a Float: files may exceed 2 GiB).")
    def size(self) -> float:
        return float(self.result.size)

    @strawberry.field(description="How many tasks contributed to the export.")
    def task_count(self) -> int:
        return self.result.task_count

    @strawberry.field
    def created_at(self) -> dt.datetime:
        return from_seconds(self.result.created_at)  # type: ignore[return-value]

    @strawberry.field
    def expires_at(self) -> dt.datetime:
        return from_seconds(self.result.expires_at)  # type: ignore[return-value]


@strawberry.type
class ExportQuery:
    @strawberry.field(
        permission_classes=[IsAdmin],
        description="Every export format, in Label Studio's order (YOLO, an extension, last), "
        "with whether the project's config offers it.",
    )
    def export_formats(self, info: Info, project_id: int | None = None) -> list[ExportFormat]:
        config = info.context.label_config(info.context.resolve_project_id(project_id))
        offered = set(export_formats.available_formats(config))
        return [
            ExportFormat(
                name=f.name, title=f.title, description=f.description, available=f.name in offered
            )
            for f in export_formats.FORMATS
        ]


@strawberry.type
class ExportMutation:
    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Export the project's tasks in `format` (one of `exportFormats` that is "
        "available) to a zip file and return its download URL. Unknown or unavailable formats "
        "fail with extensions.code INVALID and the offered names in extensions.formats; data "
        "a format cannot represent fails with CONFLICT. `onlyCompleted: false` lists every task "
        "in JSON, JSON_MIN, CSV and TSV, also those without (non-cancelled) completions.",
    )
    def export_project(
        self,
        info: Info,
        format: str,
        only_completed: bool = True,
        project_id: int | None = None,
    ) -> ExportFile:
        pid = info.context.resolve_project_id(project_id)
        settings = info.context.project_settings(pid)
        result = export_service.export_project(pid, format, settings, only_completed=only_completed)
        export_jobs.share_export(pid, result, settings)
        return ExportFile(result=result)
