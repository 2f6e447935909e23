"""Task types, connections and task mutations."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any

import strawberry

from schema.completions import Completion, Prediction
from schema.context import Context, Info
from schema.permissions import IsAdmin, IsAnnotator, inherits_access
from schema.scalars import JSON, from_seconds
from server.errors import DomainError
from server.ls_json import prediction_json, source_task_json, task_json
from server.models import Prediction as PredictionRow
from server.models import Project as ProjectRow
from server.models import Task as TaskRow
from server.principal import Role
from server.services.config.model import UNDEFINED_KEY
from server.services.datamanager import listing
from server.services.datamanager.listing import TaskSelection
from server.services.datamanager.ordering import Sort, parse_sort
from server.services.imports.validation import rename_undefined
from server.services.ml import predictions as ml_predictions
from server.services.ml.backends import notify_tasks_deleted
from server.services.storage.presign import has_blob_uri
from server.services.tasks import lookup as task_lookup
from server.services.tasks import tasks as task_service


@strawberry.enum(
    description="Orders of a project's tasks; tasks without completions come "
    "last in the completedAt orders."
)
class TaskOrder(Enum):
    ID_ASC = "id"
    ID_DESC = "-id"
    COMPLETED_AT_ASC = "completed_at"
    COMPLETED_AT_DESC = "-completed_at"

    def to_service(self) -> task_service.TaskOrder:
        return task_service.TaskOrder(self.value)

    def to_sort(self) -> Sort:
        return parse_sort(self.value)


@inherits_access(Role.ANNOTATOR)
@strawberry.type(description="A task: one item of data to label.")
class Task:
    row: strawberry.Private[TaskRow]

    @classmethod
    def many(cls, context: Context, rows: list[TaskRow]) -> list[Task]:
        context.children.register(rows)
        return [cls(row=r) for r in rows]

    def _data(self, context: Context) -> dict[str, Any]:
        data: dict[str, Any] = self.row.data
        if UNDEFINED_KEY in data:
            data = rename_undefined(data, context.label_config(self.row.project_id))
        return data

    def _served(self, context: Context, data: dict[str, Any]) -> dict[str, Any]:
        """The data as served to labelers: s3:// (gs://, azure-blob://) URIs presigned when
        the project has a storage of theirs (only data that holds one is looked at)."""
        if not has_blob_uri(data):
            return data
        resolver = context.data_resolver(self.row.project_id)
        return data if resolver is None else resolver(data)

    @strawberry.field
    def id(self) -> int:
        return self.row.id

    @strawberry.field
    def project_id(self) -> int:
        return self.row.project_id

    @strawberry.field(
        description="The task data as stored; keys are referenced by the config's $vars "
        "(`lsJson` serves s3:// URIs presigned)."
    )
    def data(self, info: Info) -> JSON:
        return self._data(info.context)

    @strawberry.field
    def meta(self) -> JSON | None:
        return self.row.meta

    @strawberry.field
    def created_at(self) -> dt.datetime:
        return from_seconds(self.row.created_at)  # type: ignore[return-value]

    @strawberry.field
    def updated_at(self) -> dt.datetime:
        return from_seconds(self.row.updated_at)  # type: ignore[return-value]

    @strawberry.field(description="When the newest completion was made; null if none.")
    def completed_at(self) -> dt.datetime | None:
        return from_seconds(self.row.completed_at)

    @strawberry.field
    def is_labeled(self) -> bool:
        return self.row.is_labeled

    @strawberry.field
    def total_completions(self) -> int:
        return self.row.total_completions

    @strawberry.field
    def cancelled_completions(self) -> int:
        return self.row.cancelled_completions

    @strawberry.field
    def total_predictions(self) -> int:
        return self.row.total_predictions

    @strawberry.field(description="Mean score of the predictions that have one.")
    def predictions_score(self) -> float | None:
        return self.row.predictions_score

    @strawberry.field
    def completions(self, info: Info) -> list[Completion]:
        return [Completion(row=c) for c in info.context.children.completions(self.row.id)]

    @strawberry.field
    def predictions(self, info: Info) -> list[Prediction]:
        return [Prediction(row=p) for p in info.context.children.predictions(self.row.id)]

    @strawberry.field(
        description="The task as Label Studio 0.9 serves it from /api/tasks, with "
        "completions, predictions and computed fields."
    )
    def ls_json(self, info: Info, live_predictions: bool = False) -> JSON:
        return self.ls_json_of(info.context, live_predictions)

    def ls_json_of(self, ctx: Context, live_predictions: bool = False) -> dict[str, Any]:
        """:meth:`ls_json`'s value (also :meth:`TaskPage.ls_json`'s items)."""
        completions = ctx.children.completions(self.row.id)
        predictions = ctx.children.predictions(self.row.id)
        data = self._data(ctx)
        if live_predictions:
            asked = task_json(self.row, completions, [], data=data)
            predictions = self._live(ctx, asked, predictions)
        return task_json(self.row, completions, predictions, data=self._served(ctx, data))

    @strawberry.field(
        description="The task as Label Studio 0.9's label stream serves it: id, data and "
        "stored predictions."
    )
    def ls_source_json(self, info: Info, live_predictions: bool = False) -> JSON:
        ctx = info.context
        predictions = ctx.children.predictions(self.row.id)
        data = self._data(ctx)
        if live_predictions:
            asked = source_task_json(self.row, [], data=data)
            predictions = self._live(ctx, asked, predictions)
        return source_task_json(self.row, predictions, data=self._served(ctx, data))

    @strawberry.field(
        description="Predictions the project's ML backends make for this task now (not "
        "stored); a backend's stored prediction for the same model version is reused. The "
        "stored predictions when no backend answers."
    )
    def live_predictions(self, info: Info) -> JSON:
        ctx = info.context
        stored = ctx.children.predictions(self.row.id)
        asked = source_task_json(self.row, [], data=self._data(ctx))
        return [prediction_json(p) for p in self._live(ctx, asked, stored)]

    def _live(
        self, ctx: Context, asked: dict[str, Any], stored: list[PredictionRow]
    ) -> list[PredictionRow]:
        client = ctx.ml.client if ctx.ml is not None else None
        known = task_lookup.has_ml_backend(self.row)
        live = ml_predictions.live_predictions(
            client, self.row.project_id, asked, stored, backends_known=known
        )
        return stored if live is None else live


@inherits_access(Role.ANNOTATOR)
@strawberry.type
class TaskEdge:
    cursors: strawberry.Private[Sequence[str]]
    index: strawberry.Private[int]

    @strawberry.field
    def cursor(self) -> str:
        return self.cursors[self.index]

    node: Task


@inherits_access(Role.ANNOTATOR)
@strawberry.type
class PageInfo:
    has_next_page: bool
    cursors: strawberry.Private[Sequence[str]]  # the page's (the last is its end)

    @strawberry.field
    def end_cursor(self) -> str | None:
        return self.cursors[-1] if self.cursors else None


@inherits_access(Role.ANNOTATOR)
@strawberry.type(description="A keyset-paginated list of tasks.")
class TaskConnection:
    # edges are made when asked (most clients ask for nodes only), and a task's cursor is
    # encoded only when its edge's cursor is read (:mod:`server.services.tasks.cursors`)
    tasks: strawberry.Private[list[Task]]
    cursors: strawberry.Private[Sequence[str]]

    @strawberry.field
    def edges(self) -> list[TaskEdge]:
        return [TaskEdge(cursors=self.cursors, index=i, node=n) for i, n in enumerate(self.tasks)]

    page_info: PageInfo
    count: strawberry.Private[Callable[[], int]]

    @strawberry.field(description="How many tasks the filter selects (counted when asked).")
    def total_count(self) -> int:
        return self.count()

    @strawberry.field
    def nodes(self) -> list[Task]:
        return self.tasks


@inherits_access(Role.ANNOTATOR)
@strawberry.type(description="One numbered page of tasks with the project's totals.")
class TaskPage:
    tasks: list[Task]
    total: int
    total_completions: int
    total_predictions: int

    @strawberry.field(
        description="The page's tasks as Label Studio 0.9 serves them from /api/tasks: the "
        "`lsJson` of each, as one list. The same as `tasks { lsJson }`, for clients that "
        "want that shape, with one field to execute instead of one per task (a page of 100 "
        "costs ~40 % less)."
    )
    def ls_json(self, info: Info) -> JSON:
        ctx = info.context
        return [task.ls_json_of(ctx) for task in self.tasks]


def task_connection(
    info: Info,
    project: ProjectRow,
    first: int,
    after: str | None,
    order_by: TaskOrder,
    query: TaskSelection | None = None,
    sort: Sort | None = None,
) -> TaskConnection:
    """A keyset slice: the historic fast paths when nothing is filtered nor sorted by another
    field, else the data manager's listing (:mod:`server.services.datamanager.listing`)."""
    limit = info.context.settings.max_page_size
    if (query is None or query.is_everything) and sort is None:
        page = task_service.list_slice(project, first, after, order_by.to_service(), limit)
        total = page.total

        def count() -> int:
            return total
    else:
        selected = query or TaskSelection()
        page = listing.list_slice(
            project, selected, sort or order_by.to_sort(), first, after, limit
        )

        def count() -> int:
            return listing.count(project, selected)

    nodes = Task.many(info.context, page.tasks)
    return TaskConnection(
        tasks=nodes,
        cursors=page.cursors,
        page_info=PageInfo(has_next_page=page.has_next_page, cursors=page.cursors),
        count=count,
    )


def task_page(
    info: Info,
    project: ProjectRow,
    page: int,
    page_size: int,
    order_by: TaskOrder,
    query: TaskSelection | None = None,
    sort: Sort | None = None,
) -> TaskPage:
    limit = info.context.settings.max_page_size
    if page_size > limit:
        raise DomainError("invalid", f"page_size must be at most {limit}", {"field": "pageSize"})
    if (query is None or query.is_everything) and sort is None:
        result = task_service.list_page(project, page, page_size, order_by.to_service())
    else:
        selected = query or TaskSelection()
        result = listing.list_page(project, selected, sort or order_by.to_sort(), page, page_size)
    return TaskPage(
        tasks=Task.many(info.context, result.tasks),
        total=result.total,
        total_completions=result.total_completions,
        total_predictions=result.total_predictions,
    )


@strawberry.type
class TaskQuery:
    @strawberry.field(permission_classes=[IsAnnotator], description="A task by id.")
    def task(self, info: Info, id: int) -> Task:
        return Task.many(info.context, [info.context.task(id)])[0]


@strawberry.type
class TaskMutation:
    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Replace the data, predictions and/or meta of a task (only the arguments "
        "given). Data is validated against the labeling config.",
    )
    def update_task(
        self,
        info: Info,
        id: int,
        data: JSON | None = strawberry.UNSET,
        predictions: JSON | None = strawberry.UNSET,
        meta: JSON | None = strawberry.UNSET,
    ) -> Task:
        body = {
            key: value
            for key, value in (("data", data), ("predictions", predictions), ("meta", meta))
            if value is not strawberry.UNSET
        }
        ctx = info.context
        row = task_service.update_task(id, body, ctx.task(id).project_id)
        ctx.children.forget(id)
        if row.total_completions:
            ctx.completions_changed(row.project_id, [row.id])
        return Task.many(ctx, [row])[0]

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Delete a task with its completions; returns its id.",
    )
    def delete_task(self, info: Info, id: int) -> int:
        ctx = info.context
        task = ctx.task(id)
        deleted = task_service.delete_task(id, task.project_id)
        if task.total_completions:
            ctx.completions_changed(task.project_id, [task.id])
        return deleted

    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Delete every task of a project; returns how many.",
    )
    def delete_all_tasks(self, info: Info, project_id: int | None = None) -> int:
        pid = info.context.resolve_project_id(project_id)
        deleted = task_service.delete_all_tasks(pid)
        info.context.completions_changed(pid, None)
        ml = info.context.ml
        notify_tasks_deleted(ml.client if ml is not None else None, pid)
        return deleted
