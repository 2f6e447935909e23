"""Task import mutation and its report."""

from __future__ import annotations

import strawberry

from schema.context import Info
from schema.scalars import JSON
from server.services import imports as import_service


@strawberry.type(description="What an import stored.")
class ImportReport:
    project_name: str
    task_count: int
    completion_count: int
    prediction_count: int
    duration: float = strawberry.field(description="Seconds the import took.")
    new_task_ids: list[int]
    task_preview: JSON = strawberry.field(
        description="The first tasks as data objects, with completions and predictions."
    )
    found_formats: JSON


@strawberry.type
class ImportMutation:
    @strawberry.mutation(
        description="Import tasks: a list of task objects (wrapped `{data, completions, "
        "predictions, meta}` or bare data objects) or one object. All or nothing: invalid "
        "tasks fail with extensions.code INVALID_TASKS and Label Studio's messages in "
        "extensions.errors."
    )
    def import_tasks(self, info: Info, tasks: JSON, project_id: int | None = None) -> ImportReport:
        result = import_service.import_tasks(info.context.resolve_project_id(project_id), tasks)
        return ImportReport(
            project_name=result.project_name,
            task_count=len(result.task_ids),
            completion_count=result.completion_count,
            prediction_count=result.prediction_count,
            duration=result.duration,
            new_task_ids=result.task_ids,
            task_preview=result.preview,
            found_formats=result.formats,
        )
