"""Exports as background jobs: ``startExport`` returns a job with progress; its ``export``
field is the finished file."""

from __future__ import annotations

import strawberry

from schema.context import Info
from schema.ml import Job
from schema.permissions import IsAdmin
from server.services.export import export_jobs


@strawberry.type
class ExportJobMutation:
    @strawberry.mutation(
        description="Queue an export of the project's tasks in `format` and return the job at "
        "once: any server process runs it in the background; poll `job(id)` for `progress` and, "
        "once `state` is DONE, `export { url }`. Formats are checked as `exportProject` checks "
        "them (extensions.code INVALID with the offered names in extensions.formats).",
        permission_classes=[IsAdmin],
    )
    def start_export(
        self,
        info: Info,
        format: str,
        only_completed: bool = True,
        project_id: int | None = None,
    ) -> Job:
        ctx = info.context
        pid = ctx.resolve_project_id(project_id)
        row = export_jobs.start_export(pid, format, only_completed)
        if ctx.ml is not None:
            ctx.ml.jobs.wake()
        return Job(row=row)
