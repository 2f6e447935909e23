"""Bulk actions of the data manager on a selection, a view or a filter (runTaskAction)."""

from __future__ import annotations

from enum import Enum
from typing import Any

import strawberry

from schema.context import Info
from schema.datamanager import TaskFilter, task_query, view_number
from schema.export import ExportFile
from schema.ml import Job
from schema.permissions import IsAdmin, inherits_access
from schema.scalars import JSON
from server.errors import DomainError
from server.models import Project as ProjectRow
from server.models import TaskView as TaskViewRow
from server.principal import Role
from server.services.datamanager import actions, listing
from server.services.datamanager import views as view_service
from server.services.datamanager.listing import TaskSelection
from server.services.export import exporter as export_service
from server.services.ml import job_rows as ml_jobs


@strawberry.enum(description="Bulk actions (Label Studio's data-manager action ids).")
class TaskAction(Enum):
    DELETE_TASKS = "delete_tasks"
    DELETE_TASKS_COMPLETIONS = "delete_tasks_completions"
    DELETE_TASKS_PREDICTIONS = "delete_tasks_predictions"
    PREDICT = "predict"
    EXPORT = "export"


@inherits_access(Role.ADMIN)
@strawberry.type(description="What a bulk action did.")
class TaskActionResult:
    action: TaskAction
    processed_items: int = strawberry.field(
        description="Tasks deleted, completions or predictions deleted, tasks sent to the "
        "prediction job, or tasks exported."
    )
    detail: str
    task_count: int = strawberry.field(description="How many tasks were selected.")
    job: Job | None = None
    export: ExportFile | None = None


def selected_ids(
    project: ProjectRow,
    selection: Any,
    view: str | int | None,
    filter: TaskFilter | None,
    search: str | None,
) -> list[int]:
    """The task ids an action applies to: the given selection (or the view's saved one);
    ``all: true`` means every task the view's and the arguments' filter select but the
    excluded ones. Without a selection or a view, the filter/search alone decide."""
    row = view_service.get_view(project.id, view_number(view)) if view is not None else None
    if selection is None and row is not None:
        selection = row.selection or view_service.EMPTY_SELECTION
    base = task_query(filter, search, row)
    if selection is None:
        if base.is_everything:
            raise DomainError(
                "invalid", "Give a selection, a view or a filter", {"field": "selection"}
            )
        return listing.task_ids(project, base)
    parsed = view_service.parse_selection(selection)
    view_service.check_task_ids(project.id, parsed.ids)
    if parsed.is_empty:
        raise _nothing_selected(row)
    if parsed.all:
        chosen = TaskSelection(base.filter, base.search, None, parsed.ids)
    else:  # as Label Studio: the included ids the filter also selects
        chosen = TaskSelection(base.filter, base.search, parsed.ids)
    ids = listing.task_ids(project, chosen)
    if not ids:
        raise _nothing_selected(row)
    return ids


def _nothing_selected(row: TaskViewRow | None) -> DomainError:
    where = f" on tab with id {row.number}" if row is not None else ""
    return DomainError("not_found", f"no selected items{where}", {"reason": "no_selection"})


# Label Studio 0.9.1's action descriptions (data_manager/actions.py), then labelgraph's own.
ACTIONS: list[dict[str, Any]] = [
    {
        "id": "delete_tasks",
        "title": "Delete tasks",
        "order": 100,
        "permissions": "project.can_delete_tasks",
    },
    {
        "id": "delete_tasks_completions",
        "title": "Delete completions",
        "order": 101,
        "permissions": "project.can_manage_completions",
    },
    {"id": "delete_tasks_predictions", "title": "Delete predictions", "order": 102},
    {"id": "retrieve_tasks_predictions", "title": "Retrieve predictions", "order": 103},
]


@strawberry.type
class TaskActionQuery:
    @strawberry.field(
        description="The bulk actions as Label Studio's data manager lists them (ids are "
        "the lower-case TaskAction names; retrieve_tasks_predictions is PREDICT).",
        permission_classes=[IsAdmin],
    )
    def data_manager_actions(self) -> JSON:
        return ACTIONS


@strawberry.type
class TaskActionMutation:
    @strawberry.mutation(
        description="Run a bulk action on the tasks of a selection ({all, included} / {all: "
        "true, excluded}), of a saved view (its selection and filter) or of a filter/search. "
        "Deletions are atomic; PREDICT starts a prediction job (poll `job`), EXPORT writes "
        "a zip of only those tasks in `format`. A selection naming a task of another project "
        "is NOT_FOUND; an empty one is NOT_FOUND too (Label Studio's 404).",
        permission_classes=[IsAdmin],
    )
    def run_task_action(
        self,
        info: Info,
        action: TaskAction,
        selection: JSON | None = None,
        view: strawberry.ID | None = None,
        filter: TaskFilter | None = None,
        search: str | None = None,
        format: str | None = None,
        only_completed: bool = False,
        project_id: int | None = None,
    ) -> TaskActionResult:
        ctx = info.context
        project = ctx.project(ctx.resolve_project_id(project_id))
        ids = selected_ids(project, selection, view, filter, search)
        if action is TaskAction.DELETE_TASKS:
            count = actions.delete_tasks(project.id, ids)
            ctx.completions_changed(project.id, None)
            return TaskActionResult(
                action=action,
                processed_items=count,
                detail=f"Deleted {count} tasks",
                task_count=len(ids),
            )
        if action is TaskAction.DELETE_TASKS_COMPLETIONS:
            count = actions.delete_completions(project.id, ids)
            ctx.completions_changed(project.id, ids)
            detail = f"Deleted {count} completions"
            return TaskActionResult(
                action=action, processed_items=count, detail=detail, task_count=len(ids)
            )
        if action is TaskAction.DELETE_TASKS_PREDICTIONS:
            count = actions.delete_predictions(project.id, ids)
            detail = f"Deleted {count} predictions"
            return TaskActionResult(
                action=action, processed_items=count, detail=detail, task_count=len(ids)
            )
        if action is TaskAction.PREDICT:
            runtime = ctx.ml_runtime()
            row = ml_jobs.create_prediction_job(project.id, ids, False, view_service.MAX_SELECTED)
            runtime.jobs.wake()  # any process's worker may claim it
            detail = f"Prediction job {row.id} started for {len(ids)} tasks"
            return TaskActionResult(
                action=action,
                processed_items=len(ids),
                detail=detail,
                task_count=len(ids),
                job=Job(row=row),
            )
        result = export_service.export_project(
            project.id,
            format,
            ctx.project_settings(project.id),
            only_completed=only_completed,
            task_ids=ids,
        )
        detail = f"Exported {result.task_count} tasks"
        return TaskActionResult(
            action=action,
            processed_items=result.task_count,
            detail=detail,
            task_count=len(ids),
            export=ExportFile(result=result),
        )
