"""Task import mutation and its report."""

from __future__ import annotations

import strawberry

from schema.context import Info
from schema.scalars import JSON
from server.ls_json import import_report_json
from server.services import imports as import_service
from server.services.imports import ImportResult


@strawberry.type(description="What an import stored.")
class ImportReport:
    result: strawberry.Private[ImportResult]

    @strawberry.field
    def project_name(self) -> str:
        return self.result.project_name

    @strawberry.field
    def task_count(self) -> int:
        return len(self.result.task_ids)

    @strawberry.field
    def completion_count(self) -> int:
        return self.result.completion_count

    @strawberry.field
    def prediction_count(self) -> int:
        return self.result.prediction_count

    @strawberry.field(description="Seconds the import took.")
    def duration(self) -> float:
        return self.result.duration

    @strawberry.field(description="Ids of the new tasks, in import order.")
    def new_task_ids(self) -> list[int]:
        return self.result.task_ids

    @strawberry.field(
        description="The first tasks as data objects, with completions and predictions."
    )
    def task_preview(self) -> JSON:
        return self.result.preview

    @strawberry.field(description="Uploaded file extensions and how many files had each.")
    def found_formats(self) -> JSON:
        return self.result.formats

    @strawberry.field(description="The report in Label Studio 0.9's import answer form.")
    def ls_json(self) -> JSON:
        r = self.result
        return import_report_json(
            r.project_name,
            r.task_ids,
            r.completion_count,
            r.prediction_count,
            r.preview,
            r.duration,
            r.formats,
        )


@strawberry.type
class ImportMutation:
    @strawberry.mutation(
        description="Import tasks: a list of task objects (wrapped `{data, completions, "
        "predictions, meta}` or bare data objects) or one object. All or nothing: invalid "
        "tasks fail with extensions.code INVALID_TASKS and Label Studio's messages in "
        "extensions.errors."
    )
    def import_tasks(self, info: Info, tasks: JSON, project_id: int | None = None) -> ImportReport:
        pid = info.context.resolve_project_id(project_id)
        return ImportReport(result=import_service.import_tasks(pid, tasks))
